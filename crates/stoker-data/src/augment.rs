//! Augmentations of training batches, registered by name (`augmentations:` in the experiment):
//! `gaussian_noise`, `amplitude_scale`, `time_shift`, `time_masking`. Each draws its randomness
//! from the seed the loop gives it (derived from the run's seed, the epoch and the batch), on the
//! host, so a resumed run and any backend augment a batch identically.

use serde::{Deserialize, Serialize};
use stoker::Component;
use stoker::augment::Augmentation;
use stoker::batch::Batch;
use stoker::burn::tensor::{Int, Tensor, TensorData};
use stoker::data::ElementKind;
use stoker::dataset::by_rank;
use stoker::error::{BuildError, Result, StokerError};
use stoker::rng::Rng;
use stoker::spec::{AugmentationSpec, BuildContext};

/// Checks that `tensor` is a float tensor of the data with at least `min_rank` axes per sample.
pub(crate) fn check_tensor(
    ctx: &BuildContext,
    tensor: &str,
    min_rank: usize,
) -> std::result::Result<(), BuildError> {
    let data = ctx.data()?;
    let info = data.require("tensor", tensor)?;
    if info.kind != ElementKind::Float {
        return Err(BuildError::at(
            "tensor",
            format!("`{tensor}` holds integers; augmentations change floats"),
        ));
    }
    if info.sample_shape.len() < min_rank {
        return Err(BuildError::at(
            "tensor",
            format!(
                "each sample of `{tensor}` has shape {:?}; this augmentation needs a time axis (the last)",
                info.sample_shape
            ),
        ));
    }
    Ok(())
}

/// The tensor as `[batch, channels, time]` (the middle axes folded), with its full shape.
pub(crate) fn as_3d(batch: &Batch, name: &str) -> Result<(Tensor<3>, Vec<usize>)> {
    fold_3d(batch, name, 1)
}

/// The tensor as `[batch, middle, last]`, where `last` folds the last `trailing` axes (at most
/// the sample's rank) and `middle` the axes between, with its full shape.
pub(crate) fn fold_3d(
    batch: &Batch,
    name: &str,
    trailing: usize,
) -> Result<(Tensor<3>, Vec<usize>)> {
    let shape = batch.shape(name)?;
    let rank = shape.len();
    let b = shape[0];
    let split = rank - trailing.min(rank - 1);
    let (m, l) = (
        shape[1..split].iter().product(),
        shape[split..].iter().product(),
    );
    let t: Tensor<3> = by_rank!(rank, R => {
        let t: Tensor<R> = batch.float::<R>(name)?;
        t.reshape([b, m, l])
    }, return Err(StokerError::msg(format!("`{name}` has an unsupported rank {rank}"))));
    Ok((t, shape))
}

/// Puts a `[batch, channels, time]` tensor back under `name` with its original `shape`.
pub(crate) fn put_3d(mut batch: Batch, name: &str, t: Tensor<3>, shape: &[usize]) -> Result<Batch> {
    let rank = shape.len();
    let bridge = by_rank!(rank, R => {
        let dims: [usize; R] = shape.try_into().expect("the rank matches");
        t.reshape(dims).into_bridge()
    }, return Err(StokerError::msg(format!("`{name}` has an unsupported rank {rank}"))));
    batch.insert_bridge(name.to_string(), bridge);
    Ok(batch)
}

pub(crate) fn host_tensor(values: Vec<f32>, shape: [usize; 3], like: &Tensor<3>) -> Tensor<3> {
    Tensor::from_data(TensorData::new(values, shape), &like.device())
}

/// Adds Gaussian noise of standard deviation `std` to every value of a training tensor.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(augmentation, name = "gaussian_noise")]
pub struct GaussianNoiseSpec {
    /// The batch tensor changed.
    #[serde(default = "stoker::names::input")]
    pub tensor: String,
    /// The noise's standard deviation.
    pub std: f64,
}

