//! `rollout`: how far an autoregressive rollout strays from the true trajectory.

use serde::{Deserialize, Serialize};
use stoker::prelude::*;

fn default_rollout() -> String {
    "rollout".into()
}
/// Errors of an autoregressive rollout (model output `rollout` [batch, steps, points]) against the true steps (`y`), over the epoch's samples: rollout_rel_l2 (relative L2 per sample and step, mean over steps), rollout_rel_l2_final (last step), rollout_mse, rollout_mae, rollout_boundary_mae (the first and last point), rollout_mean_drift (|spatial mean of the last predicted step - that of the initial state `x`[:, 0]|, which Burgers with periodic boundaries conserves) and rollout_mean_drift_true (the same for the true last step). The per-step table goes to rollout_steps_<split>.csv. Steps without a rollout (training) are skipped.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(metric, name = "rollout")]
pub struct RolloutSpec {
    /// The model output holding the rollout.
    #[serde(default = "default_rollout")]
    pub rollout: String,
    /// The batch tensor of true steps.
    #[serde(default = "stoker::names::target")]
    pub target: String,
    /// The batch tensor whose first step is the initial state.
    #[serde(default = "stoker::names::input")]
    pub input: String,
}

/// Sums over the epoch, per step where it applies.
#[derive(Default)]
struct Rollout {
    spec: Option<RolloutSpec>,
    samples: usize,
    rel_l2: Vec<f64>,
    mse: Vec<f64>,
    mae: Vec<f64>,
    boundary: f64,
    drift: f64,
    drift_true: f64,
}

fn host(t: Tensor<1>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .expect("a float tensor")
}

fn add(sums: &mut Vec<f64>, values: Vec<f64>) {
    if sums.is_empty() {
        *sums = values;
    } else {
        sums.iter_mut().zip(values).for_each(|(s, v)| *s += v);
    }
}

impl Metric for Rollout {
    fn update(&mut self, step: &StepView<'_>) -> Result<()> {
        let spec = self.spec.as_ref().expect("built with its spec");
        if !step.output.contains(&spec.rollout) {
            return Ok(());
        }
        let r = step.output.float::<3>(&spec.rollout)?.detach();
        let y = step.batch.float::<3>(&spec.target)?;
        let x = step.batch.float::<3>(&spec.input)?;
        if r.dims() != y.dims() {
            return Err(StokerError::msg(format!(
                "rollout: `{}` {:?} and `{}` {:?} differ in shape",
                spec.rollout,
                r.dims(),
                spec.target,
                y.dims()
            )));
        }
        let [b, steps, n] = r.dims();
        let diff = r.clone() - y.clone();
        let per_step = |t: Tensor<3>| t.sum_dim(0).reshape([steps]);
        let norm = |t: Tensor<3>| t.square().sum_dim(2).sqrt();
        add(
            &mut self.rel_l2,
            host(per_step(norm(diff.clone()) / norm(y.clone()))),
        );
        add(
            &mut self.mse,
            host(per_step(diff.clone().square().mean_dim(2))),
        );
        add(
            &mut self.mae,
            host(per_step(diff.clone().abs().mean_dim(2))),
        );
        let edges = Tensor::cat(
            vec![diff.clone().narrow(2, 0, 1), diff.narrow(2, n - 1, 1)],
            2,
        );
        self.boundary += host(edges.abs().mean().reshape([1]))[0] * b as f64;
        let mean_last = |t: Tensor<3>| t.narrow(1, steps - 1, 1).mean_dim(2).reshape([b]);
        let initial = x.narrow(1, 0, 1).mean_dim(2).reshape([b]);
        self.drift += host((mean_last(r) - initial.clone()).abs().sum())[0];
        self.drift_true += host((mean_last(y) - initial).abs().sum())[0];
        self.samples += b;
        Ok(())
    }

    fn compute(&mut self) -> Result<Vec<(String, f64)>> {
        if self.samples == 0 {
            return Ok(Vec::new());
        }
        let n = self.samples as f64;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / (v.len() as f64 * n);
        Ok(vec![
            ("rollout_rel_l2".into(), mean(&self.rel_l2)),
            (
                "rollout_rel_l2_final".into(),
                self.rel_l2.last().copied().unwrap_or(0.0) / n,
            ),
            ("rollout_mse".into(), mean(&self.mse)),
            ("rollout_mae".into(), mean(&self.mae)),
            ("rollout_boundary_mae".into(), self.boundary / n),
            ("rollout_mean_drift".into(), self.drift / n),
            ("rollout_mean_drift_true".into(), self.drift_true / n),
        ])
    }

