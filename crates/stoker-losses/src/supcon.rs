//! `supcon`: supervised contrastive loss.

use serde::{Deserialize, Serialize};
use stoker::prelude::*;

use crate::cross_entropy::labels;
use stoker::names::target as default_target;

fn default_temperature() -> f64 {
    0.07
}

fn default_features() -> String {
    "features".into()
}

/// Supervised contrastive loss (Khosla et al., 2020) on L2-normalized embeddings [batch, dim], as the authors' SupConLoss with one view: samples of the same label are pulled together, others pushed apart; anchors without a positive count as 0.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "supcon")]
pub struct SupConSpec {
    /// Temperature of the similarities.
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// The loss is scaled by temperature / base_temperature.
    #[serde(default = "default_temperature")]
    pub base_temperature: f64,
    /// The model output holding the embeddings.
    #[serde(default = "default_features")]
    pub features: String,
    /// The batch tensor holding the integer labels.
    #[serde(default = "default_target")]
    pub target: String,
}

struct SupCon(SupConSpec);

impl Loss for SupCon {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let s = &self.0;
        let features = output.float_flat(&s.features)?;
        let [n, _] = features.dims();
        let device = features.device();
        // F.normalize: x / max(||x||, 1e-12).
        let norms = features.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
        let z = features / norms;
        let logits = z.clone().matmul(z.transpose()).div_scalar(s.temperature);
        let logits = logits.clone() - logits.max_dim(1).detach();
        let not_self = Tensor::<2>::eye(n, &device).neg().add_scalar(1.0);
        let y = labels(batch, &s.target)?;
        let same = y
            .clone()
            .reshape([n, 1])
            .expand([n, n])
            .equal(y.reshape([1, n]).expand([n, n]))
            .float()
            * not_self.clone();
        let log_prob = logits.clone() - (logits.exp() * not_self).sum_dim(1).log();
        let positives = same.clone().sum_dim(1);
        let positives = positives.clone().mask_fill(positives.lower_elem(1e-6), 1.0);
        let mean_log_prob_pos = (same * log_prob).sum_dim(1) / positives;
        let loss = mean_log_prob_pos.mul_scalar(-s.temperature / s.base_temperature);
        Ok(LossValue::single(loss.mean()))
    }
}

impl LossSpec for SupConSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        for (arg, v) in [
            ("temperature", self.temperature),
            ("base_temperature", self.base_temperature),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(BuildError::at(arg, "must be positive"));
            }
        }
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Int,
            "supcon needs integer class labels",
        )?;
        Ok(Box::new(SupCon(self.clone())))
    }
}