impl Augmentation for GaussianNoiseSpec {
    fn apply(&self, batch: Batch, seed: u64) -> Result<Batch> {
        let (t, shape) = as_3d(&batch, &self.tensor)?;
        let dims = t.dims();
        let mut rng = Rng::new(seed);
        let noise: Vec<f32> = (0..dims.iter().product::<usize>())
            .map(|_| (self.std * rng.normal()) as f32)
            .collect();
        let noisy = t.clone() + host_tensor(noise, dims, &t);
        put_3d(batch, &self.tensor, noisy, &shape)
    }
}

impl AugmentationSpec for GaussianNoiseSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Augmentation>, BuildError> {
        if !(self.std.is_finite() && self.std >= 0.0) {
            return Err(BuildError::at("std", "must be a non-negative number"));
        }
        check_tensor(ctx, &self.tensor, 0)?;
        Ok(Box::new(self.clone()))
    }
}

fn default_low() -> f64 {
    0.8
}
fn default_high() -> f64 {
    1.2
}

/// Multiplies each training sample of a tensor by its own factor, uniform in [low, high].
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(augmentation, name = "amplitude_scale")]
pub struct AmplitudeScaleSpec {
    /// The batch tensor changed.
    #[serde(default = "stoker::names::input")]
    pub tensor: String,
    /// The smallest factor.
    #[serde(default = "default_low")]
    pub low: f64,
    /// The largest factor.
    #[serde(default = "default_high")]
    pub high: f64,
}

impl Augmentation for AmplitudeScaleSpec {
    fn apply(&self, batch: Batch, seed: u64) -> Result<Batch> {
        let (t, shape) = as_3d(&batch, &self.tensor)?;
        let [b, _, _] = t.dims();
        let mut rng = Rng::new(seed);
        let factors: Vec<f32> = (0..b)
            .map(|_| (self.low + (self.high - self.low) * rng.next_f64()) as f32)
            .collect();
        let scaled = t.clone() * host_tensor(factors, [b, 1, 1], &t);
        put_3d(batch, &self.tensor, scaled, &shape)
    }
}

impl AugmentationSpec for AmplitudeScaleSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Augmentation>, BuildError> {
        if !(self.low.is_finite() && self.high.is_finite() && self.low <= self.high) {
            return Err(BuildError::at("high", "needs finite low <= high"));
        }
        check_tensor(ctx, &self.tensor, 0)?;
        Ok(Box::new(self.clone()))
    }
}

/// Rolls each training sample of a tensor along its last (time) axis by its own shift, uniform in [-max_shift, max_shift] steps; values leaving one end come back at the other.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(augmentation, name = "time_shift")]
pub struct TimeShiftSpec {
    /// The batch tensor changed.
    #[serde(default = "stoker::names::input")]
    pub tensor: String,
    /// The largest shift, in steps of the last axis.
    pub max_shift: usize,
}

impl Augmentation for TimeShiftSpec {
    fn apply(&self, batch: Batch, seed: u64) -> Result<Batch> {
        let (t, shape) = as_3d(&batch, &self.tensor)?;
        let [b, m, l] = t.dims();
        let mut rng = Rng::new(seed);
        let span = 2 * self.max_shift as u64 + 1;
        let mut indices = Vec::with_capacity(b * m * l);
        for _ in 0..b {
            let shift = rng.below(span) as i64 - self.max_shift as i64;
            for _ in 0..m {
                // out[i] = in[(i - shift) mod l]: a positive shift delays the signal.
                indices.extend((0..l as i64).map(|i| (i - shift).rem_euclid(l as i64)));
            }
        }
        let indices: Tensor<3, Int> =
            Tensor::from_data(TensorData::new(indices, [b, m, l]), &t.device());
        put_3d(batch, &self.tensor, t.gather(2, indices), &shape)
    }
}

