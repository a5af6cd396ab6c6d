//! `mse`: mean squared error over the epoch.

use serde::{Deserialize, Serialize};
use stoker::names::{prediction as default_pred, target as default_target};
use stoker::prelude::*;
use stoker::targets::squared_errors;

use crate::sum::DeviceSum;

/// Mean squared error over every value of the epoch (a sum of squares over a count, not a mean of batch means).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(metric, name = "mse")]
pub struct MseMetricSpec {
    /// The model output compared.
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor it is compared with.
    #[serde(default = "default_target")]
    pub target: String,
}

/// Mean squared error over the epoch.
pub struct MseMetric {
    spec: MseMetricSpec,
    sum: DeviceSum,
}

impl Metric for MseMetric {
    fn update(&mut self, step: &StepView<'_>) -> Result<()> {
        let errors = squared_errors(step.output, &self.spec.pred, step.batch, &self.spec.target)?;
        let count = errors.dims().iter().product();
        self.sum.add(errors.sum(), count);
        Ok(())
    }

    fn compute(&mut self) -> Result<Vec<(String, f64)>> {
        Ok(self
            .sum
            .mean()
            .map(|v| ("mse".to_string(), v))
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

impl MetricSpec for MseMetricSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Metric>, BuildError> {
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Float,
            "mse compares floats",
        )?;
        Ok(Box::new(MseMetric {
            spec: self.clone(),
            sum: DeviceSum::default(),
        }))
    }
}
