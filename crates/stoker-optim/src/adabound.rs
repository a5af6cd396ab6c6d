//! `adabound`.

use serde::{Deserialize, Serialize};
use stoker::burn::optim::ModuleOptimizer;
use stoker::prelude::*;

use crate::check;
use crate::groups::{self, GroupSpec};
use crate::rules::AdaBound;

fn default_lr() -> f64 {
    1e-3
}
fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_final_lr() -> f64 {
    0.1
}
fn default_gamma() -> f64 {
    1e-3
}
fn default_eps() -> f64 {
    1e-8
}

/// AdaBound (Luo et al., 2019), as the authors' reference implementation: Adam with per-value step sizes clipped into bounds that tighten towards final_lr, moving from Adam to SGD; amsbound optional.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(optimizer, name = "adabound")]
pub struct AdaBoundSpec {
    /// Learning rate (Adam's phase).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Decay rates of the first and second moment estimates.
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// The SGD learning rate the bounds converge to.
    #[serde(default = "default_final_lr")]
    pub final_lr: f64,
    /// Convergence speed of the bounds.
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    /// Term added to the denominator for numerical stability.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// L2 penalty added to the gradient.
    #[serde(default)]
    pub weight_decay: f64,
    /// The AMSBound variant.
    #[serde(default)]
    pub amsbound: bool,
    /// Parameter groups with their own lr_scale and weight_decay (see docs/optimizers.md).
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
}

impl OptimizerSpec for AdaBoundSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<ModuleOptimizer, BuildError> {
        check::lr(self.lr)?;
        check::unit("betas[0]", self.betas[0])?;
        check::unit("betas[1]", self.betas[1])?;
        check::lr(self.final_lr).map_err(|_| BuildError::at("final_lr", "must be positive"))?;
        if !(self.gamma.is_finite() && self.gamma > 0.0) {
            return Err(BuildError::at("gamma", "must be positive"));
        }
        check::non_negative("eps", self.eps)?;
        check::non_negative("weight_decay", self.weight_decay)?;
        let rule = |weight_decay, lr_scale| AdaBound {
            betas: self.betas,
            final_lr: self.final_lr,
            gamma: self.gamma,
            eps: self.eps,
            weight_decay,
            amsbound: self.amsbound,
            base_lr: self.lr,
            lr_scale,
        };
        groups::build(rule(self.weight_decay, 1.0), &self.groups, ctx, |g| {
            rule(g.weight_decay.unwrap_or(self.weight_decay), g.lr_scale)
        })
    }

    fn lr(&self) -> f64 {
        self.lr
    }
}