impl AugmentationSpec for TimeShiftSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Augmentation>, BuildError> {
        check_tensor(ctx, &self.tensor, 1)?;
        Ok(Box::new(self.clone()))
    }
}

fn one() -> usize {
    1
}

/// Zeroes `masks` windows of each training sample along its last (time) axis, each of a width uniform in [0, max_width] at a uniform position (SpecAugment's time masking).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(augmentation, name = "time_masking")]
pub struct TimeMaskingSpec {
    /// The batch tensor changed.
    #[serde(default = "stoker::names::input")]
    pub tensor: String,
    /// The widest window, in steps of the last axis.
    pub max_width: usize,
    /// Windows per sample.
    #[serde(default = "one")]
    pub masks: usize,
}

impl Augmentation for TimeMaskingSpec {
    fn apply(&self, batch: Batch, seed: u64) -> Result<Batch> {
        let (t, shape) = as_3d(&batch, &self.tensor)?;
        let [b, _, l] = t.dims();
        let mut rng = Rng::new(seed);
        let mut keep = vec![1f32; b * l];
        for sample in 0..b {
            for _ in 0..self.masks {
                let width = (rng.below(self.max_width as u64 + 1) as usize).min(l);
                let start = rng.below((l - width + 1) as u64) as usize;
                keep[sample * l + start..sample * l + start + width].fill(0.0);
            }
        }
        let masked = t.clone() * host_tensor(keep, [b, 1, l], &t);
        put_3d(batch, &self.tensor, masked, &shape)
    }
}

impl AugmentationSpec for TimeMaskingSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Augmentation>, BuildError> {
        check_tensor(ctx, &self.tensor, 1)?;
        Ok(Box::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stoker::burn::tensor::Device;

    /// A batch of `x` (`shape`, distinct non-zero values) and labels `y` that no augmentation
    /// may touch.
    fn batch(shape: &[usize]) -> Batch {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|v| 1.0 + v as f32).collect();
        let device = Device::flex();
        let mut batch = Batch::batch();
        let x = Tensor::<1>::from_data(TensorData::new(values, [n]), &device);
        match shape.len() {
            2 => batch.insert_float("x", x.reshape([shape[0], shape[1]])),
            3 => batch.insert_float("x", x.reshape([shape[0], shape[1], shape[2]])),
            _ => unreachable!(),
        }
        let labels: Vec<i64> = (0..shape[0] as i64).collect();
        batch.insert_int(
            "y",
            Tensor::<1, Int>::from_data(TensorData::new(labels, [shape[0]]), &device),
        );
        batch
    }

