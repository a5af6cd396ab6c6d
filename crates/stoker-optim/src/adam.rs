//! `adam` and `adamw`.

use serde::{Deserialize, Serialize};
use stoker::burn::optim::ModuleOptimizer;
use stoker::prelude::*;

use crate::check;
use crate::groups::{self, GroupSpec};
use crate::rules::Adam;

fn default_lr() -> f64 {
    1e-3
}

fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}

fn default_eps() -> f64 {
    1e-8
}

fn default_adamw_decay() -> f64 {
    1e-2
}

fn check_common(lr: f64, betas: [f64; 2], eps: f64, weight_decay: f64) -> Result<(), BuildError> {
    check::lr(lr)?;
    check::unit("betas[0]", betas[0])?;
    check::unit("betas[1]", betas[1])?;
    check::non_negative("eps", eps)?;
    check::non_negative("weight_decay", weight_decay)
}

/// Adam as torch.optim.Adam (weight_decay is an L2 penalty added to the gradient; amsgrad optional), with parameter groups.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(optimizer, name = "adam")]
pub struct AdamSpec {
    /// Learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Decay rates of the first and second moment estimates.
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// Term added to the denominator for numerical stability.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// L2 penalty added to the gradient.
    #[serde(default)]
    pub weight_decay: f64,
    /// Use the AMSGrad variant.
    #[serde(default)]
    pub amsgrad: bool,
    /// Parameter groups with their own lr_scale and weight_decay (see docs/optimizers.md).
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
}

impl OptimizerSpec for AdamSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<ModuleOptimizer, BuildError> {
        check_common(self.lr, self.betas, self.eps, self.weight_decay)?;
        let rule = |weight_decay, lr_scale| Adam {
            betas: self.betas,
            eps: self.eps,
            weight_decay,
            decoupled: false,
            amsgrad: self.amsgrad,
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

/// AdamW as torch.optim.AdamW: Adam with decoupled weight decay (the parameter shrinks by lr * weight_decay each step), with parameter groups.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(optimizer, name = "adamw")]
pub struct AdamWSpec {
    /// Learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Decay rates of the first and second moment estimates.
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// Term added to the denominator for numerical stability.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Decoupled weight decay coefficient.
    #[serde(default = "default_adamw_decay")]
    pub weight_decay: f64,
    /// Use the AMSGrad variant.
    #[serde(default)]
    pub amsgrad: bool,
    /// Parameter groups with their own lr_scale and weight_decay (see docs/optimizers.md).
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
}

impl OptimizerSpec for AdamWSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<ModuleOptimizer, BuildError> {
        check_common(self.lr, self.betas, self.eps, self.weight_decay)?;
        let rule = |weight_decay, lr_scale| Adam {
            betas: self.betas,
            eps: self.eps,
            weight_decay,
            decoupled: true,
            amsgrad: self.amsgrad,
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
