//! Regression metrics: `mae`, `rmse`, `r2`, `rel_l2`, `max_error` (and `mse` in its own file),
//! each exact over the whole epoch.

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::{Tensor, TensorData};
use stoker::names::{prediction as default_pred, target as default_target};
use stoker::prelude::*;
use stoker::targets::pair;
use stoker::targets::relative_lp;

use crate::sum::{DeviceSum, host, max_tensor, sum_count, sum_tensor, upload};
use stoker::metric::sum_sized;

macro_rules! spec {
    ($spec:ident, $name:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Serialize, Deserialize, Component)]
        #[serde(deny_unknown_fields)]
        #[component(metric, name = $name)]
        pub struct $spec {
            /// The model output compared.
            #[serde(default = "default_pred")]
            pub pred: String,
            /// The batch tensor it is compared with.
            #[serde(default = "default_target")]
            pub target: String,
        }
    };
}

spec!(
    MaeSpec,
    "mae",
    "Mean absolute error over every value of the epoch, as sklearn's mean_absolute_error."
);
spec!(
    RmseSpec,
    "rmse",
    "Root mean squared error over the epoch, per output value and averaged over outputs, as sklearn's root_mean_squared_error."
);
spec!(
    R2Spec,
    "r2",
    "Coefficient of determination per output value, averaged over outputs, over the whole epoch: sklearn's r2_score (uniform_average)."
);
spec!(
    RelL2Spec,
    "rel_l2",
    "Relative L2 error ||pred - target|| / ||target|| per sample, averaged over the epoch's samples (the FNO test metric)."
);
spec!(
    MaxErrorSpec,
    "max_error",
    "The largest absolute error over every value of the epoch, as sklearn's max_error."
);

/// A metric of one per-value statistic summed over the epoch.
struct Summed {
    name: &'static str,
    pred: String,
    target: String,
    /// What is summed per batch, and how many values it counts.
    per_batch: fn(Tensor<2>, Tensor<2>) -> (Tensor<1>, usize),
    /// The final value from the sum's mean.
    finish: fn(f64) -> f64,
    sum: DeviceSum,
}

impl Metric for Summed {
    fn update(&mut self, step: &StepView<'_>) -> Result<()> {
        let (p, t) = pair(step.output, &self.pred, step.batch, &self.target)?;
        let (sum, count) = (self.per_batch)(p.detach(), t);
        self.sum.add(sum, count);
        Ok(())
    }

    fn compute(&mut self) -> Result<Vec<(String, f64)>> {
        Ok(self
            .sum
            .mean()
            .map(|m| (self.name.to_string(), (self.finish)(m)))
            .into_iter()
            .collect())
    }

    fn reset(&mut self) {
        self.sum.reset();
    }

    fn reduce(&mut self, reducer: &mut dyn Reducer, device: &Device) -> Result<()> {
        self.sum.reduce(reducer, device)
    }

    fn state(&self) -> Result<serde_json::Value> {
        Ok(self.sum.state())
    }

    fn load_state(&mut self, state: &serde_json::Value, device: &Device) -> Result<()> {
        self.sum.load_state(state, device)
    }
}

fn values(p: &Tensor<2>) -> usize {
    p.dims().iter().product()
}

fn summed(
    name: &'static str,
    pred: &str,
    target: &str,
    per_batch: fn(Tensor<2>, Tensor<2>) -> (Tensor<1>, usize),
    finish: fn(f64) -> f64,
) -> Box<dyn Metric> {
    Box::new(Summed {
        name,
        pred: pred.into(),
        target: target.into(),
        per_batch,
        finish,
        sum: DeviceSum::default(),
    })
}

impl MetricSpec for MaeSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Metric>, BuildError> {
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Float,
            "mae compares floats",
        )?;
        Ok(summed(
            "mae",
            &self.pred,
            &self.target,
            |p, t| {
                let n = values(&p);
                ((p - t).abs().sum(), n)
            },
            |m| m,
        ))
    }
}

impl MetricSpec for RmseSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Metric>, BuildError> {
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Float,
            "rmse compares floats",
        )?;
        Ok(Box::new(Rmse {
            pred: self.pred.clone(),
            target: self.target.clone(),
            sse: None,
            count: 0,
        }))
    }
}

/// RMSE per output column over the epoch, averaged over the columns (sklearn's uniform_average).
pub struct Rmse {
    pred: String,
    target: String,
    sse: Option<Tensor<1>>,
    count: usize,
}

impl Metric for Rmse {
    fn update(&mut self, step: &StepView<'_>) -> Result<()> {
        let (p, t) = pair(step.output, &self.pred, step.batch, &self.target)?;
        let [n, width] = p.dims();
        let batch = (p.detach() - t).square().sum_dim(0).reshape([width]);
        self.sse = Some(match self.sse.take() {
            Some(s) => s + batch,
            None => batch,
        });
        self.count += n;
        Ok(())
    }