    fn values(batch: &Batch) -> Vec<f32> {
        batch
            .float_flat("x")
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    /// Applies `aug` to a fresh batch of `shape` with `seed`: the input's values and the
    /// output's, after checking that the shape and the labels are untouched.
    fn apply(aug: &dyn Augmentation, shape: &[usize], seed: u64) -> (Vec<f32>, Vec<f32>) {
        let input = batch(shape);
        let out = aug.apply(input.clone(), seed).unwrap();
        assert_eq!(out.shape("x").unwrap(), shape);
        let labels = |b: &Batch| {
            b.int::<1>("y")
                .unwrap()
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .unwrap()
        };
        assert_eq!(labels(&out), labels(&input), "the labels are untouched");
        (values(&input), values(&out))
    }

    #[test]
    fn time_shift_rolls_each_sample_by_its_own_shift_up_to_the_maximum() {
        let spec = TimeShiftSpec {
            tensor: "x".into(),
            max_shift: 3,
        };
        let (b, m, l) = (200, 2, 10);
        let (input, out) = apply(&spec, &[b, m, l], 11);
        let mut shifts = std::collections::BTreeSet::new();
        for sample in 0..b {
            // out[i] = in[(i - shift) mod l], the same shift on every channel of the sample.
            let row = |data: &[f32], c: usize| data[(sample * m + c) * l..][..l].to_vec();
            let shift = (0..l)
                .find(|s| (0..l).all(|i| row(&out, 0)[i] == row(&input, 0)[(i + l - s) % l]))
                .expect("each row is a rotation of its input");
            let rolled: Vec<f32> = (0..l)
                .map(|i| row(&input, 1)[(i + l - shift) % l])
                .collect();
            assert_eq!(
                row(&out, 1),
                rolled,
                "sample {sample}: every channel the same"
            );
            shifts.insert(if shift > l / 2 {
                shift as i64 - l as i64
            } else {
                shift as i64
            });
        }
        // Every shift in [-3, 3] is drawn over 200 samples, and no other.
        assert_eq!(
            shifts.into_iter().collect::<Vec<_>>(),
            (-3..=3).collect::<Vec<_>>()
        );
        // The same seed, the same shifts; another seed, others.
        assert_eq!(apply(&spec, &[b, m, l], 11).1, out);
        assert_ne!(apply(&spec, &[b, m, l], 12).1, out);
    }

    #[test]
    fn time_masking_zeroes_one_window_per_mask_and_leaves_the_rest() {
        let spec = TimeMaskingSpec {
            tensor: "x".into(),
            max_width: 4,
            masks: 1,
        };
        let (b, m, l) = (300, 2, 12);
        let (input, out) = apply(&spec, &[b, m, l], 5);
        let mut widths = std::collections::BTreeSet::new();
        for sample in 0..b {
            let at = |c: usize, i: usize| (sample * m + c) * l + i;
            let zeros: Vec<usize> = (0..l).filter(|&i| out[at(0, i)] == 0.0).collect();
            if let (Some(first), Some(last)) = (zeros.first(), zeros.last()) {
                assert_eq!(last - first + 1, zeros.len(), "one contiguous window");
            }
            for c in 0..m {
                for i in 0..l {
                    let expected = if zeros.contains(&i) {
                        0.0
                    } else {
                        input[at(c, i)]
                    };
                    assert_eq!(out[at(c, i)], expected, "sample {sample}, channel {c}");
                }
            }
            widths.insert(zeros.len());
        }
        // Widths 0 to 4 are all drawn, and no wider one.
        assert_eq!(widths.into_iter().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn amplitude_scale_multiplies_each_sample_by_its_own_factor_in_range() {
        let spec = AmplitudeScaleSpec {
            tensor: "x".into(),
            low: 0.5,
            high: 2.0,
        };
        let (b, l) = (400, 4);
        let (input, out) = apply(&spec, &[b, l], 3);
        let mut factors = Vec::new();
        for (row, original) in out.chunks(l).zip(input.chunks(l)) {
            let factor = row[0] / original[0];
            for (v, o) in row.iter().zip(original) {
                assert!(
                    (v - factor * o).abs() <= 1e-5 * v.abs(),
                    "one factor per sample"
                );
            }
            factors.push(factor);
        }
        let (low, high) = factors
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), f| (a.min(*f), b.max(*f)));
        // Uniform in [0.5, 2]: 400 draws come within 2 % of the range's ends.
        assert!((0.5..0.53).contains(&low), "{low}");
        assert!(high > 1.97 && high <= 2.0, "{high}");
    }

    #[test]
    fn noise_has_the_asked_standard_deviation_and_no_mean() {
        let spec = GaussianNoiseSpec {
            tensor: "x".into(),
            std: 0.5,
        };
        let (input, out) = apply(&spec, &[4, 5000], 9);
        let noise: Vec<f64> = out
            .iter()
            .zip(&input)
            .map(|(o, i)| (o - i) as f64)
            .collect();
        let n = noise.len() as f64;
        let mean = noise.iter().sum::<f64>() / n;
        let std = (noise.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!(
            mean.abs() < 0.02 && (std - 0.5).abs() < 0.02,
            "{mean} {std}"
        );
    }
}
