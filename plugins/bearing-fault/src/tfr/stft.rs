//! The short-time Fourier transform as `scipy.signal.stft(x, window='hann', nperseg, noverlap)`
//! computes it with its defaults: a periodic Hann window `w[n] = 0.5 - 0.5 cos(2 pi n / M)`,
//! `M / 2` zeros at both ends of the signal (`boundary='zeros'`), the end padded to a whole frame
//! (`padded=True`), frames every `hop` samples, and `Z[f, k] = sum_n w[n] x[k hop + n - M/2]
//! e^{-2 pi i f n / M} / sum(w)` for `f = 0 .. M/2`.

use std::f64::consts::PI;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stoker::prelude::*;

use super::{Constant, columns, zero_pad};

/// A short-time Fourier transform of `nperseg`-sample frames every `hop` samples.
#[derive(Debug, Clone)]
pub struct Stft {
    nperseg: usize,
    hop: usize,
    /// `w[n] cos(2 pi f n / M) / sum(w)`, `[M, M/2 + 1]`.
    cos: Constant<2>,
    /// `-w[n] sin(2 pi f n / M) / sum(w)`, `[M, M/2 + 1]`.
    sin: Constant<2>,
}

impl Stft {
    /// Frames of `nperseg` samples (even, at least 2) every `hop` (1 to `nperseg`) samples.
    pub fn new(nperseg: usize, hop: usize) -> std::result::Result<Stft, String> {
        if nperseg < 2 || !nperseg.is_multiple_of(2) {
            return Err(format!("nperseg {nperseg}: an even number of at least 2"));
        }
        if hop == 0 || hop > nperseg {
            return Err(format!("hop {hop}: between 1 and nperseg ({nperseg})"));
        }
        let m = nperseg;
        let window: Vec<f64> = (0..m)
            .map(|n| 0.5 - 0.5 * (2.0 * PI * n as f64 / m as f64).cos())
            .collect();
        let sum: f64 = window.iter().sum();
        let bins = m / 2 + 1;
        let (mut cos, mut sin) = (Vec::with_capacity(m * bins), Vec::with_capacity(m * bins));
        for (n, w) in window.iter().enumerate() {
            for f in 0..bins {
                // The angle reduced modulo M first keeps it exact.
                let angle = 2.0 * PI * ((f * n) % m) as f64 / m as f64;
                cos.push((w * angle.cos() / sum) as f32);
                sin.push((-w * angle.sin() / sum) as f32);
            }
        }
        Ok(Stft {
            nperseg,
            hop,
            cos: Constant::new(cos, [m, bins]),
            sin: Constant::new(sin, [m, bins]),
        })
    }

    /// The frequency bins: `nperseg / 2 + 1`.
    pub fn bins(&self) -> usize {
        self.nperseg / 2 + 1
    }

    /// The frames of a signal of `n` samples, and the zeros padded behind the end-boundary
    /// zeros to make the last one whole.
    pub fn frames(&self, n: usize) -> (usize, usize) {
        let hop = self.hop;
        let rest = n % hop;
        let pad = if rest == 0 { 0 } else { hop - rest };
        ((n + pad) / hop + 1, pad)
    }

    /// The real and imaginary parts of the transform of `x` (`[batch, n]`), each
    /// `[batch, bins, frames]`.
    pub fn forward(&self, x: Tensor<2>) -> (Tensor<3>, Tensor<3>) {
        let [b, n] = x.dims();
        let (m, half, bins) = (self.nperseg, self.nperseg / 2, self.bins());
        let (frames, pad) = self.frames(n);
        let padded = zero_pad(x, half, half + pad);
        let indices: Vec<i64> = (0..frames)
            .flat_map(|k| (0..m).map(move |i| (k * self.hop + i) as i64))
            .collect();
        let device = padded.device();
        let framed = columns(padded, indices).reshape([b * frames, m]);
        let to_bins = |basis: &Constant<2>| -> Tensor<3> {
            framed
                .clone()
                .matmul(basis.on(&device))
                .reshape([b, frames, bins])
                .swap_dims(1, 2)
        };
        (to_bins(&self.cos), to_bins(&self.sin))
    }