    fn compute(&mut self) -> Result<Vec<(String, f64)>> {
        let Some(sse) = self.sse.clone() else {
            return Ok(Vec::new());
        };
        let sse = sse
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .map_err(|e| StokerError::msg(format!("rmse: {e:?}")))?;
        let n = self.count as f64;
        let mean = sse.iter().map(|s| (s / n).sqrt()).sum::<f64>() / sse.len() as f64;
        Ok(vec![("rmse".into(), mean)])
    }

    fn reset(&mut self) {
        self.sse = None;
        self.count = 0;
    }

    fn reduce(&mut self, reducer: &mut dyn Reducer, device: &Device) -> Result<()> {
        sum_tensor(reducer, &mut self.sse, device)?;
        sum_count(reducer, &mut self.count)
    }

    fn state(&self) -> Result<serde_json::Value> {
        let sse = self.sse.clone().map(|s| {
            s.into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default()
        });
        Ok(serde_json::json!({ "sse": sse, "count": self.count }))
    }

    fn load_state(&mut self, state: &serde_json::Value, device: &Device) -> Result<()> {
        self.count = state["count"].as_u64().unwrap_or(0) as usize;
        self.sse = state["sse"].as_array().map(|a| {
            let values: Vec<f32> = a.iter().map(|v| v.as_f64().unwrap_or(0.0) as f32).collect();
            let n = values.len();
            Tensor::from_data(TensorData::new(values, [n]), device)
        });
        Ok(())
    }
}

impl MetricSpec for RelL2Spec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Metric>, BuildError> {
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Float,
            "rel_l2 compares floats",
        )?;
        Ok(summed(
            "rel_l2",
            &self.pred,
            &self.target,
            |p, t| {
                let n = p.dims()[0];
                (relative_lp(p, t, 2.0).sum(), n)
            },
            |m| m,
        ))
    }
}

/// The running maximum absolute error.
pub struct MaxError {
    pred: String,
    target: String,
    max: Option<Tensor<1>>,
}

impl Metric for MaxError {
    fn update(&mut self, step: &StepView<'_>) -> Result<()> {
        let (p, t) = pair(step.output, &self.pred, step.batch, &self.target)?;
        let batch_max = (p.detach() - t).abs().max();
        self.max = Some(match self.max.take() {
            Some(m) => m.max_pair(batch_max),
            None => batch_max,
        });
        Ok(())
    }

    fn compute(&mut self) -> Result<Vec<(String, f64)>> {
        Ok(self
            .max
            .clone()
            .map(|m| ("max_error".to_string(), m.into_scalar::<f64>()))
            .into_iter()
            .collect())
    }

    fn reset(&mut self) {
        self.max = None;
    }

    fn reduce(&mut self, reducer: &mut dyn Reducer, device: &Device) -> Result<()> {
        max_tensor(reducer, &mut self.max, device)
    }

    fn state(&self) -> Result<serde_json::Value> {
        Ok(serde_json::json!({ "max": self.max.clone().map(|m| m.into_scalar::<f32>() as f64) }))
    }

    fn load_state(&mut self, state: &serde_json::Value, device: &Device) -> Result<()> {
        self.max = state["max"]
            .as_f64()
            .map(|v| Tensor::from_data(TensorData::new(vec![v as f32], [1]), device));
        Ok(())
    }
}

impl MetricSpec for MaxErrorSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Metric>, BuildError> {
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Float,
            "max_error compares floats",
        )?;
        Ok(Box::new(MaxError {
            pred: self.pred.clone(),
            target: self.target.clone(),
            max: None,
        }))
    }
}

/// R^2 per output column over the epoch. Sums are taken around a shift (the first batch's
/// column means) so that the total sum of squares does not lose precision.
pub struct R2 {
    pred: String,
    target: String,
    shift: Option<Tensor<2>>,
    /// Per column: sum of (y - shift), sum of (y - shift)^2, sum of (y - p)^2.
    sums: Option<[Tensor<1>; 3]>,
    count: usize,
}

impl Metric for R2 {
    fn update(&mut self, step: &StepView<'_>) -> Result<()> {
        let (p, t) = pair(step.output, &self.pred, step.batch, &self.target)?;
        let [n, width] = t.dims();
        let shift = self
            .shift
            .get_or_insert_with(|| t.clone().mean_dim(0))
            .clone();
        let centered = t.clone() - shift;
        let batch = [
            centered.clone().sum_dim(0).reshape([width]),
            centered.square().sum_dim(0).reshape([width]),
            (t - p.detach()).square().sum_dim(0).reshape([width]),
        ];
        self.sums = Some(match self.sums.take() {
            Some([a, b, c]) => {
                let [x, y, z] = batch;
                [a + x, b + y, c + z]
            }
            None => batch,
        });
        self.count += n;
        Ok(())
    }

