//! `relative_lp` and `h1`: the neural-operator losses, relative to the target's size per sample.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};
use stoker::prelude::*;
pub use stoker::targets::{relative_lp, row_norm};

use stoker::names::{prediction as default_pred, target as default_target};

/// How per-sample values are reduced over the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    /// The mean over the batch.
    #[default]
    Mean,
    /// The sum over the batch (neuraloperator's default).
    Sum,
}

impl Reduction {
    /// Reduces `[batch]` values.
    pub fn apply(self, values: Tensor<1>) -> Tensor<1> {
        match self {
            Reduction::Mean => values.mean(),
            Reduction::Sum => values.sum(),
        }
    }
}

fn two() -> f64 {
    2.0
}

/// Relative Lp error per sample, ||pred - target||_p / ||target||_p over all values of the sample, reduced over the batch: neuraloperator's LpLoss.rel, the FNO papers' relative L2.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "relative_lp")]
pub struct RelativeLpSpec {
    /// The norm's order.
    #[serde(default = "two")]
    pub p: f64,
    /// `mean` or `sum` over the batch.
    #[serde(default)]
    pub reduction: Reduction,
    /// The model output compared.
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor it is compared with.
    #[serde(default = "default_target")]
    pub target: String,
}

struct RelativeLp(RelativeLpSpec);

impl Loss for RelativeLp {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let (pred, target) = stoker::targets::pair(output, &self.0.pred, batch, &self.0.target)?;
        Ok(LossValue::single(
            self.0.reduction.apply(relative_lp(pred, target, self.0.p)),
        ))
    }
}

impl LossSpec for RelativeLpSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        if !(self.p.is_finite() && self.p >= 1.0) {
            return Err(BuildError::at("p", "must be >= 1"));
        }
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Float,
            "relative_lp compares floats",
        )?;
        Ok(Box::new(RelativeLp(self.clone())))
    }
}

fn two_pi() -> f64 {
    2.0 * PI
}

/// Relative H1 (Sobolev) error per sample: sqrt(|e|^2 + sum_j |d_j e|^2) / sqrt(|y|^2 + sum_j |d_j y|^2) over the grid, with periodic central differences on a domain of length domain_length, reduced over the batch: neuraloperator's H1Loss.rel, for fields [batch, n] or [batch, n1, n2].
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "h1")]
pub struct H1Spec {
    /// The length of the domain along each grid axis (neuraloperator's default 2 pi).
    #[serde(default = "two_pi")]
    pub domain_length: f64,
    /// `mean` or `sum` over the batch.
    #[serde(default)]
    pub reduction: Reduction,
    /// The model output compared.
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor it is compared with.
    #[serde(default = "default_target")]
    pub target: String,
}

/// Squared H1 norm terms of a field: the values and the periodic central differences along each
/// grid axis, each flattened to `[batch, values]`.
fn h1_terms<const D: usize>(u: Tensor<D>, length: f64) -> Vec<Tensor<2>> {
    let dims = u.dims();
    let n = dims[0];
    let flat = |t: Tensor<D>| {
        let values = t.shape().num_elements() / n;
        t.reshape([n, values])
    };
    let mut terms = vec![flat(u.clone())];
    for (axis, &size) in dims.iter().enumerate().skip(1) {
        let h = length / size as f64;
        let forward = u.clone().roll_dim(-1, axis);
        let backward = u.clone().roll_dim(1, axis);
        terms.push(flat((forward - backward).div_scalar(2.0 * h)));
    }
    terms
}

/// Per-sample relative H1 errors, `[batch]`, of fields of rank `D` (batch included).
pub fn relative_h1<const D: usize>(pred: Tensor<D>, target: Tensor<D>, length: f64) -> Tensor<1> {
    let n = pred.dims()[0];
    let e = h1_terms(pred - target.clone(), length);
    let y = h1_terms(target, length);
    let squared = |terms: Vec<Tensor<2>>| {
        terms
            .into_iter()
            .map(|t| t.square().sum_dim(1).reshape([n]))
            .reduce(|a, b| a + b)
            .unwrap()
    };
    (squared(e) / squared(y)).sqrt()
}

struct H1(H1Spec);

impl Loss for H1 {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let s = &self.0;
        let shape = output.shape(&s.pred)?;
        if shape != batch.shape(&s.target)? {
            return Err(StokerError::msg(format!(
                "`{}` has shape {shape:?} but `{}` has shape {:?}",
                s.pred,
                s.target,
                batch.shape(&s.target)?
            )));
        }
        let per_sample = match shape.len() {
            2 => relative_h1(
                output.float::<2>(&s.pred)?,
                batch.float::<2>(&s.target)?,
                s.domain_length,
            ),
            3 => relative_h1(
                output.float::<3>(&s.pred)?,
                batch.float::<3>(&s.target)?,
                s.domain_length,
            ),
            rank => {
                return Err(StokerError::msg(format!(
                    "h1 takes fields [batch, n] or [batch, n1, n2]; `{}` has rank {rank}",
                    s.pred
                )));
            }
        };
        Ok(LossValue::single(s.reduction.apply(per_sample)))
    }
}

impl LossSpec for H1Spec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        if !(self.domain_length.is_finite() && self.domain_length > 0.0) {
            return Err(BuildError::at("domain_length", "must be positive"));
        }
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Float,
            "h1 compares floats",
        )?;
        Ok(Box::new(H1(self.clone())))
    }
}
