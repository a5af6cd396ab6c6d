//! `NeuralopFNO`: the 2-D `FNO` of the `neuraloperator` package, version 0.3.0, with its
//! default arguments, so that a neural-operator user compares like with like:
//!
//! - the grid appended as two channels (`i / n` along each axis, the end left out, as its Darcy
//!   loader's positional encoding), after the input's own channels;
//! - lifting and projection as two-layer MLPs of 1x1 convolutions with `lifting_channels` and
//!   `projection_channels` (256) hidden channels and GELU between;
//! - `n_layers` Fourier blocks `gelu(K(v) + b + S v)`, no activation after the last: `K` keeps
//!   `n_modes[0]` frequencies along the first axis (`-n/2 .. n/2 - 1`) and `n_modes[1] / 2 + 1`
//!   along the second (the real transform's), with complex weights drawn from a complex normal
//!   of standard deviation `sqrt(2 / (in + out))`; `b` is the spectral bias (one value per
//!   channel and layer, normal with the same deviation); `S` is a 1x1 convolution without bias.
//!   `fft_norm` does not change the layer: the forward and inverse transforms come in a pair.
//!
//! The lifting, skip and projection convolutions are initialised as PyTorch's `Conv2d` (uniform
//! within `1 / sqrt(fan_in)`), which is Burn's `Linear` default.

use serde::{Deserialize, Serialize};
use stoker::burn::module::Param;
use stoker::burn::tensor::Distribution;
use stoker::burn::tensor::activation::gelu;
use stoker::native::nn::{Linear, LinearConfig};
use stoker::prelude::*;

use crate::fno::{field_input, field_output, grid_channels, input_channels};
use crate::spectral::SpectralConv2d;

fn default_hidden() -> usize {
    32
}
fn default_layers() -> usize {
    4
}
fn default_mlp() -> usize {
    256
}
fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}

/// neuraloperator 0.3.0's 2-D FNO with its defaults, on fields [batch, n1, n2] or [batch, n1, n2, channels]: the grid (i/n, end left out) appended, a lifting MLP (lifting_channels hidden, GELU), n_layers Fourier blocks gelu(K v + bias + W v) (K keeps n_modes[0] frequencies along the first axis, -n/2..n/2-1, and n_modes[1]/2 + 1 along the second; W a 1x1 convolution without bias; no activation after the last block), a projection MLP (projection_channels hidden, GELU). Its arguments are neuraloperator's names.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(model, name = "NeuralopFNO")]
pub struct NeuralopFnoSpec {
    /// Frequencies kept: n_modes[0] along the first axis (-m/2 .. m/2 - 1 for m = n_modes[0], which must be even), n_modes[1] / 2 + 1 along the second (0 .. n_modes[1] / 2); the grid needs at least n_modes[0] x n_modes[1] points. Required, as in neuraloperator.
    pub n_modes: [usize; 2],
    /// Channels of the Fourier blocks.
    #[serde(default = "default_hidden")]
    pub hidden_channels: usize,
    /// Number of Fourier blocks.
    #[serde(default = "default_layers")]
    pub n_layers: usize,
    /// Hidden channels of the lifting MLP.
    #[serde(default = "default_mlp")]
    pub lifting_channels: usize,
    /// Hidden channels of the projection MLP.
    #[serde(default = "default_mlp")]
    pub projection_channels: usize,
    /// Output channels; with 1 the output has the input's grid shape without a channel axis.
    #[serde(default = "one")]
    pub out_channels: usize,
    /// Append the grid (neuraloperator's Darcy loader's positional encoding).
    #[serde(default = "yes")]
    pub positional_embedding: bool,
    /// The batch tensor the model reads.
    #[serde(default = "stoker::names::input")]
    pub input: String,
    /// The name of the output tensor.
    #[serde(default = "stoker::names::prediction")]
    pub output: String,
}

