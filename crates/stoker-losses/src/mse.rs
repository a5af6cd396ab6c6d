//! `mse`: mean squared error.

use serde::{Deserialize, Serialize};
use stoker::prelude::*;

use crate::names::{check_target, default_pred, default_target};

/// Mean squared error over every value of the batch, as `torch.nn.functional.mse_loss`.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "mse")]
pub struct MseSpec {
    /// The model output compared.
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor it is compared with.
    #[serde(default = "default_target")]
    pub target: String,
}

/// Mean squared error.
pub struct Mse {
    spec: MseSpec,
}

/// The squared errors of a prediction against its target, both flattened to `[batch, values]`.
pub fn squared_errors(
    output: &Output,
    pred: &str,
    batch: &Batch,
    target: &str,
) -> Result<Tensor<2>> {
    Ok(crate::pointwise::difference(output, pred, batch, target)?.square())
}

impl Loss for Mse {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let errors = squared_errors(output, &self.spec.pred, batch, &self.spec.target)?;
        Ok(LossValue::single(errors.mean()))
    }
}

impl LossSpec for MseSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        check_target(
            ctx.data()?,
            &self.target,
            ElementKind::Float,
            "mse compares floats",
        )?;
        Ok(Box::new(Mse { spec: self.clone() }))
    }
}
