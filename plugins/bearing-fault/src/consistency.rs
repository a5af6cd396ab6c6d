//! `frequency_consistency`: a physics term for fault classifiers. The envelope of a faulty
//! bearing's vibration repeats at the fault's characteristic frequency, so probability put on a
//! fault class whose frequency carries little envelope energy is penalized.

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::activation::softmax;
use stoker::prelude::*;

use crate::geometry::Geometry;
use crate::signal::Fault;

fn default_rpm() -> String {
    "rpm".into()
}
fn default_sample_rate() -> f64 {
    12_000.0
}

/// Frequency consistency of fault predictions: for each sample, the envelope spectrum (|x| minus its mean) at each fault's characteristic frequency (BPFO, BPFI, 2 x BSF from the geometry and the sample's `rpm`) is normalized by the largest of the three; the loss is the mean over samples of sum over fault classes of p(class) x (1 - its relative energy), p the softmax of the class scores (classes 1 outer race, 2 inner race, 3 ball). Combine it with a classification loss in `weighted_sum`.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "frequency_consistency")]
pub struct FrequencyConsistencySpec {
    /// The raw signal [batch, length].
    #[serde(default = "stoker::names::input")]
    pub input: String,
    /// The shaft speed per sample, rpm [batch, 1].
    #[serde(default = "default_rpm")]
    pub rpm: String,
    /// The class scores [batch, 4].
    #[serde(default = "stoker::names::prediction")]
    pub pred: String,
    /// Samples per second of the signal.
    #[serde(default = "default_sample_rate")]
    pub sample_rate: f64,
    /// The bearing (default: the CWRU 6205 drive-end bearing).
    #[serde(default)]
    pub geometry: Geometry,
}

impl Default for FrequencyConsistencySpec {
    /// The defaults of every argument: BearingSignals' `x`, `rpm` and 12 kHz, CNN1d's `pred`,
    /// the CWRU 6205 bearing.
    fn default() -> Self {
        FrequencyConsistencySpec {
            input: stoker::names::input(),
            rpm: default_rpm(),
            pred: stoker::names::prediction(),
            sample_rate: default_sample_rate(),
            geometry: Geometry::default(),
        }
    }
}

impl FrequencyConsistencySpec {
    /// Each sample's envelope amplitude at the three fault frequencies, relative to the largest
    /// of them: `[batch, 3]` in [0, 1].
    pub fn relative_energy(&self, x: Tensor<2>, rpm: Tensor<2>) -> Tensor<2> {
        let [b, l] = x.dims();
        let device = x.device();
        let envelope = x.abs();
        let envelope = envelope.clone() - envelope.mean_dim(1);
        // Fault frequency per sample and class, [b, 3, 1], from the rpm: each is a fixed
        // multiple of the shaft frequency.
        let per_rev = self.geometry.frequencies(60.0);
        let multiples: Vec<f32> = [per_rev.bpfo, per_rev.bpfi, 2.0 * per_rev.bsf]
            .iter()
            .map(|&m| m as f32)
            .collect();
        let multiples = Tensor::<3>::from_data(TensorData::new(multiples, [1, 3, 1]), &device);
        let frequencies = rpm.reshape([b, 1, 1]).div_scalar(60.0) * multiples;
        let times: Vec<f32> = (0..l)
            .map(|t| (t as f64 / self.sample_rate) as f32)
            .collect();
        let times = Tensor::<3>::from_data(TensorData::new(times, [1, 1, l]), &device);
        let phase = (frequencies * times).mul_scalar(2.0 * std::f64::consts::PI);
        let e = envelope.reshape([b, 1, l]);
        let re = (e.clone() * phase.clone().cos()).sum_dim(2);
        let im = (e * phase.sin()).sum_dim(2);
        let amplitude = (re.square() + im.square()).sqrt().reshape([b, 3]);
        let largest = amplitude.clone().max_dim(1).add_scalar(1e-12);
        amplitude / largest
    }
}

