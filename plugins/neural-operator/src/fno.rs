//! `FNO1d` and `FNO2d`: the Fourier neural operator of Li et al. (2020), as in their reference
//! `fourier_1d.py` / `fourier_2d.py`: lift the input (with grid coordinates appended) to `width`
//! channels, apply `layers` Fourier layers `gelu(K(v) + W v)` (no activation after the last),
//! project with a hidden layer of `projection` channels.

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::activation::gelu;
use stoker::native::nn::{Linear, LinearConfig};
use stoker::prelude::*;

use crate::spectral::{SpectralConv1d, SpectralConv2d};

fn default_width() -> usize {
    32
}
fn default_layers() -> usize {
    4
}
fn default_projection() -> usize {
    128
}
fn default_out_channels() -> usize {
    1
}
fn yes() -> bool {
    true
}

/// The channels of an input tensor's samples: `[n..]` has 1, `[n.., c]` has c.
pub(crate) fn input_channels(
    ctx: &BuildContext,
    input: &str,
    grid_rank: usize,
) -> std::result::Result<(usize, Vec<usize>), BuildError> {
    let data = ctx.data()?;
    let info = data.require("input", input)?;
    if info.kind != ElementKind::Float {
        return Err(BuildError::at(
            "input",
            format!("tensor `{input}` holds integers; a neural operator needs floats"),
        ));
    }
    let shape = &info.sample_shape;
    if shape.len() == grid_rank {
        Ok((1, shape.clone()))
    } else if shape.len() == grid_rank + 1 {
        Ok((shape[grid_rank], shape[..grid_rank].to_vec()))
    } else {
        Err(BuildError::at(
            "input",
            format!(
                "each sample of `{input}` has shape {shape:?}; this operator wants a {grid_rank}-D grid, optionally with a trailing channel axis"
            ),
        ))
    }
}

fn check_common(
    width: usize,
    layers: usize,
    projection: usize,
    out_channels: usize,
) -> std::result::Result<(), BuildError> {
    for (name, value) in [
        ("width", width),
        ("layers", layers),
        ("projection", projection),
        ("out_channels", out_channels),
    ] {
        if value == 0 {
            return Err(BuildError::at(name, "must be at least 1"));
        }
    }
    Ok(())
}

/// The Fourier layers' shared parts: lifting, pointwise paths, projection.
#[derive(Module, Debug)]
pub struct Trunk {
    lift: Linear,
    pointwise: Vec<Linear>,
    project_hidden: Linear,
    project_out: Linear,
}

impl Trunk {
    fn new(
        in_channels: usize,
        width: usize,
        layers: usize,
        projection: usize,
        out: usize,
        device: &Device,
    ) -> Self {
        Trunk {
            lift: LinearConfig::new(in_channels, width).init(device).into(),
            pointwise: (0..layers)
                .map(|_| LinearConfig::new(width, width).init(device).into())
                .collect(),
            project_hidden: LinearConfig::new(width, projection).init(device).into(),
            project_out: LinearConfig::new(projection, out).init(device).into(),
        }
    }

    /// The Fourier layers `h = gelu(K_l(h) + W_l h)`, no activation after the last; `spectral`
    /// applies layer `l`'s spectral convolution `K_l` (channels last in and out).
    fn fourier_layers<const D: usize>(
        &self,
        mut h: Tensor<D>,
        spectral: impl Fn(usize, Tensor<D>) -> Tensor<D>,
    ) -> Tensor<D> {
        let last = self.pointwise.len() - 1;
        for (l, pointwise) in self.pointwise.iter().enumerate() {
            h = spectral(l, h.clone()) + pointwise.forward(h);
            if l < last {
                h = gelu(h);
            }
        }
        h
    }

    fn project<const D: usize>(&self, h: Tensor<D>) -> Tensor<D> {
        let hidden = gelu(self.project_hidden.forward(h));
        self.project_out.forward(hidden)
    }
}

/// Evenly spaced coordinates in [0, 1] on `n` points.
fn linspace(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            if n > 1 {
                i as f32 / (n - 1) as f32
            } else {
                0.0
            }
        })
        .collect()
}

/// A 2-D Fourier neural operator on fields `[batch, n1, n2]` or `[batch, n1, n2, channels]`; runs at resolutions other than the training one (zero-shot super-resolution).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(model, name = "FNO2d")]
pub struct Fno2dSpec {
    /// Fourier modes kept: [m1, m2] (m1 of each sign along the first axis, m2 along the second), or [m] for both; needs 2*m1 <= n1 and m2 <= n2/2 + 1.
    pub modes: Vec<usize>,
    /// Channels of the Fourier layers.
    #[serde(default = "default_width")]
    pub width: usize,
    /// Number of Fourier layers.
    #[serde(default = "default_layers")]
    pub layers: usize,
    /// Hidden channels of the projection.
    #[serde(default = "default_projection")]
    pub projection: usize,
    /// Append the grid coordinates (x, y in [0, 1]) to the input channels.
    #[serde(default = "yes")]
    pub grid: bool,
    /// Output channels; with 1 the output has the input's grid shape without a channel axis.
    #[serde(default = "default_out_channels")]
    pub out_channels: usize,
    /// The batch tensor the model reads.
    #[serde(default = "stoker::names::input")]
    pub input: String,
    /// The name of the output tensor.
    #[serde(default = "stoker::names::prediction")]
    pub output: String,
}

