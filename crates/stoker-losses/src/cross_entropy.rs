//! `cross_entropy`: softmax cross entropy on class scores and integer labels.

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::activation::log_softmax;
use stoker::prelude::*;

use crate::names::{check_target, default_pred, default_target};

/// Softmax cross entropy between class scores [batch, classes] and integer labels [batch], as `torch.nn.functional.cross_entropy`.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "cross_entropy")]
pub struct CrossEntropySpec {
    /// The model output holding the class scores (logits).
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor holding the integer labels.
    #[serde(default = "default_target")]
    pub target: String,
}

/// Softmax cross entropy.
pub struct CrossEntropy {
    spec: CrossEntropySpec,
}

/// Labels as `[batch]`, whether stored as `[batch]` or `[batch, 1]`.
pub fn labels(batch: &Batch, name: &str) -> Result<Tensor<1, Int>> {
    match batch.shape(name)?.as_slice() {
        [n, 1] => Ok(batch.int::<2>(name)?.reshape([*n])),
        _ => Ok(batch.int::<1>(name)?),
    }
}

impl Loss for CrossEntropy {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let logits = output.float::<2>(&self.spec.pred)?;
        let labels = labels(batch, &self.spec.target)?;
        let [n, _classes] = logits.dims();
        if labels.dims() != [n] {
            return Err(StokerError::msg(format!(
                "`{}` has {n} rows but `{}` has shape {:?}",
                self.spec.pred,
                self.spec.target,
                labels.dims()
            )));
        }
        let picked = log_softmax(logits, 1).gather(1, labels.reshape([n, 1]));
        Ok(LossValue::single(picked.mean().neg()))
    }
}

impl LossSpec for CrossEntropySpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        check_target(
            ctx.data()?,
            &self.target,
            ElementKind::Int,
            "cross_entropy needs integer class labels",
        )?;
        Ok(Box::new(CrossEntropy { spec: self.clone() }))
    }
}
