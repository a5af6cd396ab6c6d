//! Truncated discrete Fourier transforms as matrix products.
//!
//! A Fourier layer keeps only its lowest `modes` frequencies, so it needs those few Fourier
//! coefficients, not the whole spectrum. Multiplying by the `[n, modes]` slice of the DFT matrix
//! computes exactly them, for any grid size `n`, with one GEMM per axis that autodiff
//! differentiates like any matmul, on every backend (LibTorch and flex). `burn`'s `signal`
//! feature offers `rfft`/`irfft`, but in 0.22.1 only for power-of-two lengths and without an
//! inverse complex FFT (needed along the first axis of a 2-D field), and it transforms the whole
//! axis to throw most of it away. At the grid sizes neural operators train on (16 to 256 points
//! per axis, 8 to 32 modes) the matrix route costs about as much as an FFT would.
//!
//! Conventions follow `torch.fft`: forward `X[k] = sum_t x[t] e^{-2 pi i k t / n}`, inverse with
//! `1/n`; `irfft` counts each kept frequency twice except 0 and n/2, and ignores the imaginary
//! part of those two.

use std::f64::consts::PI;

use stoker::prelude::*;

/// The frequencies a Fourier layer keeps along a full (complex) axis of `n` points: the `modes`
/// lowest non-negative ones and the `modes` highest (the negative frequencies), as
/// `torch.fft.fft` orders them. Needs `2 * modes <= n`.
pub fn full_axis_frequencies(n: usize, modes: usize) -> Vec<usize> {
    (0..modes).chain(n - modes..n).collect()
}

fn angle(frequency: usize, t: usize, n: usize) -> f64 {
    // The product reduced modulo n first keeps the angle exact for large grids.
    2.0 * PI * ((frequency * t) % n) as f64 / n as f64
}

