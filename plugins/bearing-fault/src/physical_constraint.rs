//! `physical_constraint`: the bearing seed's `PhysicalConstraintLoss`, a weighted sum of the
//! three physics terms: frequency consistency (always), Sommerfeld consistency (when severity
//! is predicted) and temporal smoothness (when windows are predicted).

use serde::{Deserialize, Serialize};
use stoker::prelude::*;

use crate::consistency::FrequencyConsistencySpec;
use crate::sommerfeld::SommerfeldConsistencySpec;
use crate::temporal::TemporalSmoothnessSpec;

fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}
fn tenth() -> f64 {
    0.1
}

/// The seed's combined physics loss: lambda_freq x frequency_consistency + lambda_sommerfeld x sommerfeld_consistency + lambda_temporal x temporal_smoothness, each term logged on its own (freq, sommerfeld, temporal). `frequency`, `sommerfeld` and `temporal` take each loss's own arguments; as in the seed, the Sommerfeld term is left out unless `sommerfeld` is given (it needs predicted severities) and the temporal term unless `temporal` is given (it needs predictions per window). Add it to a classification loss with weighted_sum.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "physical_constraint")]
pub struct PhysicalConstraintSpec {
    /// The weight of the frequency-consistency term.
    #[serde(default = "one")]
    pub lambda_freq: f64,
    /// The weight of the Sommerfeld-consistency term.
    #[serde(default = "half")]
    pub lambda_sommerfeld: f64,
    /// The weight of the temporal-smoothness term.
    #[serde(default = "tenth")]
    pub lambda_temporal: f64,
    /// frequency_consistency's arguments.
    #[serde(default)]
    pub frequency: FrequencyConsistencySpec,
    /// sommerfeld_consistency's arguments (none: no Sommerfeld term).
    #[serde(default)]
    pub sommerfeld: Option<SommerfeldConsistencySpec>,
    /// temporal_smoothness's arguments (none: no temporal term).
    #[serde(default)]
    pub temporal: Option<TemporalSmoothnessSpec>,
}

struct PhysicalConstraint {
    terms: Vec<(&'static str, f64, Box<dyn Loss>)>,
}

impl Loss for PhysicalConstraint {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let mut total: Option<Tensor<1>> = None;
        let mut terms = Vec::new();
        for (label, weight, loss) in &self.terms {
            let value = loss
                .forward(output, batch)
                .map_err(|e| StokerError::msg(format!("physical_constraint, {label}: {e}")))?
                .total;
            let weighted = value.clone().mul_scalar(*weight);
            total = Some(match total {
                Some(t) => t + weighted,
                None => weighted,
            });
            terms.push((label.to_string(), value));
        }
        Ok(LossValue {
            total: total.expect("the frequency term is always there"),
            terms,
        })
    }
}

/// `spec` built, its errors placed under `at`.
fn nested(
    at: &str,
    built: std::result::Result<Box<dyn Loss>, BuildError>,
) -> std::result::Result<Box<dyn Loss>, BuildError> {
    built.map_err(|mut e| {
        e.arg = Some(match e.arg.take() {
            Some(arg) => format!("{at}.{arg}"),
            None => at.to_string(),
        });
        e
    })
}

impl LossSpec for PhysicalConstraintSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        for (arg, weight) in [
            ("lambda_freq", self.lambda_freq),
            ("lambda_sommerfeld", self.lambda_sommerfeld),
            ("lambda_temporal", self.lambda_temporal),
        ] {
            if !(weight.is_finite() && weight >= 0.0) {
                return Err(BuildError::at(arg, "must be a number >= 0"));
            }
        }
        let mut terms = vec![(
            "freq",
            self.lambda_freq,
            nested("frequency", self.frequency.build(ctx))?,
        )];
        if let Some(spec) = &self.sommerfeld {
            let loss = nested("sommerfeld", spec.build(ctx))?;
            terms.push(("sommerfeld", self.lambda_sommerfeld, loss));
        }
        if let Some(spec) = &self.temporal {
            let loss = nested("temporal", spec.build(ctx))?;
            terms.push(("temporal", self.lambda_temporal, loss));
        }
        Ok(Box::new(PhysicalConstraint { terms }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stoker::burn::tensor::Distribution;

    fn context() -> BuildContext {
        BuildContext::with_float_tensors(
            &Device::flex(),
            &[("x", &[256]), ("rpm", &[1]), ("load", &[1])],
        )
    }

    fn value(t: Tensor<1>) -> f64 {
        t.into_data().try_to_vec::<f32>().unwrap()[0] as f64
    }

    #[test]
    fn the_total_weights_each_term_and_leaves_out_those_not_asked_for() {
        let device = Device::flex();
        let column =
            |v: [f32; 3]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [3, 1]), &device);
        let batch = Batch::batch()
            .with_float(
                "x",
                Tensor::<2>::random([3, 256], Distribution::Normal(0.0, 1.0), &device),
            )
            .with_float("rpm", column([1750.0, 1772.0, 1797.0]))
            .with_float("load", column([500.0, 5000.0, 100.0]));
        let output = Output::output()
            .with_float(
                "pred",
                Tensor::<2>::random([3, 4], Distribution::Normal(0.0, 1.0), &device),
            )
            .with_float("severity", column([1.0, 2.0, 0.0]))
            .with_float(
                "window_pred",
                Tensor::<3>::random([3, 4, 4], Distribution::Normal(0.0, 1.0), &device),
            );
        let ctx = context();
        let spec: PhysicalConstraintSpec = serde_yaml::from_str(
            "{lambda_freq: 2.0, lambda_sommerfeld: 0.5, lambda_temporal: 0.25, sommerfeld: {pred: severity}, temporal: {}}",
        )
        .unwrap();
        let value_of = |loss: Box<dyn Loss>| value(loss.forward(&output, &batch).unwrap().total);
        let freq = value_of(FrequencyConsistencySpec::default().build(&ctx).unwrap());
        let somm = value_of(
            serde_yaml::from_str::<SommerfeldConsistencySpec>("{pred: severity}")
                .unwrap()
                .build(&ctx)
                .unwrap(),
        );
        let temporal = value_of(
            serde_yaml::from_str::<TemporalSmoothnessSpec>("{}")
                .unwrap()
                .build(&ctx)
                .unwrap(),
        );
        let combined = spec.build(&ctx).unwrap().forward(&output, &batch).unwrap();
        let labels: Vec<&str> = combined.terms.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["freq", "sommerfeld", "temporal"]);
        let want = 2.0 * freq + 0.5 * somm + 0.25 * temporal;
        assert!((value(combined.total) - want).abs() < 1e-5, "{want}");
        assert!(freq > 0.0 && somm > 0.0 && temporal > 0.0);
        // Without `sommerfeld` and `temporal`: the frequency term alone, at lambda_freq.
        let alone: PhysicalConstraintSpec = serde_yaml::from_str("{lambda_freq: 3.0}").unwrap();
        let alone = alone.build(&ctx).unwrap().forward(&output, &batch).unwrap();
        assert_eq!(alone.terms.len(), 1);
        assert!((value(alone.total) - 3.0 * freq).abs() < 1e-5);
    }
}
