//! `temporal_smoothness`: a bearing does not switch faults from one moment to the next, so the
//! class probabilities of consecutive windows of a recording should change little (the bearing
//! seed's `TemporalSmoothnessLoss`).

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::activation::softmax;
use stoker::prelude::*;

fn default_pred() -> String {
    "window_pred".into()
}
fn one() -> f64 {
    1.0
}

/// Temporal smoothness of predictions on consecutive windows: p = softmax of the scores `pred` [batch, windows, classes] (CNN1d with `windows` gives them as window_pred); the loss is weight x the mean over samples and consecutive pairs of sum over classes of (p[t+1] - p[t])^2, and 0 with fewer than two windows.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "temporal_smoothness")]
pub struct TemporalSmoothnessSpec {
    /// The scores per window, [batch, windows, classes].
    #[serde(default = "default_pred")]
    pub pred: String,
    /// A factor on the loss (the seed's smoothness_weight).
    #[serde(default = "one")]
    pub weight: f64,
}

impl TemporalSmoothnessSpec {
    /// The loss on scores `[batch, windows, classes]`.
    pub fn smoothness(&self, scores: Tensor<3>) -> Tensor<1> {
        let [b, w, _] = scores.dims();
        if w < 2 {
            return Tensor::zeros([1], &scores.device());
        }
        let p = softmax(scores, 2);
        let change = p.clone().narrow(1, 1, w - 1) - p.narrow(1, 0, w - 1);
        change
            .square()
            .sum_dim(2)
            .reshape([b * (w - 1)])
            .mean()
            .mul_scalar(self.weight)
    }
}

struct TemporalSmoothness(TemporalSmoothnessSpec);

impl Loss for TemporalSmoothness {
    fn forward(&self, output: &Output, _batch: &Batch) -> Result<LossValue> {
        let s = &self.0;
        let rank = output.shape(&s.pred)?.len();
        if rank != 3 {
            return Err(StokerError::msg(format!(
                "temporal_smoothness: `{}` has rank {rank}; it needs scores [batch, windows, classes] (CNN1d gives them as window_pred with `windows: 2` or more)",
                s.pred
            )));
        }
        Ok(LossValue::single(s.smoothness(output.float::<3>(&s.pred)?)))
    }
}

impl LossSpec for TemporalSmoothnessSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        if !(self.weight.is_finite() && self.weight >= 0.0) {
            return Err(BuildError::at("weight", "must be a number >= 0"));
        }
        Ok(Box::new(TemporalSmoothness(self.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(values: Vec<f32>, shape: [usize; 3]) -> Tensor<3> {
        Tensor::from_data(TensorData::new(values, shape), &Device::flex())
    }

    fn value(t: Tensor<1>) -> f32 {
        t.into_data().try_to_vec::<f32>().unwrap()[0]
    }

    #[test]
    fn the_loss_is_the_mean_squared_change_of_probabilities() {
        let spec: TemporalSmoothnessSpec = serde_yaml::from_str("{weight: 2.0}").unwrap();
        let ln3 = 3f32.ln();
        // Sample 0: p = (1/2, 1/2), (3/4, 1/4), (3/4, 1/4): changes 2 x (1/4)^2 = 1/8, then 0.
        // Sample 1: p = (1/4, 3/4) three times: no change.
        // Mean over 4 pairs: 1/32, times the weight 2: 1/16.
        let s = scores(
            vec![0.0, 0.0, ln3, 0.0, ln3, 0.0, 0.0, ln3, 0.0, ln3, 0.0, ln3],
            [2, 3, 2],
        );
        let v = value(spec.smoothness(s));
        assert!((v - 1.0 / 16.0).abs() < 1e-6, "{v}");
    }

    #[test]
    fn one_window_has_nothing_to_compare() {
        let spec: TemporalSmoothnessSpec = serde_yaml::from_str("{}").unwrap();
        assert_eq!(
            value(spec.smoothness(scores(vec![1.0, -1.0], [1, 1, 2]))),
            0.0
        );
    }
}