    /// `|Z|`, `[batch, bins, frames]`.
    pub fn magnitude(&self, x: Tensor<2>) -> Tensor<3> {
        let (re, im) = self.forward(x);
        (re.square() + im.square()).sqrt()
    }
}

fn default_nperseg() -> usize {
    64
}
fn default_hop() -> usize {
    32
}

/// The STFT magnitude |Z| as scipy.signal.stft computes Z (periodic Hann window of nperseg samples, frames every hop samples, nperseg/2 zeros at each end, the end padded to a whole frame, scaled by 1 / sum(window)): images [nperseg/2 + 1 frequencies, frames].
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(transform, name = "stft")]
pub struct StftSpec {
    /// Samples per frame (even).
    #[serde(default = "default_nperseg")]
    pub nperseg: usize,
    /// Samples between frames.
    #[serde(default = "default_hop")]
    pub hop: usize,
}

impl TransformSpec for StftSpec {
    fn build(&self, length: usize) -> std::result::Result<Arc<dyn SignalTransform>, BuildError> {
        let stft = Stft::new(self.nperseg, self.hop).map_err(|e| {
            let arg = if e.starts_with("hop") {
                "hop"
            } else {
                "nperseg"
            };
            BuildError::at(arg, e)
        })?;
        Ok(Arc::new(StftImage { stft, length }))
    }
}

/// The magnitude of the STFT of signals of `length` samples.
#[derive(Debug)]
struct StftImage {
    stft: Stft,
    length: usize,
}

impl SignalTransform for StftImage {
    fn image(&self, x: Tensor<2>) -> Result<Tensor<3>> {
        Ok(self.stft.magnitude(x))
    }

    fn shape(&self) -> [usize; 2] {
        [self.stft.bins(), self.stft.frames(self.length).0]
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
    fn it_is_scipys_stft() {
        let device = Device::flex();
        let stft = Stft::new(64, 16).unwrap();
        assert_eq!(stft.frames(256), (17, 0));
        let (re, im) = stft.forward(signal(&device));
        assert_eq!(re.dims(), [1, 33, 17]);
        let reference = &json()["stft"];
        assert_close(values(re), &floats(&reference["re"]), 1e-5, "real part");
        assert_close(
            values(im),
            &floats(&reference["im"]),
            1e-5,
            "imaginary part",
        );
    }

    #[test]
    fn a_tone_on_a_bin_gives_the_hann_windows_three_lines() {
        // cos(2 pi 4 n / 64): the periodic Hann window's spectrum is 1/2 at the tone's bin and
        // -1/4 at its neighbours (after the 1/sum(w) scaling, the cosine's 1/2 and the
        // window's 1, -1/2, -1/2), 0 elsewhere, in every frame away from the ends.
        let device = Device::flex();
        let x: Vec<f32> = (0..256)
            .map(|n| (2.0 * PI * 4.0 * n as f64 / 64.0).cos() as f32)
            .collect();
        let x = Tensor::<2>::from_data(TensorData::new(x, [1, 256]), &device);
        let (re, im) = Stft::new(64, 16).unwrap().forward(x);
        let (re, im) = (values(re), values(im));
        for k in 2..15 {
            for f in 0..33 {
                let want = match f {
                    4 => 0.5,
                    3 | 5 => -0.25,
                    _ => 0.0,
                };
                let i = f * 17 + k;
                assert!(
                    (re[i] - want).abs() < 1e-5 && im[i].abs() < 1e-5,
                    "bin {f}, frame {k}: {} {}",
                    re[i],
                    im[i]
                );
            }
        }
    }

    #[test]
    fn the_end_is_padded_to_a_whole_frame() {
        // 250 samples, hop 16: 6 zeros make 256, so 17 frames, as scipy's padded=True.
        assert_eq!(Stft::new(64, 16).unwrap().frames(250), (17, 6));
        assert!(Stft::new(63, 16).is_err());
        assert!(Stft::new(64, 65).is_err());
    }
}
