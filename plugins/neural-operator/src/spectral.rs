//! Spectral convolutions: transform, multiply the kept Fourier modes by learned complex weights
//! (mixing channels), transform back (Li et al., 2020, eq. 4-5).

use stoker::burn::module::Param;
use stoker::burn::tensor::Distribution;
use stoker::prelude::*;

use crate::dft::{ComplexBasis, RealBasis, full_axis_frequencies};

/// Complex weights `[modes, in, out]` as two real parameters, initialised as the reference
/// implementation does: real and imaginary parts uniform in `[0, 1 / (in * out))`.
#[derive(Module, Debug)]
pub struct ComplexWeights {
    /// Real parts.
    pub re: Param<Tensor<3>>,
    /// Imaginary parts.
    pub im: Param<Tensor<3>>,
}

impl ComplexWeights {
    /// New weights for `modes` modes from `in` to `out` channels.
    pub fn new(modes: usize, input: usize, output: usize, device: &Device) -> Self {
        let scale = 1.0 / (input * output) as f64;
        let init = || {
            Param::from_tensor(Tensor::random(
                [modes, input, output],
                Distribution::Uniform(0.0, scale),
                device,
            ))
        };
        ComplexWeights {
            re: init(),
            im: init(),
        }
    }

    /// New weights for `modes` modes from `in` to `out` channels, initialised as
    /// neuraloperator 0.3.0's `SpectralConv` does: a complex normal of standard deviation `std`,
    /// so real and imaginary parts each normal with standard deviation `std / sqrt(2)`.
    pub fn complex_normal(
        modes: usize,
        input: usize,
        output: usize,
        std: f64,
        device: &Device,
    ) -> Self {
        let part = std / std::f64::consts::SQRT_2;
        let init = || {
            Param::from_tensor(Tensor::random(
                [modes, input, output],
                Distribution::Normal(0.0, part),
                device,
            ))
        };
        ComplexWeights {
            re: init(),
            im: init(),
        }
    }

    /// `(re + i im)` of shape `[modes, batch, in]` times the weights: `[modes, batch, out]`.
    fn mix(&self, re: Tensor<3>, im: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let (wr, wi) = (self.re.val(), self.im.val());
        let out_re = re.clone().matmul(wr.clone()) - im.clone().matmul(wi.clone());
        let out_im = re.matmul(wi) + im.matmul(wr);
        (out_re, out_im)
    }
}

/// A 1-D spectral convolution on `[batch, channels, n]` keeping `modes` frequencies.
#[derive(Module, Debug)]
pub struct SpectralConv1d {
    /// One complex `[in, out]` matrix per kept frequency.
    pub weights: ComplexWeights,
    #[module(skip)]
    modes: usize,
}

impl SpectralConv1d {
    /// A layer from `input` to `output` channels keeping `modes` frequencies.
    pub fn new(input: usize, output: usize, modes: usize, device: &Device) -> Self {
        SpectralConv1d {
            weights: ComplexWeights::new(modes, input, output, device),
            modes,
        }
    }

    /// The smallest grid the layer runs on.
    pub fn min_points(&self) -> usize {
        2 * (self.modes - 1).max(1)
    }

    /// The DFT matrices for signals of `n` points, to share between layers of equal modes.
    pub fn basis(&self, n: usize, device: &Device) -> RealBasis {
        RealBasis::new(n, self.modes, device)
    }

    /// `x`: `[batch, in, n]` to `[batch, out, n]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let basis = self.basis(x.dims()[2], &x.device());
        self.forward_with(x, &basis)
    }

    /// [`forward`](Self::forward) with matrices built by [`basis`](Self::basis).
    pub fn forward_with(&self, x: Tensor<3>, basis: &RealBasis) -> Tensor<3> {
        let [b, c, n] = x.dims();
        debug_assert_eq!(basis.points(), n);
        let m = self.modes;
        let (re, im) = basis.forward(x.reshape([b * c, n]));
        let to_modes = |t: Tensor<2>| t.reshape([b, c, m]).permute([2, 0, 1]);
        let (re, im) = self.weights.mix(to_modes(re), to_modes(im));
        let o = re.dims()[2];
        let from_modes = |t: Tensor<3>| t.permute([1, 2, 0]).reshape([b * o, m]);
        basis
            .inverse(from_modes(re), from_modes(im))
            .reshape([b, o, n])
    }
}

/// The DFT matrices of a 2-D spectral layer for one grid size.
#[derive(Debug, Clone)]
pub struct Basis2d {
    rows: ComplexBasis,
    columns: RealBasis,
}

/// A 2-D spectral convolution on `[batch, channels, n1, n2]` keeping `modes1` frequencies of
/// each sign along the first axis and `modes2` non-negative ones along the second (the real
/// transform's axis), as the reference FNO's `weights1` / `weights2` blocks do.
#[derive(Module, Debug)]
pub struct SpectralConv2d {
    /// One complex `[in, out]` matrix per kept `(k1, k2)` pair, `k1` major.
    pub weights: ComplexWeights,
    #[module(skip)]
    modes1: usize,
    #[module(skip)]
    modes2: usize,
}