struct FrequencyConsistency(FrequencyConsistencySpec);

impl Loss for FrequencyConsistency {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let s = &self.0;
        let scores = output.float::<2>(&s.pred)?;
        let [b, classes] = scores.dims();
        if classes != Fault::ALL.len() {
            return Err(StokerError::msg(format!(
                "frequency_consistency: `{}` has {classes} classes; it needs the 4 of BearingSignals",
                s.pred
            )));
        }
        let energy = s.relative_energy(batch.float::<2>(&s.input)?, batch.float::<2>(&s.rpm)?);
        let faults = softmax(scores, 1).narrow(1, 1, 3);
        let penalty = (faults * energy.neg().add_scalar(1.0))
            .sum_dim(1)
            .reshape([b])
            .mean();
        Ok(LossValue::single(penalty))
    }
}

impl LossSpec for FrequencyConsistencySpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        self.geometry
            .check()
            .map_err(|e| BuildError::at("geometry", e))?;
        if !(self.sample_rate.is_finite() && self.sample_rate > 0.0) {
            return Err(BuildError::at("sample_rate", "must be positive"));
        }
        let data = ctx.data()?;
        for (arg, name, rank) in [("input", &self.input, 1), ("rpm", &self.rpm, 1)] {
            let info = data.require(arg, name)?;
            if info.sample_shape.len() != rank || info.kind != ElementKind::Float {
                return Err(BuildError::at(
                    arg,
                    format!(
                        "`{name}` must hold float samples of rank {rank}, not {:?}",
                        info.sample_shape
                    ),
                ));
            }
        }
        Ok(Box::new(FrequencyConsistency(self.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::{Condition, SignalModel};
    use stoker::rng::Rng;

    #[test]
    fn each_fault_signal_has_its_largest_envelope_energy_at_its_own_frequency() {
        let device = Device::flex();
        let model = SignalModel {
            noise: 0.05,
            ..SignalModel::default()
        };
        let spec = FrequencyConsistencySpec {
            input: "x".into(),
            rpm: "rpm".into(),
            pred: "pred".into(),
            sample_rate: model.sample_rate,
            geometry: model.geometry,
        };
        let rpm = 1750.0;
        let mut signals = Vec::new();
        for fault in [Fault::OuterRace, Fault::InnerRace, Fault::Ball] {
            let condition = Condition {
                fault,
                rpm,
                severity: 1.0,
                load: 0.0,
            };
            signals.extend(
                model
                    .generate(&condition, &mut Rng::new(5))
                    .iter()
                    .map(|&v| v as f32),
            );
        }
        let l = model.length;
        let x = Tensor::<2>::from_data(TensorData::new(signals, [3, l]), &device);
        let rpm = Tensor::<2>::from_data(TensorData::new(vec![rpm as f32; 3], [3, 1]), &device);
        let energy: Vec<f32> = spec
            .relative_energy(x.clone(), rpm.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (class, row) in energy.chunks(3).enumerate() {
            assert_eq!(row[class], 1.0, "class {class}: {row:?}");
        }

        // Confident right predictions cost almost nothing, confident wrong ones much more.
        let loss = FrequencyConsistency(spec);
        let mut batch = Batch::batch();
        batch.insert_float("x", x);
        batch.insert_float("rpm", rpm);
        let scores = |right: bool| {
            let mut v = vec![-10f32; 12];
            for sample in 0..3 {
                let class = if right {
                    sample + 1
                } else {
                    (sample + 1) % 3 + 1
                };
                v[sample * 4 + class] = 10.0;
            }
            Output::output().with_float(
                "pred",
                Tensor::<2>::from_data(TensorData::new(v, [3, 4]), &device),
            )
        };
        let value = |right| {
            loss.forward(&scores(right), &batch)
                .unwrap()
                .total
                .into_scalar::<f32>()
        };
        assert!(value(true) < 1e-3, "{}", value(true));
        assert!(value(false) > 0.2, "{}", value(false));
    }
}
