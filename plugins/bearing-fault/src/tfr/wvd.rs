//! The pseudo Wigner-Ville distribution as tftb's `tfrpwv` computes it on the analytic signal
//! `z` of `x` (`scipy.signal.hilbert`): `W[k, t] = sum_{|tau| <= L} h[tau] z[t + tau]
//! conj(z[t - tau]) e^{-2 pi i k tau / bins}`, `z` zero outside the signal (tftb's clipping of
//! the lags at the ends), with tftb's Hamming window `h[tau] = 0.54 + 0.46 cos(pi tau / (L + 1))`.
//! Bin `k` is the frequency `k / (2 bins)` cycles per sample. `W` is real: the terms at `tau`
//! and `-tau` are conjugate, so it is one real matrix product over `tau = 0 .. L`.

use std::f64::consts::PI;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stoker::prelude::*;

use super::{Constant, columns, zero_pad};

/// A pseudo Wigner-Ville distribution of signals of `n` samples.
#[derive(Debug, Clone)]
pub struct PseudoWvd {
    n: usize,
    half_window: usize,
    bins: usize,
    hop: usize,
    /// `[n, n]`: `x @ hilbert` is the analytic signal's imaginary part.
    hilbert: Constant<2>,
    /// `c_tau cos(2 pi k tau / bins)` and `c_tau sin(...)`, `[L + 1, bins]`, `c_tau` the
    /// window with the lags `tau` and `-tau` folded together.
    cos: Constant<2>,
    sin: Constant<2>,
}

impl PseudoWvd {
    /// The distribution of `n`-sample signals with a window of `2 half_window + 1` lags,
    /// `bins` frequency bins (`half_window <= bins / 2 - 1`), at every `hop`-th sample.
    pub fn new(
        n: usize,
        half_window: usize,
        bins: usize,
        hop: usize,
    ) -> std::result::Result<PseudoWvd, String> {
        if bins < 4 || half_window + 1 > bins / 2 {
            return Err(format!(
                "half_window {half_window} with {bins} bins: half_window is at most bins / 2 - 1"
            ));
        }
        if hop == 0 || n == 0 {
            return Err("hop and the signal's length are at least 1".into());
        }
        // Im(ifft(m)) for the Hilbert multiplier m = [1, 2, ..., 2, (1 at n/2 for even n), 0, ...]:
        // the imaginary part of z is the circular convolution of x with it.
        let multiplier = |k: usize| -> f64 {
            match k {
                0 => 1.0,
                k if 2 * k == n => 1.0,
                k if 2 * k < n => 2.0,
                _ => 0.0,
            }
        };
        let kernel: Vec<f64> = (0..n)
            .map(|j| {
                (0..n)
                    .map(|k| multiplier(k) * (2.0 * PI * ((k * j) % n) as f64 / n as f64).sin())
                    .sum::<f64>()
                    / n as f64
            })
            .collect();
        let mut hilbert = vec![0f32; n * n];
        for row in 0..n {
            for col in 0..n {
                hilbert[row * n + col] = kernel[(col + n - row) % n] as f32;
            }
        }
        let window = |tau: usize| 0.54 + 0.46 * (PI * tau as f64 / (half_window + 1) as f64).cos();
        let (mut cos, mut sin) = (Vec::new(), Vec::new());
        for tau in 0..=half_window {
            let c = window(tau) * if tau == 0 { 1.0 } else { 2.0 };
            for k in 0..bins {
                let angle = 2.0 * PI * ((k * tau) % bins) as f64 / bins as f64;
                cos.push((c * angle.cos()) as f32);
                sin.push((c * angle.sin()) as f32);
            }
        }
        let lags = half_window + 1;
        Ok(PseudoWvd {
            n,
            half_window,
            bins,
            hop,
            hilbert: Constant::new(hilbert, [n, n]),
            cos: Constant::new(cos, [lags, bins]),
            sin: Constant::new(sin, [lags, bins]),
        })
    }

    /// The frequency bins.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// The times the distribution is evaluated at: every `hop`-th sample from 0.
    pub fn times(&self) -> usize {
        self.n.div_ceil(self.hop)
    }