/// The model.
#[derive(Module, Debug)]
pub struct NeuralopFno {
    lifting: Vec<Linear>,
    spectral: Vec<SpectralConv2d>,
    spectral_bias: Vec<Param<Tensor<1>>>,
    skips: Vec<Linear>,
    projection: Vec<Linear>,
    #[module(skip)]
    positional_embedding: bool,
    #[module(skip)]
    input: String,
    #[module(skip)]
    output: String,
}

/// `i / n` for `i` in `0..n`: neuraloperator's `regular_grid` (a linspace over [0, 1] with
/// `n + 1` points, the last left out).
fn regular_grid(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32 / n as f32).collect()
}

/// A two-layer MLP of 1x1 convolutions: `second(gelu(first(x)))`.
fn mlp<const D: usize>(layers: &[Linear], x: Tensor<D>) -> Tensor<D> {
    layers[1].forward(gelu(layers[0].forward(x)))
}

impl Model for NeuralopFno {
    fn forward(&self, batch: &Batch) -> Result<Output> {
        let (x, rank) = field_input(batch, &self.input, &self.spectral[0], "NeuralopFNO")?;
        let [b, n1, n2, _] = x.dims();
        let x = match self.positional_embedding {
            true => {
                let grid = grid_channels(b, &regular_grid(n1), &regular_grid(n2), &x.device());
                Tensor::cat(vec![x, grid], 3)
            }
            false => x,
        };
        let mut h = mlp(&self.lifting, x);
        let basis = self.spectral[0].basis([n1, n2], &h.device());
        let last = self.spectral.len() - 1;
        for (l, (spectral, skip)) in self.spectral.iter().zip(&self.skips).enumerate() {
            let channels = h.dims()[3];
            let k = spectral
                .forward_with(h.clone().permute([0, 3, 1, 2]), &basis)
                .permute([0, 2, 3, 1]);
            let bias = self.spectral_bias[l].val().reshape([1, 1, 1, channels]);
            h = k + bias + skip.forward(h);
            if l < last {
                h = gelu(h);
            }
        }
        Ok(field_output(&self.output, mlp(&self.projection, h), rank))
    }
}

impl NeuralopFnoSpec {
    /// The modes of the spectral layers in [`SpectralConv2d`]'s terms: frequencies of each sign
    /// along the first axis, non-negative ones along the second.
    fn layer_modes(&self) -> std::result::Result<[usize; 2], BuildError> {
        let [m1, m2] = self.n_modes;
        if m1 < 2 || !m1.is_multiple_of(2) || m2 == 0 {
            return Err(BuildError::at(
                "n_modes",
                format!(
                    "{:?}: the first count must be even and at least 2, the second at least 1",
                    self.n_modes
                ),
            )
            .hint("e.g. n_modes: [8, 8]"));
        }
        Ok([m1 / 2, m2 / 2 + 1])
    }
}

