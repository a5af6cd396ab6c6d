//! `l1`, `huber` and `smooth_l1`: elementwise regression losses, averaged over every value.

use serde::{Deserialize, Serialize};
use stoker::prelude::*;
use stoker::targets::difference;

use stoker::names::{prediction as default_pred, target as default_target};

/// Mean absolute error, as torch.nn.functional.l1_loss.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "l1")]
pub struct L1Spec {
    /// The model output compared.
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor it is compared with.
    #[serde(default = "default_target")]
    pub target: String,
}

struct L1(L1Spec);

impl Loss for L1 {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        Ok(LossValue::single(
            difference(output, &self.0.pred, batch, &self.0.target)?
                .abs()
                .mean(),
        ))
    }
}

impl LossSpec for L1Spec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Float,
            "l1 compares floats",
        )?;
        Ok(Box::new(L1(self.clone())))
    }
}

fn one() -> f64 {
    1.0
}

/// Huber loss, as torch.nn.functional.huber_loss: 0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere, averaged.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "huber")]
pub struct HuberSpec {
    /// Where the loss turns from quadratic to linear.
    #[serde(default = "one")]
    pub delta: f64,
    /// The model output compared.
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor it is compared with.
    #[serde(default = "default_target")]
    pub target: String,
}

struct Huber(HuberSpec);

/// Elementwise Huber loss of `d` with threshold `delta`.
pub fn huber<const D: usize>(d: Tensor<D>, delta: f64) -> Tensor<D> {
    let a = d.abs();
    let quadratic = a.clone().square().mul_scalar(0.5);
    let linear = a.clone().sub_scalar(0.5 * delta).mul_scalar(delta);
    quadratic.mask_where(a.greater_equal_elem(delta), linear)
}

impl Loss for Huber {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let d = difference(output, &self.0.pred, batch, &self.0.target)?;
        Ok(LossValue::single(huber(d, self.0.delta).mean()))
    }
}

impl LossSpec for HuberSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        if !(self.delta.is_finite() && self.delta > 0.0) {
            return Err(BuildError::at("delta", "must be positive"));
        }
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Float,
            "huber compares floats",
        )?;
        Ok(Box::new(Huber(self.clone())))
    }
}

/// Smooth L1 loss, as torch.nn.functional.smooth_l1_loss: 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere, averaged (beta 0 is l1).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "smooth_l1")]
pub struct SmoothL1Spec {
    /// Where the loss turns from quadratic to linear.
    #[serde(default = "one")]
    pub beta: f64,
    /// The model output compared.
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor it is compared with.
    #[serde(default = "default_target")]
    pub target: String,
}

struct SmoothL1(SmoothL1Spec);

impl Loss for SmoothL1 {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let d = difference(output, &self.0.pred, batch, &self.0.target)?;
        let beta = self.0.beta;
        let value = if beta == 0.0 {
            d.abs()
        } else {
            huber(d, beta).div_scalar(beta)
        };
        Ok(LossValue::single(value.mean()))
    }
}

impl LossSpec for SmoothL1Spec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(BuildError::at("beta", "must be >= 0"));
        }
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Float,
            "smooth_l1 compares floats",
        )?;
        Ok(Box::new(SmoothL1(self.clone())))
    }
}