/// The 2-D operator.
#[derive(Module, Debug)]
pub struct Fno2d {
    spectral: Vec<SpectralConv2d>,
    trunk: Trunk,
    #[module(skip)]
    grid: bool,
    #[module(skip)]
    input: String,
    #[module(skip)]
    output: String,
}

/// Grid channels `[b, n1, n2, 2]` from the coordinates along each axis: the first axis's, then
/// the second's.
pub(crate) fn grid_channels(b: usize, g1: &[f32], g2: &[f32], device: &Device) -> Tensor<4> {
    let values: Vec<f32> = g1
        .iter()
        .flat_map(|x| g2.iter().flat_map(move |y| [*x, *y]))
        .collect();
    Tensor::<4>::from_data(TensorData::new(values, [1, g1.len(), g2.len(), 2]), device)
        .repeat_dim(0, b)
}

/// `batch`'s field `input` as `[batch, n1, n2, channels]`, and its rank (3 without a channel
/// axis), checked against the smallest grid `layer` runs on; `model` names the model in errors.
pub(crate) fn field_input(
    batch: &Batch,
    input: &str,
    layer: &SpectralConv2d,
    model: &str,
) -> Result<(Tensor<4>, usize)> {
    let rank = batch.shape(input)?.len();
    let x: Tensor<4> = match rank {
        3 => batch.float::<3>(input)?.unsqueeze_dim(3),
        4 => batch.float::<4>(input)?,
        _ => {
            return Err(StokerError::msg(format!(
                "{model}: `{input}` has rank {rank}; it needs [batch, n1, n2] or [batch, n1, n2, channels]"
            )));
        }
    };
    let [_, n1, n2, _] = x.dims();
    let [min1, min2] = layer.min_points();
    if n1 < min1 || n2 < min2 {
        return Err(StokerError::msg(format!(
            "{model}: a {n1}x{n2} grid is too coarse for its modes (needs at least {min1}x{min2})"
        )));
    }
    Ok((x, rank))
}

/// The operator's output `out` (`[b, n1, n2, channels]`) named `name`: without the channel axis
/// when it has one channel and the input had none (`rank` 3).
pub(crate) fn field_output(name: &str, out: Tensor<4>, rank: usize) -> Output {
    let [b, n1, n2, channels] = out.dims();
    let output = Output::output();
    if channels == 1 && rank == 3 {
        output.with_float(name.to_string(), out.reshape([b, n1, n2]))
    } else {
        output.with_float(name.to_string(), out)
    }
}

impl Model for Fno2d {
    fn forward(&self, batch: &Batch) -> Result<Output> {
        let (x, rank) = field_input(batch, &self.input, &self.spectral[0], "FNO2d")?;
        let [b, n1, n2, _] = x.dims();
        let x = if self.grid {
            let grid = grid_channels(b, &linspace(n1), &linspace(n2), &x.device());
            Tensor::cat(vec![x, grid], 3)
        } else {
            x
        };
        // Every layer keeps the same modes: one set of DFT matrices serves them all.
        let basis = self.spectral[0].basis([n1, n2], &x.device());
        let h = self
            .trunk
            .fourier_layers(self.trunk.lift.forward(x), |l, h: Tensor<4>| {
                self.spectral[l]
                    .forward_with(h.permute([0, 3, 1, 2]), &basis)
                    .permute([0, 2, 3, 1])
            });
        Ok(field_output(&self.output, self.trunk.project(h), rank))
    }
}

impl ModelSpec for Fno2dSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn DynModel>, BuildError> {
        let modes = match self.modes[..] {
            [m] => [m, m],
            [m1, m2] => [m1, m2],
            _ => {
                return Err(
                    BuildError::at("modes", "give [m1, m2] or [m]").hint("e.g. `modes: [8, 8]`")
                );
            }
        };
        if modes.contains(&0) {
            return Err(BuildError::at("modes", "each count must be at least 1"));
        }
        check_common(self.width, self.layers, self.projection, self.out_channels)?;
        let (channels, grid) = input_channels(ctx, &self.input, 2)?;
        if 2 * modes[0] > grid[0] || modes[1] > grid[1] / 2 + 1 {
            return Err(BuildError::at(
                "modes",
                format!(
                    "{modes:?} modes do not fit the training grid {}x{}",
                    grid[0], grid[1]
                ),
            )
            .hint(format!(
                "use at most [{}, {}]",
                grid[0] / 2,
                grid[1] / 2 + 1
            )));
        }
        let device = ctx.train_device();
        let lifted = channels + if self.grid { 2 } else { 0 };
        Ok(boxed(Fno2d {
            spectral: (0..self.layers)
                .map(|_| SpectralConv2d::new(self.width, self.width, modes, &device))
                .collect(),
            trunk: Trunk::new(
                lifted,
                self.width,
                self.layers,
                self.projection,
                self.out_channels,
                &device,
            ),
            grid: self.grid,
            input: self.input.clone(),
            output: self.output.clone(),
        }))
    }
}

