//! `bce_with_logits` and `focal`.

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::TensorData;
use stoker::burn::tensor::activation::log_softmax;
use stoker::prelude::*;

use crate::cross_entropy::{
    ClassTargets, check_class_target, check_probabilities, class_targets, class_weights,
};
use stoker::names::{prediction as default_pred, target as default_target};
use stoker::targets::pair;

/// Binary cross entropy on logits, as torch.nn.functional.binary_cross_entropy_with_logits (targets in [0, 1], one per output value), with an optional weight of the positive class per output.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "bce_with_logits")]
pub struct BceWithLogitsSpec {
    /// Weight of positive examples, one per output value.
    #[serde(default)]
    pub pos_weight: Option<Vec<f64>>,
    /// The model output holding the logits.
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor holding the targets.
    #[serde(default = "default_target")]
    pub target: String,
}

struct BceWithLogits {
    pos_weight: Option<Vec<f32>>,
    pred: String,
    target: String,
}

impl Loss for BceWithLogits {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let (x, y) = pair(output, &self.pred, batch, &self.target)?;
        let [_, width] = x.dims();
        // max(-x, 0) + log(1 + exp(-|x|)) is -log(sigmoid(x)), computed without overflow.
        let softplus_neg = x.clone().neg().clamp_min(0.0) + x.clone().abs().neg().exp().log1p();
        let weight = match &self.pos_weight {
            Some(w) if w.len() != width => {
                return Err(StokerError::msg(format!(
                    "pos_weight has {} values for {width} outputs",
                    w.len()
                )));
            }
            Some(w) => {
                let w = Tensor::<1>::from_data(TensorData::new(w.clone(), [width]), &x.device())
                    .reshape([1, width]);
                (w.sub_scalar(1.0) * y.clone()).add_scalar(1.0)
            }
            None => y.ones_like(),
        };
        let loss = (y.neg().add_scalar(1.0)) * x + weight * softplus_neg;
        Ok(LossValue::single(loss.mean()))
    }
}

impl LossSpec for BceWithLogitsSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Float,
            "bce_with_logits needs float targets in [0, 1]",
        )?;
        Ok(Box::new(BceWithLogits {
            pos_weight: self
                .pos_weight
                .as_ref()
                .map(|w| w.iter().map(|&v| v as f32).collect()),
            pred: self.pred.clone(),
            target: self.target.clone(),
        }))
    }
}

fn two() -> f64 {
    2.0
}

/// Focal loss for multi-class scores (Lin et al., 2017): -alpha_y (1 - p_y)^gamma log p_y, averaged, with p the softmax; gamma 0 and no alpha is cross entropy.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "focal")]
pub struct FocalSpec {
    /// Focusing exponent: how much easy examples are down-weighted.
    #[serde(default = "two")]
    pub gamma: f64,
    /// Class weights alpha, one per class (none: all 1).
    #[serde(default)]
    pub alpha: Option<Vec<f64>>,
    /// The model output holding the class scores (logits).
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor holding the class targets: integer labels or class probabilities.
    #[serde(default = "default_target")]
    pub target: String,
}

struct Focal {
    gamma: f64,
    alpha: Option<Vec<f32>>,
    pred: String,
    target: String,
}

impl Loss for Focal {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let logits = output.float::<2>(&self.pred)?;
        let [n, classes] = logits.dims();
        let alpha = self
            .alpha
            .as_deref()
            .map(|a| class_weights(a, classes, &logits.device(), "alpha values"))
            .transpose()?;
        let log_p = log_softmax(logits, 1);
        // (1 - p)^gamma * -log p, per class.
        let focal = |log_p: Tensor<2>| {
            log_p
                .clone()
                .exp()
                .neg()
                .add_scalar(1.0)
                .powf_scalar(self.gamma)
                * log_p.neg()
        };
        let loss = match class_targets(batch, &self.target)? {
            ClassTargets::Labels(labels) => {
                let picked = log_p.gather(1, labels.clone().reshape([n, 1]));
                let loss = focal(picked).reshape([n]);
                match alpha {
                    Some(alpha) => loss * alpha.select(0, labels),
                    None => loss,
                }
            }
            // The expected focal term under the target distribution.
            ClassTargets::Probabilities(p) => {
                check_probabilities(&log_p, &p)?;
                let weighted = match alpha {
                    Some(alpha) => p * alpha.reshape([1, classes]),
                    None => p,
                };
                (focal(log_p) * weighted).sum_dim(1).reshape([n])
            }
        };
        Ok(LossValue::single(loss.mean()))
    }
}

impl LossSpec for FocalSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        check_class_target(ctx.data()?, &self.target, "focal")?;
        if !(self.gamma.is_finite() && self.gamma >= 0.0) {
            return Err(BuildError::at("gamma", "must be >= 0"));
        }
        Ok(Box::new(Focal {
            gamma: self.gamma,
            alpha: self
                .alpha
                .as_ref()
                .map(|a| a.iter().map(|&v| v as f32).collect()),
            pred: self.pred.clone(),
            target: self.target.clone(),
        }))
    }
}
