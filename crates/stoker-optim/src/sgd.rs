//! `sgd`: stochastic gradient descent with momentum.

use serde::{Deserialize, Serialize};
use stoker::burn::optim::decay::WeightDecayConfig;
use stoker::burn::optim::momentum::MomentumConfig;
use stoker::burn::optim::{ModuleOptimizer, SgdConfig};
use stoker::prelude::*;

use crate::check;

/// Stochastic gradient descent as torch.optim.SGD: momentum, dampening, Nesterov and L2 weight decay.
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
}

impl OptimizerSpec for SgdSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<ModuleOptimizer, BuildError> {
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
        let momentum = (self.momentum > 0.0).then(|| {
            MomentumConfig::new()
                .with_momentum(self.momentum)
                .with_dampening(self.dampening)
                .with_nesterov(self.nesterov)
        });
        let weight_decay =
            (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay as f32));
        Ok(SgdConfig::new()
            .with_momentum(momentum)
            .with_weight_decay(weight_decay)
            .init())
    }

    fn lr(&self) -> f64 {
        self.lr
    }
}