/// A `[rows, cols]` matrix with entries `f(row, col)`, on `device`.
fn matrix(rows: usize, cols: usize, device: &Device, f: impl Fn(usize, usize) -> f64) -> Tensor<2> {
    let values: Vec<f32> = (0..rows)
        .flat_map(|r| (0..cols).map(move |c| (r, c)))
        .map(|(r, c)| f(r, c) as f32)
        .collect();
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

/// The real DFT along the last axis of `n` points, kept at frequencies `0..modes`, and its
/// inverse: built once per grid size and forward pass, shared by every layer.
#[derive(Debug, Clone)]
pub struct RealBasis {
    n: usize,
    cos: Tensor<2>,
    minus_sin: Tensor<2>,
    inverse_cos: Tensor<2>,
    inverse_sin: Tensor<2>,
}

impl RealBasis {
    /// The matrices for `n` points and `modes` frequencies.
    pub fn new(n: usize, modes: usize, device: &Device) -> Self {
        // irfft counts each kept frequency twice, except 0 and n/2.
        let weight = |k: usize| if k == 0 || 2 * k == n { 1.0 } else { 2.0 };
        RealBasis {
            n,
            cos: matrix(n, modes, device, |t, k| angle(k, t, n).cos()),
            minus_sin: matrix(n, modes, device, |t, k| -angle(k, t, n).sin()),
            inverse_cos: matrix(modes, n, device, |k, t| {
                weight(k) * angle(k, t, n).cos() / n as f64
            }),
            inverse_sin: matrix(modes, n, device, |k, t| {
                -weight(k) * angle(k, t, n).sin() / n as f64
            }),
        }
    }

    /// `torch.fft.rfft(x)[:, :modes]` of `x` `[rows, n]`: real and imaginary parts `[rows, modes]`.
    pub fn forward(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        (
            x.clone().matmul(self.cos.clone()),
            x.matmul(self.minus_sin.clone()),
        )
    }

    /// `torch.fft.irfft(X, n)` with `X` zero beyond `modes`; inputs `[rows, modes]`.
    pub fn inverse(&self, re: Tensor<2>, im: Tensor<2>) -> Tensor<2> {
        re.matmul(self.inverse_cos.clone()) + im.matmul(self.inverse_sin.clone())
    }

    /// The number of points.
    pub fn points(&self) -> usize {
        self.n
    }
}

/// The complex DFT along the last axis of `n` points, kept at `frequencies`, and its inverse.
#[derive(Debug, Clone)]
pub struct ComplexBasis {
    cos: Tensor<2>,
    sin: Tensor<2>,
    inverse_cos: Tensor<2>,
    inverse_sin: Tensor<2>,
}

impl ComplexBasis {
    /// The matrices for `n` points and the kept `frequencies`.
    pub fn new(n: usize, frequencies: &[usize], device: &Device) -> Self {
        let m = frequencies.len();
        ComplexBasis {
            cos: matrix(n, m, device, |t, k| angle(frequencies[k], t, n).cos()),
            sin: matrix(n, m, device, |t, k| angle(frequencies[k], t, n).sin()),
            inverse_cos: matrix(m, n, device, |k, t| {
                angle(frequencies[k], t, n).cos() / n as f64
            }),
            inverse_sin: matrix(m, n, device, |k, t| {
                angle(frequencies[k], t, n).sin() / n as f64
            }),
        }
    }

    /// `torch.fft.fft(x)[:, frequencies]` of a complex `x` `[rows, n]`.
    pub fn forward(&self, re: Tensor<2>, im: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        // (re + i im)(cos - i sin) = (re cos + im sin) + i (im cos - re sin)
        let out_re = re.clone().matmul(self.cos.clone()) + im.clone().matmul(self.sin.clone());
        let out_im = im.matmul(self.cos.clone()) - re.matmul(self.sin.clone());
        (out_re, out_im)
    }

    /// `torch.fft.ifft(X, n)` with `X` zero outside the kept frequencies; inputs `[rows, frequencies]`.
    pub fn inverse(&self, re: Tensor<2>, im: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        // (re + i im)(cos + i sin) = (re cos - im sin) + i (im cos + re sin)
        let (c, s) = (self.inverse_cos.clone(), self.inverse_sin.clone());
        let out_re = re.clone().matmul(c.clone()) - im.clone().matmul(s.clone());
        let out_im = im.matmul(c) + re.matmul(s);
        (out_re, out_im)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A direct DFT in f64, term by term: `sum_t x[t] e^{sign 2 pi i k t / n}`.
    pub fn direct_dft(re: &[f64], im: &[f64], sign: f64) -> (Vec<f64>, Vec<f64>) {
        let n = re.len();
        (0..n)
            .map(|k| {
                (0..n).fold((0.0, 0.0), |(sr, si), t| {
                    let a = sign * 2.0 * PI * (k * t) as f64 / n as f64;
                    (
                        sr + re[t] * a.cos() - im[t] * a.sin(),
                        si + re[t] * a.sin() + im[t] * a.cos(),
                    )
                })
            })
            .unzip()
    }

    pub fn values(t: Tensor<2>) -> Vec<f64> {
        t.into_data()
            .try_to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect()
    }

    fn signal(n: usize, seed: u64) -> Vec<f64> {
        (0..n)
            .map(|t| ((t as u64 * 7919 + seed * 104729) % 1000) as f64 / 500.0 - 1.0)
            .collect()
    }

    fn row(v: &[f64], device: &Device) -> Tensor<2> {
        let data: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        Tensor::from_data(TensorData::new(data, [1, v.len()]), device)
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 2e-4 * (1.0 + y.abs()), "{a:?}\nvs\n{b:?}");
        }
    }

    #[test]
    fn forward_transforms_match_a_direct_dft() {
        let device = Device::flex();
        for n in [5, 12, 16] {
            let x = signal(n, 1);
            let y = signal(n, 2);
            let (dr, di) = direct_dft(&x, &vec![0.0; n], -1.0);
            let modes = n / 2;
            let (re, im) = RealBasis::new(n, modes, &device).forward(row(&x, &device));
            close(&values(re), &dr[..modes]);
            close(&values(im), &di[..modes]);

            let (cr, ci) = direct_dft(&x, &y, -1.0);
            let frequencies = full_axis_frequencies(n, 2);
            let (re, im) = ComplexBasis::new(n, &frequencies, &device)
                .forward(row(&x, &device), row(&y, &device));
            let pick = |v: &[f64]| frequencies.iter().map(|&k| v[k]).collect::<Vec<_>>();
            close(&values(re), &pick(&cr));
            close(&values(im), &pick(&ci));
        }
    }

    #[test]
    fn inverse_transforms_match_a_direct_dft_of_the_kept_coefficients() {
        let device = Device::flex();
        for n in [6, 7, 16] {
            let modes = 3;
            // The spectrum of a real signal, zero beyond `modes` (and its mirror image).
            let mut sr = vec![0.0; n];
            let mut si = vec![0.0; n];
            for k in 0..modes {
                sr[k] = signal(modes, 3)[k];
                si[k] = if k == 0 { 0.0 } else { signal(modes, 4)[k] };
                if k > 0 {
                    sr[n - k] = sr[k];
                    si[n - k] = -si[k];
                }
            }
            let (xr, _) = direct_dft(&sr, &si, 1.0);
            let expected: Vec<f64> = xr.iter().map(|v| v / n as f64).collect();
            let got = RealBasis::new(n, modes, &device)
                .inverse(row(&sr[..modes], &device), row(&si[..modes], &device));
            close(&values(got), &expected);

            // Complex: any coefficients at the kept frequencies.
            let frequencies = full_axis_frequencies(n, 2);
            let mut full_r = vec![0.0; n];
            let mut full_i = vec![0.0; n];
            let kr = signal(4, 5);
            let ki = signal(4, 6);
            for (j, &k) in frequencies.iter().enumerate() {
                full_r[k] = kr[j];
                full_i[k] = ki[j];
            }
            let (er, ei) = direct_dft(&full_r, &full_i, 1.0);
            let (gr, gi) = ComplexBasis::new(n, &frequencies, &device)
                .inverse(row(&kr, &device), row(&ki, &device));
            let scale = |v: Vec<f64>| v.into_iter().map(|x| x / n as f64).collect::<Vec<_>>();
            close(&values(gr), &scale(er));
            close(&values(gi), &scale(ei));
        }
    }
}
