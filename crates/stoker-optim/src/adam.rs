//! `adam` and `adamw`.

use serde::{Deserialize, Serialize};
use stoker::burn::optim::decay::WeightDecayConfig;
use stoker::burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer};
use stoker::prelude::*;

use crate::check;

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

/// Adam as torch.optim.Adam (weight_decay is an L2 penalty added to the gradient; amsgrad optional).
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
}

impl OptimizerSpec for AdamSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<ModuleOptimizer, BuildError> {
        check_common(self.lr, self.betas, self.eps, self.weight_decay)?;
        let weight_decay =
            (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay as f32));
        Ok(AdamConfig::new()
            .with_beta_1(self.betas[0] as f32)
            .with_beta_2(self.betas[1] as f32)
            .with_epsilon(self.eps as f32)
            .with_amsgrad(self.amsgrad)
            .with_weight_decay(weight_decay)
            .init())
    }

    fn lr(&self) -> f64 {
        self.lr
    }
}

/// AdamW as torch.optim.AdamW: Adam with decoupled weight decay.
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
}

impl OptimizerSpec for AdamWSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<ModuleOptimizer, BuildError> {
        check_common(self.lr, self.betas, self.eps, self.weight_decay)?;
        Ok(AdamWConfig::new()
            .with_beta_1(self.betas[0] as f32)
            .with_beta_2(self.betas[1] as f32)
            .with_epsilon(self.eps as f32)
            .with_weight_decay(self.weight_decay as f32)
            .with_amsgrad(self.amsgrad)
            .init())
    }

    fn lr(&self) -> f64 {
        self.lr
    }
}
