//! Normalization fitted on the training split: Gaussian over every value, per pixel or per
//! channel, or min-max.
//! Tensors are encoded on the host once; model outputs and targets are decoded back to physical
//! units on the device for metrics and predictions.

use serde::{Deserialize, Serialize};
use stoker::batch::{Batch, Output};
use stoker::burn::tensor::{Device, Tensor, TensorData};
use stoker::data::{DataInfo, DataModule, EpochBatches, NormalizationReport, Order, Shard, Split};
use stoker::error::{Result, StokerError};

use crate::host::{HostData, HostTensor};

/// How a tensor is normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// (x - mean) / (std + 1e-5) with one mean and one standard deviation over every training
    /// value (neuraloperator's `UnitGaussianNormalizer` as its Darcy loader fits it, reducing
    /// over every axis): works at any resolution.
    Gaussian,
    /// (x - mean) / (std + 1e-5) per element of a sample, over the training samples (the FNO
    /// code's `UnitGaussianNormalizer`); every split must have the training sample shape.
    GaussianPixel,
    /// (x - mean) / (std + 1e-5) per channel (the last axis), over every training value.
    GaussianChannel,
    /// (x - min) / (max - min) over every training value, to [0, 1].
    MinMax,
}

/// Takes the values of one piece of a tensor (whole samples).
pub type Visit<'a> = dyn FnMut(&[f32]) + 'a;

/// Which statistic value `i` of a flattened tensor belongs to.
type GroupOf = Box<dyn Fn(usize) -> usize>;

/// Added to standard deviations, as `UnitGaussianNormalizer` does.
const EPS: f32 = 1e-5;

/// The fitted statistics of one tensor: encode `(x - shift) / scale`, decode `x * scale + shift`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// The tensor's name.
    pub name: String,
    /// The method.
    pub method: Method,
    /// The shape the statistics broadcast with over one sample (samples axis left out).
    pub shape: Vec<usize>,
    /// Subtracted.
    pub shift: Vec<f32>,
    /// Divided by.
    pub scale: Vec<f32>,
}

impl Stats {
    /// Fits `method` on a training tensor.
    pub fn fit(method: Method, tensor: &HostTensor) -> std::result::Result<Stats, String> {
        let HostData::F32(values) = &tensor.data else {
            return Err(format!(
                "`{}` holds integers; only floats are normalized",
                tensor.name
            ));
        };
        Self::fit_passes(method, &tensor.name, tensor.sample_shape(), &mut |visit| {
            visit(values)
        })
    }

