//! `sgd`: stochastic gradient descent with momentum.

use serde::{Deserialize, Serialize};
use stoker::burn::optim::ModuleOptimizer;
use stoker::prelude::*;

use crate::check;
use crate::groups::{self, GroupSpec};
use crate::rules::Sgd;

/// Stochastic gradient descent as torch.optim.SGD: momentum, dampening, Nesterov and L2 weight decay, with parameter groups.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(optimizer, name = "sgd")]
pub struct SgdSpec {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0 = plain SGD).
    #[serde(default)]
    pub momentum: f64,
    /// Dampening of the momentum.
    #[serde(default)]
    pub dampening: f64,
    /// Nesterov momentum.
    #[serde(default)]
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    #[serde(default)]
    pub weight_decay: f64,
    /// Parameter groups with their own lr_scale and weight_decay (see docs/optimizers.md).
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
}

impl SgdSpec {
    fn rule(&self, weight_decay: f64, lr_scale: f64) -> Sgd {
        Sgd {
            momentum: self.momentum,
            dampening: self.dampening,
            nesterov: self.nesterov,
            weight_decay,
            lr_scale,
        }
    }
}

impl OptimizerSpec for SgdSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<ModuleOptimizer, BuildError> {
        check::lr(self.lr)?;
        check::unit("momentum", self.momentum)?;
        check::unit("dampening", self.dampening)?;
        check::non_negative("weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum == 0.0 || self.dampening != 0.0) {
            return Err(BuildError::at(
                "nesterov",
                "Nesterov momentum needs momentum > 0 and dampening 0",
            ));
        }
        groups::build(self.rule(self.weight_decay, 1.0), &self.groups, ctx, |g| {
            self.rule(g.weight_decay.unwrap_or(self.weight_decay), g.lr_scale)
        })
    }

    fn lr(&self) -> f64 {
        self.lr
    }
}