    fn reset(&mut self) {
        *self = Rollout {
            spec: self.spec.take(),
            ..Rollout::default()
        };
    }

    /// Per-step sums (empty until the first batch) and scalar sums, added over the processes.
    fn reduce(&mut self, reducer: &mut dyn Reducer, _device: &Device) -> Result<()> {
        for sums in [&mut self.rel_l2, &mut self.mse, &mut self.mae] {
            let own = (!sums.is_empty()).then(|| std::mem::take(sums));
            *sums = stoker::metric::sum_sized(reducer, own)?.unwrap_or_default();
        }
        let mut scalars = [
            self.boundary,
            self.drift,
            self.drift_true,
            self.samples as f64,
        ];
        reducer.sum(&mut scalars)?;
        let [boundary, drift, drift_true, samples] = scalars;
        (self.boundary, self.drift, self.drift_true) = (boundary, drift, drift_true);
        self.samples = samples as usize;
        Ok(())
    }

    fn artifacts(&mut self) -> Result<Vec<(String, String)>> {
        if self.samples == 0 {
            return Ok(Vec::new());
        }
        let n = self.samples as f64;
        let mut csv = String::from("step,rel_l2,mse,mae\n");
        for (i, ((r, m), a)) in self.rel_l2.iter().zip(&self.mse).zip(&self.mae).enumerate() {
            csv.push_str(&format!("{},{},{},{}\n", i + 1, r / n, m / n, a / n));
        }
        Ok(vec![("rollout_steps".into(), csv)])
    }
}

impl MetricSpec for RolloutSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Metric>, BuildError> {
        let data = ctx.data()?;
        for (arg, name) in [("target", &self.target), ("input", &self.input)] {
            let info = data.require(arg, name)?;
            if info.sample_shape.len() != 2 || info.kind != ElementKind::Float {
                return Err(BuildError::at(
                    arg,
                    format!(
                        "`{name}` must hold float [steps, points] samples, not {:?}",
                        info.sample_shape
                    ),
                ));
            }
        }
        Ok(Box::new(Rollout {
            spec: Some(self.clone()),
            ..Rollout::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(values: Vec<f32>, shape: [usize; 3]) -> Tensor<3> {
        Tensor::from_data(TensorData::new(values, shape), &Device::flex())
    }

    #[test]
    fn hand_computed_errors_of_a_two_step_rollout() {
        let spec = RolloutSpec {
            rollout: "rollout".into(),
            target: "y".into(),
            input: "x".into(),
        };
        let mut metric = Rollout {
            spec: Some(spec),
            ..Rollout::default()
        };
        // One sample, 2 steps of 2 points. Truth y = [[3, 4], [0, 2]]; rollout = [[3, 4], [1, 3]];
        // initial state x[:, 0] = [1, 1] (mean 1).
        let y = tensor(vec![3.0, 4.0, 0.0, 2.0], [1, 2, 2]);
        let r = tensor(vec![3.0, 4.0, 1.0, 3.0], [1, 2, 2]);
        let x = tensor(vec![1.0, 1.0, 3.0, 4.0], [1, 2, 2]);
        let mut batch = Batch::batch();
        batch.insert_float("y", y);
        batch.insert_float("x", x);
        let output = Output::output().with_float("rollout", r);
        let loss = LossValue::single(Tensor::<1>::zeros([1], &Device::flex()));
        metric
            .update(&StepView {
                batch: &batch,
                output: &output,
                loss: &loss,
            })
            .unwrap();
        let values: std::collections::BTreeMap<String, f64> =
            metric.compute().unwrap().into_iter().collect();
        // Step 1 exact; step 2: diff [1, 1], ||diff|| = sqrt 2, ||y|| = 2.
        let rel2 = 2f64.sqrt() / 2.0;
        assert!((values["rollout_rel_l2"] - rel2 / 2.0).abs() < 1e-6);
        assert!((values["rollout_rel_l2_final"] - rel2).abs() < 1e-6);
        assert!((values["rollout_mse"] - 0.5).abs() < 1e-6);
        assert!((values["rollout_mae"] - 0.5).abs() < 1e-6);
        // Boundary points are both points here: mean |diff| over steps and both ends = 0.5.
        assert!((values["rollout_boundary_mae"] - 0.5).abs() < 1e-6);
        // Last step means: rollout 2, truth 1; initial 1.
        assert!((values["rollout_mean_drift"] - 1.0).abs() < 1e-6);
        assert!(values["rollout_mean_drift_true"].abs() < 1e-6);
        let csv = metric.artifacts().unwrap().remove(0).1;
        assert_eq!(csv.lines().count(), 3);
    }
}