    /// Fits `method` on a training tensor read in pieces: `pass` hands every value to its
    /// argument, in order, in slices of whole samples (it is called twice: means, then
    /// deviations). The sums run in the same order as [`fit`](Self::fit)'s, so a tensor read in
    /// pieces gets exactly the statistics of the tensor read whole.
    pub fn fit_passes(
        method: Method,
        name: &str,
        sample_shape: &[usize],
        pass: &mut dyn FnMut(&mut Visit<'_>),
    ) -> std::result::Result<Stats, String> {
        let sample_shape = sample_shape.to_vec();
        let per_sample: usize = sample_shape.iter().product();
        // `groups` values share a statistic; value i belongs to group `group(i)`.
        let (shape, groups, group): (Vec<usize>, usize, GroupOf) = match method {
            Method::GaussianPixel => (
                sample_shape.clone(),
                per_sample,
                Box::new(move |i| i % per_sample),
            ),
            Method::GaussianChannel => {
                let channels = *sample_shape.last().unwrap_or(&1);
                let mut shape = vec![1; sample_shape.len().max(1)];
                *shape.last_mut().unwrap() = channels;
                (shape, channels, Box::new(move |i| i % channels.max(1)))
            }
            Method::MinMax | Method::Gaussian => {
                (vec![1; sample_shape.len().max(1)], 1, Box::new(|_| 0))
            }
        };
        let (shift, scale) = if method == Method::MinMax {
            let (mut min, mut max, mut seen) = (f32::INFINITY, f32::NEG_INFINITY, 0usize);
            pass(&mut |values| {
                min = values.iter().copied().fold(min, f32::min);
                max = values.iter().copied().fold(max, f32::max);
                seen += values.len();
            });
            if seen == 0 || per_sample == 0 {
                return Err(format!("`{name}` of the training split is empty"));
            }
            let range = if max > min { max - min } else { 1.0 };
            (vec![min], vec![range])
        } else {
            let mut sum = vec![0f64; groups];
            let mut count = vec![0usize; groups];
            let mut at = 0usize;
            pass(&mut |values| {
                for &v in values {
                    sum[group(at)] += v as f64;
                    count[group(at)] += 1;
                    at += 1;
                }
            });
            if at == 0 || per_sample == 0 {
                return Err(format!("`{name}` of the training split is empty"));
            }
            let mean: Vec<f64> = sum.iter().zip(&count).map(|(s, &c)| s / c as f64).collect();
            let mut squares = vec![0f64; groups];
            let mut at = 0usize;
            pass(&mut |values| {
                for &v in values {
                    let d = v as f64 - mean[group(at)];
                    squares[group(at)] += d * d;
                    at += 1;
                }
            });
            // The unbiased estimate, as torch.std.
            let std = squares
                .iter()
                .zip(&count)
                .map(|(s, &c)| (s / (c.max(2) - 1) as f64).sqrt() as f32 + EPS);
            (mean.iter().map(|&m| m as f32).collect(), std.collect())
        };
        Ok(Stats {
            name: name.to_string(),
            method,
            shape,
            shift,
            scale,
        })
    }

    fn value_at(&self, i: usize, per_sample: usize) -> (f32, f32) {
        let k = match self.method {
            Method::GaussianPixel => i % per_sample,
            Method::GaussianChannel => i % self.shift.len(),
            Method::MinMax | Method::Gaussian => 0,
        };
        (self.shift[k], self.scale[k])
    }

    /// Encodes a tensor of any split in place.
    pub fn encode(&self, tensor: &mut HostTensor, split: &str) -> std::result::Result<(), String> {
        let sample_shape = tensor.sample_shape().to_vec();
        let HostData::F32(values) = &mut tensor.data else {
            return Err(format!("`{}` holds integers", self.name));
        };
        self.encode_values(values, &sample_shape, split)
    }

    /// [`encode`](Self::encode) of `values`, samples of `sample_shape` one after the other.
    pub fn encode_values(
        &self,
        values: &mut [f32],
        sample_shape: &[usize],
        split: &str,
    ) -> std::result::Result<(), String> {
        if self.method == Method::GaussianPixel && sample_shape != self.shape {
            return Err(format!(
                "per-pixel statistics of `{}` were fitted on samples of shape {:?}; the {split} split's are {:?}: use gaussian (one mean and std), gaussian_channel or min_max for data at other resolutions",
                self.name, self.shape, sample_shape
            ));
        }
        if self.method == Method::GaussianChannel
            && sample_shape.last().copied().unwrap_or(1) != self.shift.len()
        {
            return Err(format!(
                "`{}` of the {split} split has {:?} channels, the training split {}",
                self.name,
                sample_shape.last(),
                self.shift.len()
            ));
        }
        let per_sample: usize = sample_shape.iter().product();
        for (i, v) in values.iter_mut().enumerate() {
            let (shift, scale) = self.value_at(i, per_sample);
            *v = (*v - shift) / scale;
        }
        Ok(())
    }

    /// Decodes a device tensor `[batch, sample...]` of rank `D` to physical units.
    pub fn decode<const D: usize>(&self, t: Tensor<D>) -> Result<Tensor<D>> {
        let dims = t.dims();
        let shape: Vec<usize> = std::iter::once(1)
            .chain(self.shape.iter().copied())
            .collect();
        let broadcast = shape.len() == D
            && shape
                .iter()
                .zip(dims.iter())
                .all(|(&s, &d)| s == 1 || s == d);
        if !broadcast {
            return Err(StokerError::msg(format!(
                "cannot decode a tensor of shape {dims:?} with the statistics of `{}` (shape {:?})",
                self.name, self.shape
            )));
        }
        let device: Device = t.device();
        let stats = |v: &[f32]| -> Tensor<D> {
            Tensor::from_data(TensorData::new(v.to_vec(), shape.clone()), &device)
        };
        Ok(t * stats(&self.scale) + stats(&self.shift))
    }
}

/// A data module whose tensors were normalized: decodes batches and outputs for metrics.
pub struct Normalized<M: DataModule> {
    /// The data module over encoded tensors.
    pub inner: M,
    /// The statistics, by tensor.
    pub stats: Vec<Stats>,
    /// Output name -> the tensor whose statistics decode it (`pred` -> `y`).
    pub outputs: Vec<(String, String)>,
}

fn decode_bridge(stats: &Stats, map: &mut stoker::batch::TensorMap, name: &str) -> Result<()> {
    let rank = map.shape(name)?.len();
    let decoded = by_rank!(rank, R => {
        let t: Tensor<R> = map.float::<R>(name)?;
        stats.decode(t)?.into_bridge()
    }, return Err(StokerError::msg(format!("`{name}` has an unsupported rank {rank}"))));
    map.insert_bridge(name.to_string(), decoded);
    Ok(())
}

impl<M: DataModule> Normalized<M> {
    /// The statistics as a safetensors file (`<tensor>.shift`, `<tensor>.scale`, with the
    /// broadcast shape) and a readable summary.
    pub fn report(&self) -> NormalizationReport {
        let mut tensors = Vec::new();
        let mut summary = String::new();
        for s in &self.stats {
            for (part, values) in [("shift", &s.shift), ("scale", &s.scale)] {
                let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                let shape = if values.len() == 1 {
                    vec![1]
                } else {
                    s.shape.clone()
                };
                tensors.push((format!("{}.{part}", s.name), shape, bytes));
            }
            let range = |v: &[f32]| {
                let lo = v.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                if v.len() == 1 {
                    format!("{lo:.6}")
                } else {
                    format!("{lo:.6} .. {hi:.6} ({} values)", v.len())
                }
            };
            let (a, b) = match s.method {
                Method::MinMax => ("min", "max - min"),
                _ => ("mean", "std"),
            };
            summary.push_str(&format!(
                "{}: {:?}, {a} {}, {b} {}\n",
                s.name,
                s.method,
                range(&s.shift),
                range(&s.scale)
            ));
        }
        NormalizationReport {
            file_name: "normalization.safetensors".into(),
            tensors,
            summary,
        }
    }
}

impl<M: DataModule> DataModule for Normalized<M> {
    fn info(&self) -> &DataInfo {
        self.inner.info()
    }