    fn compute(&mut self) -> Result<Vec<(String, f64)>> {
        let Some([s1, s2, sse]) = self.sums.clone() else {
            return Ok(Vec::new());
        };
        let read = |t: Tensor<1>| -> Result<Vec<f64>> {
            t.into_data()
                .convert::<f64>()
                .try_to_vec::<f64>()
                .map_err(|e| StokerError::msg(format!("r2: {e:?}")))
        };
        let (s1, s2, sse) = (read(s1)?, read(s2)?, read(sse)?);
        let n = self.count as f64;
        let scores: Vec<f64> = (0..s1.len())
            .map(|j| {
                let sst = s2[j] - s1[j] * s1[j] / n;
                // As sklearn's force_finite: a constant target scores 1 when predicted exactly, else 0.
                if sst <= 0.0 {
                    if sse[j] == 0.0 { 1.0 } else { 0.0 }
                } else {
                    1.0 - sse[j] / sst
                }
            })
            .collect();
        Ok(vec![(
            "r2".into(),
            scores.iter().sum::<f64>() / scores.len() as f64,
        )])
    }

    fn reset(&mut self) {
        self.shift = None;
        self.sums = None;
        self.count = 0;
    }

    /// Each process's sums are around its own shift: they are moved to a common one, the
    /// global mean m (from sum(n_r s_r + S1_r) / N), before they are added:
    /// S1' = S1 + n (s - m), S2' = S2 + 2 (s - m) S1 + n (s - m)^2.
    fn reduce(&mut self, reducer: &mut dyn Reducer, device: &Device) -> Result<()> {
        let shift = host(&self.shift.clone().map(|s| {
            let width = s.dims()[1];
            s.reshape([width])
        }))?;
        let [s1, s2, sse] = match &self.sums {
            Some([a, b, c]) => [
                host(&Some(a.clone()))?,
                host(&Some(b.clone()))?,
                host(&Some(c.clone()))?,
            ],
            None => [None, None, None],
        };
        let n = self.count as f64;
        let mut total = self.count;
        sum_count(reducer, &mut total)?;
        let weighted = match (&shift, &s1) {
            (Some(s), Some(s1)) => Some(s.iter().zip(s1).map(|(s, a)| n * s + a).collect()),
            _ => None,
        };
        let Some(weighted) = sum_sized(reducer, weighted)? else {
            return Ok(());
        };
        let mean: Vec<f64> = weighted.iter().map(|w| w / total as f64).collect();
        let moved = match (shift, s1, s2) {
            (Some(s), Some(s1), Some(s2)) => {
                let d: Vec<f64> = s.iter().zip(&mean).map(|(s, m)| s - m).collect();
                let a: Vec<f64> = s1.iter().zip(&d).map(|(a, d)| a + n * d).collect();
                let b: Vec<f64> = (0..d.len())
                    .map(|j| s2[j] + 2.0 * d[j] * s1[j] + n * d[j] * d[j])
                    .collect();
                Some([a, b].concat())
            }
            _ => None,
        };
        let moved = sum_sized(reducer, moved)?.unwrap_or_default();
        let sse = sum_sized(reducer, sse)?.unwrap_or_default();
        let width = mean.len();
        self.shift = Some(upload(mean, device).reshape([1, width]));
        self.sums = Some([
            upload(moved[..width].to_vec(), device),
            upload(moved[width..].to_vec(), device),
            upload(sse, device),
        ]);
        self.count = total;
        Ok(())
    }

    fn state(&self) -> Result<serde_json::Value> {
        let host = |t: &Tensor<1>| {
            t.clone()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default()
        };
        Ok(serde_json::json!({
            "shift": self.shift.as_ref().map(|s| host(&s.clone().reshape([s.dims()[1]]))),
            "sums": self.sums.as_ref().map(|s| s.iter().map(host).collect::<Vec<_>>()),
            "count": self.count,
        }))
    }

    fn load_state(&mut self, state: &serde_json::Value, device: &Device) -> Result<()> {
        let vector = |v: &serde_json::Value| -> Option<Tensor<1>> {
            let values: Vec<f32> = v
                .as_array()?
                .iter()
                .map(|x| x.as_f64().unwrap_or(0.0) as f32)
                .collect();
            let n = values.len();
            Some(Tensor::from_data(TensorData::new(values, [n]), device))
        };
        self.count = state["count"].as_u64().unwrap_or(0) as usize;
        self.shift = vector(&state["shift"]).map(|s| {
            let n = s.dims()[0];
            s.reshape([1, n])
        });
        self.sums = state["sums"].as_array().and_then(|a| {
            let v: Vec<Tensor<1>> = a.iter().filter_map(vector).collect();
            <[Tensor<1>; 3]>::try_from(v).ok()
        });
        Ok(())
    }
}

impl MetricSpec for R2Spec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Metric>, BuildError> {
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Float,
            "r2 compares floats",
        )?;
        Ok(Box::new(R2 {
            pred: self.pred.clone(),
            target: self.target.clone(),
            shift: None,
            sums: None,
            count: 0,
        }))
    }
}