    /// The distribution of `x` (`[batch, n]`): `[batch, bins, times]`.
    pub fn forward(&self, x: Tensor<2>) -> Result<Tensor<3>> {
        let [b, n] = x.dims();
        if n != self.n {
            return Err(StokerError::msg(format!(
                "pseudo Wigner-Ville: signals of {n} samples, made for {}",
                self.n
            )));
        }
        let device = x.device();
        let (lags, times) = (self.half_window + 1, self.times());
        let imaginary = x.clone().matmul(self.hilbert.on(&device));
        let l = self.half_window;
        let gather = |z: Tensor<2>, sign: i64| -> Tensor<2> {
            let indices: Vec<i64> = (0..times)
                .flat_map(|t| {
                    (0..lags).map(move |tau| (l + t * self.hop) as i64 + sign * tau as i64)
                })
                .collect();
            columns(zero_pad(z, l, l), indices).reshape([b * times, lags])
        };
        let (ar, ai) = (gather(x.clone(), 1), gather(imaginary.clone(), 1));
        let (br, bi) = (gather(x, -1), gather(imaginary, -1));
        // z[t + tau] conj(z[t - tau]).
        let re = ar.clone() * br.clone() + ai.clone() * bi.clone();
        let im = ai * br - ar * bi;
        let w = re.matmul(self.cos.on(&device)) + im.matmul(self.sin.on(&device));
        Ok(w.reshape([b, times, self.bins]).swap_dims(1, 2))
    }
}

fn default_half_window() -> usize {
    31
}
fn default_bins() -> usize {
    64
}
fn default_hop() -> usize {
    32
}

/// tftb's pseudo Wigner-Ville distribution (tfrpwv) of the analytic signal (scipy.signal.hilbert): lags -half_window..=half_window under tftb's Hamming window, bins frequency bins (bin k is k / (2 bins) cycles per sample), every hop-th sample: images [bins, length / hop rounded up].
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(transform, name = "pseudo_wvd")]
pub struct PseudoWvdSpec {
    /// The window covers lags -half_window ..= half_window (at most bins / 2 - 1).
    #[serde(default = "default_half_window")]
    pub half_window: usize,
    /// Frequency bins.
    #[serde(default = "default_bins")]
    pub bins: usize,
    /// Evaluated at every hop-th sample.
    #[serde(default = "default_hop")]
    pub hop: usize,
}

impl TransformSpec for PseudoWvdSpec {
    fn build(&self, length: usize) -> std::result::Result<Arc<dyn SignalTransform>, BuildError> {
        let wvd = PseudoWvd::new(length, self.half_window, self.bins, self.hop)
            .map_err(|e| BuildError::at("half_window", e))?;
        Ok(Arc::new(wvd))
    }
}

impl SignalTransform for PseudoWvd {
    fn image(&self, x: Tensor<2>) -> Result<Tensor<3>> {
        self.forward(x)
    }

    fn shape(&self) -> [usize; 2] {
        [self.bins, self.times()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tfr::fixture::{assert_close, floats, json, signal};

    fn values(t: Tensor<3>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn it_is_tftbs_pseudo_wigner_ville_of_the_analytic_signal() {
        let device = Device::flex();
        let wvd = PseudoWvd::new(256, 15, 64, 8).unwrap();
        let w = wvd.forward(signal(&device)).unwrap();
        assert_eq!(w.dims(), [1, 64, 32]);
        let want = floats(&json()["pwvd"]["w"]);
        assert_close(values(w), &want, 1e-5, "distribution");
    }

    #[test]
    fn a_tone_peaks_at_its_frequency_by_the_windows_sum() {
        // x = cos(2 pi n / 8), n = 0..15: its analytic signal is exp(2 pi i n / 8), so at t = 8
        // (every lag inside the signal) W[k] = sum_{|tau| <= 3} h[tau] cos(2 pi tau (k - 4) / 16):
        // h = 1, 0.865269, 0.54, 0.214731 for |tau| = 0..3; the peak at bin 4 (1/8 cycle per
        // sample = 4 / (2 * 16)) is the window's sum, 4.24.
        let device = Device::flex();
        let x: Vec<f32> = (0..16)
            .map(|n| (2.0 * PI * n as f64 / 8.0).cos() as f32)
            .collect();
        let x = Tensor::<2>::from_data(TensorData::new(x, [1, 16]), &device);
        let w = values(PseudoWvd::new(16, 3, 16, 1).unwrap().forward(x).unwrap());
        let h = [1.0, 0.865269, 0.54, 0.214731];
        for k in 0..16 {
            let want: f64 = h[0]
                + (1..4)
                    .map(|tau| {
                        2.0 * h[tau] * (2.0 * PI * tau as f64 * (k as f64 - 4.0) / 16.0).cos()
                    })
                    .sum::<f64>();
            let got = w[k * 16 + 8] as f64;
            assert!((got - want).abs() < 1e-4, "bin {k}: {got} against {want}");
        }
        assert!((w[4 * 16 + 8] - 4.24).abs() < 1e-4);
    }

    #[test]
    fn a_window_wider_than_the_bins_allow_is_refused() {
        assert!(PseudoWvd::new(256, 32, 64, 8).is_err());
        assert!(PseudoWvd::new(256, 31, 64, 8).is_ok());
    }
}