impl SpectralConv2d {
    /// A layer from `input` to `output` channels keeping `modes1` x `modes2` frequencies.
    pub fn new(input: usize, output: usize, modes: [usize; 2], device: &Device) -> Self {
        SpectralConv2d {
            weights: ComplexWeights::new(2 * modes[0] * modes[1], input, output, device),
            modes1: modes[0],
            modes2: modes[1],
        }
    }

    /// A layer as neuraloperator 0.3.0's `SpectralConv` makes it (complex normal weights of
    /// standard deviation `std`), keeping the same modes as [`new`](Self::new).
    pub fn complex_normal(
        input: usize,
        output: usize,
        modes: [usize; 2],
        std: f64,
        device: &Device,
    ) -> Self {
        SpectralConv2d {
            weights: ComplexWeights::complex_normal(
                2 * modes[0] * modes[1],
                input,
                output,
                std,
                device,
            ),
            modes1: modes[0],
            modes2: modes[1],
        }
    }

    /// The smallest grid the layer runs on, per axis.
    pub fn min_points(&self) -> [usize; 2] {
        [2 * self.modes1, 2 * (self.modes2 - 1).max(1)]
    }

    /// The DFT matrices for an `n1` x `n2` grid, to share between layers of equal modes.
    pub fn basis(&self, [n1, n2]: [usize; 2], device: &Device) -> Basis2d {
        Basis2d {
            rows: ComplexBasis::new(n1, &full_axis_frequencies(n1, self.modes1), device),
            columns: RealBasis::new(n2, self.modes2, device),
        }
    }

