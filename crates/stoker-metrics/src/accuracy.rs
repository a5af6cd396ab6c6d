//! `accuracy`: the fraction of samples whose highest-scoring class is the label.

use serde::{Deserialize, Serialize};
use stoker::names::{prediction as default_pred, target as default_target};
use stoker::prelude::*;
use stoker::targets::hard_labels;

use crate::sum::DeviceCount;

/// Fraction of the epoch's samples whose arg-max class score equals the integer label.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(metric, name = "accuracy")]
pub struct AccuracySpec {
    /// The model output holding the class scores [batch, classes].
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor holding the integer labels.
    #[serde(default = "default_target")]
    pub target: String,
    /// A suffix for the logged name, `accuracy_<label>`: two accuracies of different
    /// predictions (the scores on attacked inputs, a second head) side by side.
    #[serde(default)]
    pub label: Option<String>,
}

/// Accuracy over the epoch.
pub struct Accuracy {
    spec: AccuracySpec,
    hits: DeviceCount,
}

impl Accuracy {
    /// `accuracy`, or `accuracy_<label>`.
    fn name(&self) -> String {
        match &self.spec.label {
            Some(label) => format!("accuracy_{label}"),
            None => "accuracy".to_string(),
        }
    }
}

impl Metric for Accuracy {
    fn update(&mut self, step: &StepView<'_>) -> Result<()> {
        let scores = step.output.float::<2>(&self.spec.pred)?.detach();
        let [n, classes] = scores.dims();
        if classes < 2 {
            return Err(StokerError::msg(format!(
                "accuracy needs class scores [batch, classes]; `{}` has {classes} column",
                self.spec.pred
            )));
        }
        let predicted = scores.argmax(1).reshape([n]);
        let labels = hard_labels(step.batch, &self.spec.target)?;
        let hits = predicted.equal(labels).int().sum();
        self.hits.add(hits, n);
        Ok(())
    }

    fn compute(&mut self) -> Result<Vec<(String, f64)>> {
        Ok(self
            .hits
            .fraction()
            .map(|v| (self.name(), v))
            .into_iter()
            .collect())
    }

    fn reset(&mut self) {
        self.hits.reset();
    }

    fn reduce(&mut self, reducer: &mut dyn Reducer, device: &Device) -> Result<()> {
        self.hits.reduce(reducer, device)
    }

    fn state(&self) -> Result<serde_json::Value> {
        Ok(self.hits.state())
    }

    fn load_state(&mut self, state: &serde_json::Value, device: &Device) -> Result<()> {
        self.hits.load_state(state, device)
    }
}

impl MetricSpec for AccuracySpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Metric>, BuildError> {
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Int,
            "accuracy needs integer class labels",
        )?;
        Ok(Box::new(Accuracy {
            spec: self.clone(),
            hits: DeviceCount::default(),
        }))
    }
}
