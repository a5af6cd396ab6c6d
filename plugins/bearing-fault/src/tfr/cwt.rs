//! The continuous wavelet transform with the real Morlet wavelet as
//! `pywt.cwt(x, scales, 'morl')` computes it (method `conv`, precision 12): the wavelet
//! `psi(t) = exp(-t^2 / 2) cos(5 t)` integrated on 4096 points of [-8, 8], sampled at each
//! scale, convolved with the signal, differenced and scaled by `-sqrt(scale)`, the middle `n`
//! values kept. The difference is folded into one kernel per scale, so each scale is one
//! convolution on the device.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::module::conv1d;
use stoker::burn::tensor::ops::ConvOptions;
use stoker::prelude::*;

use super::{Constant, zero_pad};

/// Points of the integrated wavelet: `2^12`, pywt's default precision.
const POINTS: usize = 4096;

/// One scale's kernel: `out[t] = sum_i taps[i] x[t + i - before]`.
#[derive(Debug, Clone)]
struct Kernel {
    taps: Vec<f32>,
    before: usize,
    after: usize,
}

/// A Morlet CWT at the given scales.
#[derive(Debug, Clone)]
pub struct MorletCwt {
    kernels: Vec<Kernel>,
    /// Each kernel's taps as a conv1d weight `[1, 1, taps]`.
    weights: Vec<Constant<3>>,
}

/// pywt's `integrate_wavelet` of the Morlet wavelet: the running sum of `psi` on
/// `linspace(-8, 8, 4096)` times the step, and that step.
fn integrated_morlet() -> (Vec<f64>, f64) {
    let delta = 16.0 / (POINTS - 1) as f64;
    let t = |i: usize| {
        if i == POINTS - 1 {
            8.0
        } else {
            i as f64 * delta - 8.0
        }
    };
    let step = t(1) - t(0);
    let mut sum = 0.0;
    let integrated = (0..POINTS)
        .map(|i| {
            let t = t(i);
            sum += (-t * t / 2.0).exp() * (5.0 * t).cos();
            sum * step
        })
        .collect();
    (integrated, step)
}

impl Kernel {
    /// pywt's kernel at `scale`, its difference folded in, as a cross-correlation.
    fn new(scale: f64, integrated: &[f64], step: f64) -> Kernel {
        // j = floor(arange(16 s + 1) / (s step)), kept below the wavelet's length; reversed.
        let count = (scale * 16.0 + 1.0).ceil() as usize;
        let sampled: Vec<f64> = (0..count)
            .map(|v| (v as f64 / (scale * step)) as usize)
            .filter(|&j| j < POINTS)
            .map(|j| integrated[j])
            .rev()
            .collect();
        let len = sampled.len();
        // g = -sqrt(s) diff([0, k, 0]), as a cross-correlation: g reversed.
        let mut padded = vec![0.0];
        padded.extend(&sampled);
        padded.push(0.0);
        let taps: Vec<f32> = padded
            .windows(2)
            .map(|w| (-scale.sqrt() * (w[1] - w[0])) as f32)
            .rev()
            .collect();
        // pywt keeps coef[floor(d) .. len - ceil(d)] of the full convolution, d = (len - 2) / 2.
        let after = 1 + (len.max(2) - 2) / 2;
        Kernel {
            taps,
            before: len - after,
            after,
        }
    }
}

impl MorletCwt {
    /// The transform at `scales` (each positive, at most 256).
    pub fn new(scales: &[f64]) -> std::result::Result<MorletCwt, String> {
        if scales.is_empty() {
            return Err("no scales".into());
        }
        if let Some(s) = scales
            .iter()
            .find(|s| !(s.is_finite() && **s > 0.0 && **s <= 256.0))
        {
            return Err(format!("scale {s}: scales are in (0, 256]"));
        }
        let (integrated, step) = integrated_morlet();
        let kernels: Vec<Kernel> = scales
            .iter()
            .map(|&s| Kernel::new(s, &integrated, step))
            .collect();
        let weights = kernels
            .iter()
            .map(|k| Constant::new(k.taps.clone(), [1, 1, k.taps.len()]))
            .collect();
        Ok(MorletCwt { kernels, weights })
    }

    /// The number of scales.
    pub fn scales(&self) -> usize {
        self.kernels.len()
    }