    /// `x`: `[batch, in, n1, n2]` to `[batch, out, n1, n2]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, n1, n2] = x.dims();
        let basis = self.basis([n1, n2], &x.device());
        self.forward_with(x, &basis)
    }

    /// [`forward`](Self::forward) with matrices built by [`basis`](Self::basis).
    pub fn forward_with(&self, x: Tensor<4>, basis: &Basis2d) -> Tensor<4> {
        let [b, c, n1, n2] = x.dims();
        let m2 = self.modes2;
        let k1 = 2 * self.modes1;
        // Real transform along n2, then complex transform along n1.
        let (re, im) = basis.columns.forward(x.reshape([b * c * n1, n2]));
        let n1_last = |t: Tensor<2>| {
            t.reshape([b, c, n1, m2])
                .swap_dims(2, 3)
                .reshape([b * c * m2, n1])
        };
        let (re, im) = basis.rows.forward(n1_last(re), n1_last(im));
        // [b, c, m2, k1] -> [k1 * m2, b, c]: one channel-mixing matmul per mode.
        let to_modes = |t: Tensor<2>| {
            t.reshape([b, c, m2, k1])
                .permute([3, 2, 0, 1])
                .reshape([k1 * m2, b, c])
        };
        let (re, im) = self.weights.mix(to_modes(re), to_modes(im));
        let o = re.dims()[2];
        let from_modes = |t: Tensor<3>| {
            t.reshape([k1, m2, b, o])
                .permute([2, 3, 1, 0])
                .reshape([b * o * m2, k1])
        };
        let (re, im) = basis.rows.inverse(from_modes(re), from_modes(im));
        let n2_last = |t: Tensor<2>| {
            t.reshape([b, o, m2, n1])
                .swap_dims(2, 3)
                .reshape([b * o * n1, m2])
        };
        basis
            .columns
            .inverse(n2_last(re), n2_last(im))
            .reshape([b, o, n1, n2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dft::tests::{direct_dft, values};

    fn tensor<const D: usize>(v: &[f64], shape: [usize; D], device: &Device) -> Tensor<D> {
        let data: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        Tensor::from_data(TensorData::new(data, shape), device)
    }

    fn field(len: usize, seed: u64) -> Vec<f64> {
        (0..len)
            .map(|i| ((i as u64 * 2654435761 + seed * 40503) % 2001) as f64 / 1000.0 - 1.0)
            .collect()
    }

    /// The spectral convolution written out with direct DFTs: full 2-D DFT, multiply the kept
    /// modes (zero the rest, mirror for a real output), inverse 2-D DFT, real part.
    fn direct_2d(
        x: &[f64],
        [c, n1, n2]: [usize; 3],
        wr: &[f64],
        wi: &[f64],
        o: usize,
        [m1, m2]: [usize; 2],
    ) -> Vec<f64> {
        let frequencies = full_axis_frequencies(n1, m1);
        let mut out = vec![0.0; o * n1 * n2];
        // Spectrum of each input channel: X[i][k1][k2].
        let spectra: Vec<Vec<(f64, f64)>> = (0..c)
            .map(|i| {
                let plane = &x[i * n1 * n2..(i + 1) * n1 * n2];
                let mut s = vec![(0.0, 0.0); n1 * n2];
                for k1 in 0..n1 {
                    for k2 in 0..n2 {
                        for t1 in 0..n1 {
                            for t2 in 0..n2 {
                                let a = -2.0
                                    * std::f64::consts::PI
                                    * ((k1 * t1) as f64 / n1 as f64 + (k2 * t2) as f64 / n2 as f64);
                                s[k1 * n2 + k2].0 += plane[t1 * n2 + t2] * a.cos();
                                s[k1 * n2 + k2].1 += plane[t1 * n2 + t2] * a.sin();
                            }
                        }
                    }
                }
                s
            })
            .collect();
        for j in 0..o {
            // Kept coefficients, and their mirror images so that the inverse is real.
            let mut full = vec![(0.0, 0.0); n1 * n2];
            for (q, &k1) in frequencies.iter().enumerate() {
                for k2 in 0..m2 {
                    let mode = q * m2 + k2;
                    let (mut yr, mut yi) = (0.0, 0.0);
                    for (i, spectrum) in spectra.iter().enumerate() {
                        let (xr, xi) = spectrum[k1 * n2 + k2];
                        let idx = (mode * c + i) * o + j;
                        yr += xr * wr[idx] - xi * wi[idx];
                        yi += xr * wi[idx] + xi * wr[idx];
                    }
                    full[k1 * n2 + k2] = (yr, yi);
                    if k2 > 0 && 2 * k2 != n2 {
                        let mirror = ((n1 - k1) % n1) * n2 + (n2 - k2);
                        full[mirror] = (yr, -yi);
                    }
                }
            }
            // Row transforms, then column transforms, with the direct 1-D DFT.
            let mut rows = vec![(0.0, 0.0); n1 * n2];
            for k1 in 0..n1 {
                let (r, i): (Vec<f64>, Vec<f64>) =
                    full[k1 * n2..(k1 + 1) * n2].iter().copied().unzip();
                let (tr, ti) = direct_dft(&r, &i, 1.0);
                for t2 in 0..n2 {
                    rows[k1 * n2 + t2] = (tr[t2], ti[t2]);
                }
            }
            for t2 in 0..n2 {
                let (r, i): (Vec<f64>, Vec<f64>) = (0..n1).map(|k1| rows[k1 * n2 + t2]).unzip();
                let (tr, _) = direct_dft(&r, &i, 1.0);
                for t1 in 0..n1 {
                    out[(j * n1 + t1) * n2 + t2] = tr[t1] / (n1 * n2) as f64;
                }
            }
        }
        out
    }

    #[test]
    fn spectral_conv_2d_matches_a_direct_dft() {
        let device = Device::flex();
        let (c, o, modes) = (2, 3, [2, 3]);
        for [n1, n2] in [[8, 8], [6, 10], [16, 16]] {
            let layer = SpectralConv2d::new(c, o, modes, &device);
            let count = 2 * modes[0] * modes[1] * c * o;
            let wr = values(layer.weights.re.val().reshape([1, count]));
            let wi = values(layer.weights.im.val().reshape([1, count]));
            let x = field(c * n1 * n2, 7);
            let got = values(
                layer
                    .forward(tensor(&x, [1, c, n1, n2], &device))
                    .reshape([1, o * n1 * n2]),
            );
            let expected = direct_2d(&x, [c, n1, n2], &wr, &wi, o, modes);
            for (g, e) in got.iter().zip(&expected) {
                assert!((g - e).abs() < 1e-4, "{n1}x{n2}: {g} vs {e}");
            }
        }
    }

    #[test]
    fn spectral_conv_1d_matches_a_direct_dft() {
        let device = Device::flex();
        let (c, o, m, n) = (2, 2, 3, 10);
        let layer = SpectralConv1d::new(c, o, m, &device);
        let wr = values(layer.weights.re.val().reshape([1, m * c * o]));
        let wi = values(layer.weights.im.val().reshape([1, m * c * o]));
        let x = field(c * n, 3);
        let got = values(
            layer
                .forward(tensor(&x, [1, c, n], &device))
                .reshape([1, o * n]),
        );
        for j in 0..o {
            let mut full_r = vec![0.0; n];
            let mut full_i = vec![0.0; n];
            for i in 0..c {
                let (xr, xi) = direct_dft(&x[i * n..(i + 1) * n], &vec![0.0; n], -1.0);
                for k in 0..m {
                    let idx = (k * c + i) * o + j;
                    full_r[k] += xr[k] * wr[idx] - xi[k] * wi[idx];
                    full_i[k] += xr[k] * wi[idx] + xi[k] * wr[idx];
                }
            }
            for k in 1..m {
                full_r[n - k] = full_r[k];
                full_i[n - k] = -full_i[k];
            }
            full_i[0] = 0.0;
            let (y, _) = direct_dft(&full_r, &full_i, 1.0);
            for t in 0..n {
                let e = y[t] / n as f64;
                let g = got[j * n + t];
                assert!((g - e).abs() < 1e-4, "{g} vs {e}");
            }
        }
    }

    #[test]
    fn runs_at_other_resolutions_with_the_same_weights() {
        let device = Device::flex();
        let layer = SpectralConv2d::new(1, 1, [4, 4], &device);
        for n in [8, 16, 32] {
            let x = Tensor::<4>::ones([2, 1, n, n], &device);
            assert_eq!(layer.forward(x).dims(), [2, 1, n, n]);
        }
        assert_eq!(layer.min_points(), [8, 6]);
    }
}