impl ModelSpec for NeuralopFnoSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn DynModel>, BuildError> {
        let modes = self.layer_modes()?;
        for (arg, value) in [
            ("hidden_channels", self.hidden_channels),
            ("n_layers", self.n_layers),
            ("lifting_channels", self.lifting_channels),
            ("projection_channels", self.projection_channels),
            ("out_channels", self.out_channels),
        ] {
            if value == 0 {
                return Err(BuildError::at(arg, "must be at least 1"));
            }
        }
        let (channels, grid) = input_channels(ctx, &self.input, 2)?;
        let needs = [2 * modes[0], 2 * (modes[1] - 1).max(1)];
        if grid[0] < needs[0] || grid[1] < needs[1] {
            return Err(BuildError::at(
                "n_modes",
                format!(
                    "{:?} modes do not fit the training grid {}x{} (it needs at least {}x{})",
                    self.n_modes, grid[0], grid[1], needs[0], needs[1]
                ),
            ));
        }
        let device = ctx.train_device();
        let width = self.hidden_channels;
        let lifted = channels + if self.positional_embedding { 2 } else { 0 };
        let linear =
            |i: usize, o: usize| -> Linear { LinearConfig::new(i, o).init(&device).into() };
        // neuraloperator's init_std: sqrt(2 / (in + out)).
        let std = (2.0 / (2 * width) as f64).sqrt();
        Ok(boxed(NeuralopFno {
            lifting: vec![
                linear(lifted, self.lifting_channels),
                linear(self.lifting_channels, width),
            ],
            spectral: (0..self.n_layers)
                .map(|_| SpectralConv2d::complex_normal(width, width, modes, std, &device))
                .collect(),
            spectral_bias: (0..self.n_layers)
                .map(|_| {
                    Param::from_tensor(Tensor::random(
                        [width],
                        Distribution::Normal(0.0, std),
                        &device,
                    ))
                })
                .collect(),
            skips: (0..self.n_layers)
                .map(|_| {
                    LinearConfig::new(width, width)
                        .with_bias(false)
                        .init(&device)
                        .into()
                })
                .collect(),
            projection: vec![
                linear(width, self.projection_channels),
                linear(self.projection_channels, self.out_channels),
            ],
            positional_embedding: self.positional_embedding,
            input: self.input.clone(),
            output: self.output.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small neuraloperator 0.3.0 FNO's weights (in this model's names) and its outputs,
    /// written by `tests/fixtures/make_neuralop_fixture.py`.
    const WEIGHTS: &[u8] = include_bytes!("../tests/fixtures/neuralop_fno.safetensors");
    const CASES: &str = include_str!("../tests/fixtures/neuralop_fno.json");

    fn context(n: usize, device: &Device) -> BuildContext {
        BuildContext::with_float_tensors(device, &[("x", &[n, n])])
    }

    #[test]
    fn the_outputs_are_neuraloperators_at_8x8_and_16x16() {
        let device = Device::flex();
        let spec: NeuralopFnoSpec = serde_yaml::from_str(
            "{n_modes: [4, 4], hidden_channels: 4, n_layers: 2, lifting_channels: 8, projection_channels: 8}",
        )
        .unwrap();
        let mut model = spec.build(&context(8, &device)).unwrap();
        assert_eq!(model.num_params(), 925);
        model.load_safetensors(WEIGHTS.to_vec()).unwrap();
        let cases: serde_json::Value = serde_json::from_str(CASES).unwrap();
        let floats = |v: &serde_json::Value| -> Vec<f32> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        };
        for n in [8usize, 16] {
            let case = &cases["cases"][n.to_string()];
            let x = Tensor::<3>::from_data(TensorData::new(floats(&case["x"]), [2, n, n]), &device);
            let output = model.forward(&Batch::batch().with_float("x", x)).unwrap();
            let got = output
                .float::<3>("pred")
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let want = floats(&case["y"]);
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-4 * scale,
                    "{n}x{n}, value {i}: {g} against {w}"
                );
            }
        }
    }

    #[test]
    fn modes_are_counted_as_neuraloperator_counts_them() {
        let spec = |modes: &str| -> NeuralopFnoSpec {
            serde_yaml::from_str(&format!("{{n_modes: {modes}}}")).unwrap()
        };
        // (8, 8): 8 frequencies along the first axis (4 of each sign), 5 along the second.
        assert_eq!(spec("[8, 8]").layer_modes().unwrap(), [4, 5]);
        assert_eq!(spec("[16, 16]").layer_modes().unwrap(), [8, 9]);
        assert_eq!(
            spec("[7, 8]").layer_modes().unwrap_err().arg.as_deref(),
            Some("n_modes")
        );
        // The default model at 16x16 has neuraloperator's 349,857 parameters (with the grid).
        let device = Device::flex();
        let model = spec("[8, 8]").build(&context(16, &device)).unwrap();
        assert_eq!(model.num_params(), 349_857);
        // A 8x8 grid is refused for 16 modes along the first axis.
        let Err(e) = spec("[16, 16]").build(&context(8, &device)) else {
            panic!("built")
        };
        assert_eq!(e.arg.as_deref(), Some("n_modes"));
    }
}