    /// The coefficients of `x` (`[batch, n]`): `[batch, scales, n]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<3> {
        let [b, n] = x.dims();
        let device = x.device();
        let rows: Vec<Tensor<3>> = self
            .kernels
            .iter()
            .zip(&self.weights)
            .map(|(k, weight)| {
                let taps = k.taps.len();
                let padded = zero_pad(x.clone(), k.before, k.after).reshape([b, 1, n + taps - 1]);
                conv1d(
                    padded,
                    weight.on(&device),
                    None,
                    ConvOptions::new([1], [0], [1], 1),
                )
            })
            .collect();
        Tensor::cat(rows, 1)
    }
}

fn default_scales() -> Vec<f64> {
    (1..=16).map(f64::from).collect()
}
fn default_hop() -> usize {
    32
}

/// The Morlet scalogram: |pywt.cwt(x, scales, 'morl')| averaged over windows of hop samples (taking every hop-th coefficient would alias the wavelet's own oscillation): images [scales, length / hop].
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(transform, name = "morlet_cwt")]
pub struct MorletCwtSpec {
    /// The scales, in samples (each in (0, 256]).
    #[serde(default = "default_scales")]
    pub scales: Vec<f64>,
    /// The scalogram's time step: |coefficients| averaged over windows of hop samples.
    #[serde(default = "default_hop")]
    pub hop: usize,
}

impl TransformSpec for MorletCwtSpec {
    fn build(&self, length: usize) -> std::result::Result<Arc<dyn SignalTransform>, BuildError> {
        if self.hop == 0 || self.hop > length {
            return Err(BuildError::at(
                "hop",
                format!("must be between 1 and the signal's {length} samples"),
            ));
        }
        let cwt = MorletCwt::new(&self.scales).map_err(|e| BuildError::at("scales", e))?;
        Ok(Arc::new(Scalogram {
            cwt,
            hop: self.hop,
            length,
        }))
    }
}

/// The averaged magnitude of the CWT of signals of `length` samples.
#[derive(Debug)]
struct Scalogram {
    cwt: MorletCwt,
    hop: usize,
    length: usize,
}

impl SignalTransform for Scalogram {
    fn image(&self, x: Tensor<2>) -> Result<Tensor<3>> {
        let coef = self.cwt.forward(x).abs();
        let [b, s, _] = coef.dims();
        let windows = self.length / self.hop;
        Ok(coef
            .narrow(2, 0, windows * self.hop)
            .reshape([b, s, windows, self.hop])
            .mean_dim(3)
            .reshape([b, s, windows]))
    }

    fn shape(&self) -> [usize; 2] {
        [self.cwt.scales(), self.length / self.hop]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tfr::fixture::{assert_close, floats, json, signal};

    #[test]
    fn it_is_pywts_cwt() {
        let device = Device::flex();
        let scales: Vec<f64> = (1..=8).map(f64::from).collect();
        let coef = MorletCwt::new(&scales).unwrap().forward(signal(&device));
        assert_eq!(coef.dims(), [1, 8, 256]);
        let want = floats(&json()["cwt"]["coef"]);
        assert_close(
            coef.into_data().try_to_vec::<f32>().unwrap(),
            &want,
            1e-5,
            "coefficients",
        );
    }

    #[test]
    fn the_scale_1_kernel_is_pywts() {
        // pywt 1.8.0's 18 taps at scale 1 (16 s + 2), its alignment 9 before and 8 after.
        let want = [
            -3.300108e-17,
            -1.281122e-12,
            1.436601e-09,
            4.186341e-07,
            -2.349953e-05,
            -1.816338e-03,
            6.192387e-03,
            1.188815e-01,
            -1.232298e-01,
            -1.232298e-01,
            1.188815e-01,
            6.192387e-03,
            -1.816338e-03,
            -2.349953e-05,
            4.186341e-07,
            1.436601e-09,
            -1.281155e-12,
            -9.341334e-06,
        ];
        let (integrated, step) = integrated_morlet();
        let kernel = Kernel::new(1.0, &integrated, step);
        assert_eq!((kernel.taps.len(), kernel.before, kernel.after), (18, 9, 8));
        for (got, want) in kernel.taps.iter().zip(want) {
            assert!(
                (*got as f64 - want).abs() <= 1e-6 * want.abs() + 1e-12,
                "{got} against {want}"
            );
        }
        // Integer scales share the alignment 8 s + 1 before, 8 s after.
        let kernel = Kernel::new(32.0, &integrated, step);
        assert_eq!(
            (kernel.taps.len(), kernel.before, kernel.after),
            (514, 257, 256)
        );
    }
}