    fn epoch(
        &self,
        split: Split,
        epoch: usize,
        order: Order,
        shard: Shard,
    ) -> Result<Box<dyn EpochBatches + '_>> {
        self.inner.epoch(split, epoch, order, shard)
    }

    fn decode(&self, batch: &Batch, output: &Output) -> Result<Option<(Batch, Output)>> {
        let mut batch = batch.clone();
        let mut output = output.clone();
        for stats in &self.stats {
            if batch.contains(&stats.name) {
                decode_bridge(stats, &mut batch, &stats.name)?;
            }
        }
        for (out, tensor) in &self.outputs {
            if output.contains(out) {
                let stats = self
                    .stats
                    .iter()
                    .find(|s| &s.name == tensor)
                    .expect("outputs name normalized tensors");
                decode_bridge(stats, &mut output, out)?;
            }
        }
        Ok(Some((batch, output)))
    }

    fn normalization(&self) -> Option<NormalizationReport> {
        Some(self.report())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(values: Vec<f32>, shape: Vec<usize>) -> HostTensor {
        HostTensor::f32("x", shape, values)
    }

    #[test]
    fn per_pixel_statistics_match_torch_mean_and_std_over_samples() {
        // Three samples of 2 values: columns [1, 3, 5] and [2, 2, 8].
        let t = tensor(vec![1.0, 2.0, 3.0, 2.0, 5.0, 8.0], vec![3, 2]);
        let s = Stats::fit(Method::GaussianPixel, &t).unwrap();
        assert_eq!(s.shift, vec![3.0, 4.0]);
        // torch.std([1, 3, 5]) = 2, torch.std([2, 2, 8]) = sqrt(12).
        assert!((s.scale[0] - (2.0 + EPS)).abs() < 1e-6);
        assert!((s.scale[1] - (12f32.sqrt() + EPS)).abs() < 1e-6);
        let mut encoded = t.clone();
        s.encode(&mut encoded, "train").unwrap();
        let HostData::F32(v) = &encoded.data else {
            unreachable!()
        };
        assert!((v[0] + 1.0).abs() < 1e-4 && (v[4] - 1.0).abs() < 1e-4);
        // Decoding on the device gives the values back.
        let device = Device::flex();
        let on_device = Tensor::<2>::from_data(TensorData::new(v.clone(), [3, 2]), &device);
        let back = s
            .decode(on_device)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (a, b) in back.iter().zip([1.0, 2.0, 3.0, 2.0, 5.0, 8.0]) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn channel_and_min_max_statistics() {
        // Two samples of 2 points x 2 channels.
        let t = tensor(
            vec![0.0, 10.0, 2.0, 10.0, 4.0, 30.0, 6.0, 30.0],
            vec![2, 2, 2],
        );
        let s = Stats::fit(Method::GaussianChannel, &t).unwrap();
        assert_eq!(s.shape, vec![1, 2]);
        assert_eq!(s.shift, vec![3.0, 20.0]);
        let m = Stats::fit(Method::MinMax, &t).unwrap();
        assert_eq!((m.shift.clone(), m.scale.clone()), (vec![0.0], vec![30.0]));
        // Per-pixel statistics refuse another resolution; per-channel ones accept it.
        let pixel = Stats::fit(Method::GaussianPixel, &t).unwrap();
        let mut other = tensor(vec![1.0; 12], vec![1, 6, 2]);
        assert!(
            pixel
                .encode(&mut other, "test")
                .unwrap_err()
                .contains("gaussian_channel")
        );
        s.encode(&mut other, "test").unwrap();
    }

    #[test]
    fn scalar_statistics_span_every_value_and_any_resolution() {
        // Two 2x2 fields: values 1..8, mean 4.5, torch.std = sqrt(42 / 7) = sqrt(6).
        let t = tensor((1..=8).map(|v| v as f32).collect(), vec![2, 2, 2]);
        let s = Stats::fit(Method::Gaussian, &t).unwrap();
        assert_eq!(s.shape, vec![1, 1]);
        assert_eq!(s.shift, vec![4.5]);
        assert!((s.scale[0] - (6f32.sqrt() + EPS)).abs() < 1e-6);
        // A 3x3 field (another resolution) is encoded with the same two numbers.
        let mut other = tensor(vec![4.5; 9], vec![1, 3, 3]);
        s.encode(&mut other, "test").unwrap();
        let HostData::F32(v) = &other.data else {
            unreachable!()
        };
        assert!(v.iter().all(|x| x.abs() < 1e-6));
        let device = Device::flex();
        let encoded = Tensor::<3>::from_data(TensorData::new(vec![1.0f32; 9], [1, 3, 3]), &device);
        let back = s
            .decode(encoded)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(
            back.iter()
                .all(|x| (x - (4.5 + 6f32.sqrt() + EPS)).abs() < 1e-5)
        );
    }
}
