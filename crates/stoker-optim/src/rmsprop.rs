//! `rmsprop` and `adagrad`.

use serde::{Deserialize, Serialize};
use stoker::burn::optim::ModuleOptimizer;
use stoker::prelude::*;

use crate::check;
use crate::groups::{self, GroupSpec};
use crate::rules::{Adagrad, RmsProp};

fn default_lr() -> f64 {
    1e-2
}

/// RMSprop as torch.optim.RMSprop: squared-gradient average (alpha), momentum, centered variant, L2 weight decay, with parameter groups.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(optimizer, name = "rmsprop")]
pub struct RmsPropSpec {
    /// Learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Smoothing constant of the squared-gradient average.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Term added to the denominator for numerical stability.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// L2 penalty added to the gradient.
    #[serde(default)]
    pub weight_decay: f64,
    /// Momentum factor.
    #[serde(default)]
    pub momentum: f64,
    /// Normalize by an estimate of the gradient's variance.
    #[serde(default)]
    pub centered: bool,
    /// Parameter groups with their own lr_scale and weight_decay (see docs/optimizers.md).
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
}

fn default_alpha() -> f64 {
    0.99
}

fn default_eps() -> f64 {
    1e-8
}

impl OptimizerSpec for RmsPropSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<ModuleOptimizer, BuildError> {
        check::lr(self.lr)?;
        check::unit("alpha", self.alpha)?;
        check::unit("momentum", self.momentum)?;
        check::non_negative("eps", self.eps)?;
        check::non_negative("weight_decay", self.weight_decay)?;
        let rule = |weight_decay, lr_scale| RmsProp {
            alpha: self.alpha,
            eps: self.eps,
            weight_decay,
            momentum: self.momentum,
            centered: self.centered,
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

/// Adagrad as torch.optim.Adagrad: per-value step sizes from the sum of squared gradients, learning-rate decay, L2 weight decay, with parameter groups.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(optimizer, name = "adagrad")]
pub struct AdagradSpec {
    /// Learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Learning-rate decay: lr / (1 + (step - 1) * lr_decay).
    #[serde(default)]
    pub lr_decay: f64,
    /// L2 penalty added to the gradient.
    #[serde(default)]
    pub weight_decay: f64,
    /// Starting value of the squared-gradient sums.
    #[serde(default)]
    pub initial_accumulator_value: f64,
    /// Term added to the denominator for numerical stability.
    #[serde(default = "default_adagrad_eps")]
    pub eps: f64,
    /// Parameter groups with their own lr_scale and weight_decay (see docs/optimizers.md).
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
}

fn default_adagrad_eps() -> f64 {
    1e-10
}

impl OptimizerSpec for AdagradSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<ModuleOptimizer, BuildError> {
        check::lr(self.lr)?;
        check::non_negative("lr_decay", self.lr_decay)?;
        check::non_negative("weight_decay", self.weight_decay)?;
        check::non_negative("initial_accumulator_value", self.initial_accumulator_value)?;
        check::non_negative("eps", self.eps)?;
        let rule = |weight_decay, lr_scale| Adagrad {
            lr_decay: self.lr_decay,
            weight_decay,
            initial_accumulator_value: self.initial_accumulator_value,
            eps: self.eps,
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