/// A 1-D Fourier neural operator on signals `[batch, n]` or `[batch, n, channels]`; runs at resolutions other than the training one.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(model, name = "FNO1d")]
pub struct Fno1dSpec {
    /// Fourier modes kept (frequencies 0..modes); needs modes <= n/2 + 1.
    pub modes: usize,
    /// Channels of the Fourier layers.
    #[serde(default = "default_width")]
    pub width: usize,
    /// Number of Fourier layers.
    #[serde(default = "default_layers")]
    pub layers: usize,
    /// Hidden channels of the projection.
    #[serde(default = "default_projection")]
    pub projection: usize,
    /// Append the grid coordinate (x in [0, 1]) to the input channels.
    #[serde(default = "yes")]
    pub grid: bool,
    /// Output channels; with 1 the output has the input's shape without a channel axis.
    #[serde(default = "default_out_channels")]
    pub out_channels: usize,
    /// The batch tensor the model reads.
    #[serde(default = "stoker::names::input")]
    pub input: String,
    /// The name of the output tensor.
    #[serde(default = "stoker::names::prediction")]
    pub output: String,
}

/// The 1-D operator.
#[derive(Module, Debug)]
pub struct Fno1d {
    spectral: Vec<SpectralConv1d>,
    trunk: Trunk,
    #[module(skip)]
    grid: bool,
    #[module(skip)]
    out_channels: usize,
    #[module(skip)]
    input: String,
    #[module(skip)]
    output: String,
}

impl Model for Fno1d {
    fn forward(&self, batch: &Batch) -> Result<Output> {
        let rank = batch.shape(&self.input)?.len();
        let x: Tensor<3> = match rank {
            2 => batch.float::<2>(&self.input)?.unsqueeze_dim(2),
            3 => batch.float::<3>(&self.input)?,
            _ => {
                return Err(StokerError::msg(format!(
                    "FNO1d: `{}` has rank {rank}; it needs [batch, n] or [batch, n, channels]",
                    self.input
                )));
            }
        };
        let [b, n, _] = x.dims();
        let min = self.spectral[0].min_points();
        if n < min {
            return Err(StokerError::msg(format!(
                "FNO1d: {n} points are too few for its modes (needs at least {min})"
            )));
        }
        let x = if self.grid {
            let grid = Tensor::<3>::from_data(TensorData::new(linspace(n), [1, n, 1]), &x.device())
                .repeat_dim(0, b);
            Tensor::cat(vec![x, grid], 2)
        } else {
            x
        };
        let basis = self.spectral[0].basis(n, &x.device());
        let h = self
            .trunk
            .fourier_layers(self.trunk.lift.forward(x), |l, h: Tensor<3>| {
                self.spectral[l]
                    .forward_with(h.permute([0, 2, 1]), &basis)
                    .permute([0, 2, 1])
            });
        let out = self.trunk.project(h);
        let output = Output::output();
        Ok(if self.out_channels == 1 && rank == 2 {
            output.with_float(self.output.clone(), out.reshape([b, n]))
        } else {
            output.with_float(self.output.clone(), out)
        })
    }
}

impl ModelSpec for Fno1dSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn DynModel>, BuildError> {
        if self.modes == 0 {
            return Err(BuildError::at("modes", "must be at least 1"));
        }
        check_common(self.width, self.layers, self.projection, self.out_channels)?;
        let (channels, grid) = input_channels(ctx, &self.input, 1)?;
        if self.modes > grid[0] / 2 + 1 {
            return Err(BuildError::at(
                "modes",
                format!(
                    "{} modes do not fit the training grid of {} points",
                    self.modes, grid[0]
                ),
            )
            .hint(format!("use at most {}", grid[0] / 2 + 1)));
        }
        let device = ctx.train_device();
        let lifted = channels + usize::from(self.grid);
        Ok(boxed(Fno1d {
            spectral: (0..self.layers)
                .map(|_| SpectralConv1d::new(self.width, self.width, self.modes, &device))
                .collect(),
            trunk: Trunk::new(
                lifted,
                self.width,
                self.layers,
                self.projection,
                self.out_channels,
                &device,
            ),
            grid: self.grid,
            out_channels: self.out_channels,
            input: self.input.clone(),
            output: self.output.clone(),
        }))
    }
}
