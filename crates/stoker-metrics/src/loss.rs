//! `loss`: the loss averaged over the epoch's samples.

use serde::{Deserialize, Serialize};
use stoker::prelude::*;

use crate::sum::DeviceSum;

/// The loss averaged over every sample of the epoch (each batch weighted by its size); always tracked, logged as `<split>_loss`.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(metric, name = "loss")]
pub struct LossMetricSpec {}

/// The epoch's mean loss, plus each named term of a composite loss (`loss_<term>`).
#[derive(Default)]
pub struct LossMetric {
    total: DeviceSum,
    terms: Vec<(String, DeviceSum)>,
}

impl Metric for LossMetric {
    fn update(&mut self, step: &StepView<'_>) -> Result<()> {
        let n = step.batch.batch_size();
        self.total
            .add(step.loss.total.clone().mul_scalar(n as f64), n);
        for (name, value) in &step.loss.terms {
            let index = match self.terms.iter().position(|(t, _)| t == name) {
                Some(i) => i,
                None => {
                    self.terms.push((name.clone(), DeviceSum::default()));
                    self.terms.len() - 1
                }
            };
            self.terms[index]
                .1
                .add(value.clone().mul_scalar(n as f64), n);
        }
        Ok(())
    }

    fn compute(&mut self) -> Result<Vec<(String, f64)>> {
        let mut out: Vec<(String, f64)> = self
            .total
            .mean()
            .map(|v| ("loss".to_string(), v))
            .into_iter()
            .collect();
        for (name, sum) in &self.terms {
            if let Some(v) = sum.mean() {
                out.push((format!("loss_{name}"), v));
            }
        }
        Ok(out)
    }

    /// The terms' names stay (a process that sees no batch until the next reduction still
    /// knows them); their sums go.
    fn reset(&mut self) {
        self.total.reset();
        for (_, sum) in &mut self.terms {
            sum.reset();
        }
    }

    /// Every process computes the same loss, so its terms (named at the first batch) are the
    /// same and in the same order.
    fn reduce(&mut self, reducer: &mut dyn Reducer, device: &Device) -> Result<()> {
        self.total.reduce(reducer, device)?;
        // Every process learns of a disagreement, and all of them stop on it.
        let n = self.terms.len() as f64;
        let mut extremes = [n, -n];
        reducer.max(&mut extremes)?;
        if extremes[0] != -extremes[1] {
            return Err(StokerError::msg(format!(
                "the loss's named terms differ between the processes (this one knows {}, another {}): a process saw no batch of this split yet",
                self.terms.len(),
                if extremes[0] == n {
                    -extremes[1]
                } else {
                    extremes[0]
                }
            )));
        }
        for (_, sum) in &mut self.terms {
            sum.reduce(reducer, device)?;
        }
        Ok(())
    }

    fn state(&self) -> Result<serde_json::Value> {
        let terms: Vec<serde_json::Value> = self
            .terms
            .iter()
            .map(|(name, sum)| serde_json::json!([name, sum.state()]))
            .collect();
        Ok(serde_json::json!({ "total": self.total.state(), "terms": terms }))
    }

    fn load_state(&mut self, state: &serde_json::Value, device: &Device) -> Result<()> {
        self.total.load_state(&state["total"], device)?;
        self.terms.clear();
        for term in state["terms"].as_array().into_iter().flatten() {
            let name = term[0].as_str().unwrap_or_default().to_string();
            let mut sum = DeviceSum::default();
            sum.load_state(&term[1], device)?;
            self.terms.push((name, sum));
        }
        Ok(())
    }
}

impl MetricSpec for LossMetricSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn Metric>, BuildError> {
        Ok(Box::new(LossMetric::default()))
    }
}
