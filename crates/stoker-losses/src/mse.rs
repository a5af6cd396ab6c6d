//! `mse`: mean squared error.

use serde::{Deserialize, Serialize};
use stoker::prelude::*;
use stoker::targets::squared_errors;

use stoker::names::{prediction as default_pred, target as default_target};

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

impl Loss for Mse {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let errors = squared_errors(output, &self.spec.pred, batch, &self.spec.target)?;
        Ok(LossValue::single(errors.mean()))
    }
}

impl LossSpec for MseSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Float,
            "mse compares floats",
        )?;
        Ok(Box::new(Mse { spec: self.clone() }))
    }
}
