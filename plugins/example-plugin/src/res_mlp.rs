//! `ResMLP`: a residual multi-layer perceptron.

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::activation::gelu;
use stoker::native::nn::{Linear, LinearConfig};
use stoker::prelude::*;

/// A residual MLP: an input projection to `width`, `blocks` residual blocks (x + W2 gelu(W1 x)), and an output projection; the input width is read off the data.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(model, name = "ResMLP")]
pub struct ResMlpSpec {
    /// Width of the residual stream.
    #[serde(default = "default_width")]
    pub width: usize,
    /// Number of residual blocks.
    #[serde(default = "default_blocks")]
    pub blocks: usize,
    /// Values per sample the model outputs.
    pub outputs: usize,
    /// The batch tensor the model reads (flattened per sample).
    #[serde(default = "stoker::names::input")]
    pub input: String,
    /// The name of the output tensor.
    #[serde(default = "stoker::names::prediction")]
    pub output: String,
}

fn default_width() -> usize {
    64
}

fn default_blocks() -> usize {
    2
}

/// One residual block.
#[derive(Module, Debug)]
pub struct Block {
    inner: Linear,
    outer: Linear,
}

/// The model: an ordinary Burn module.
#[derive(Module, Debug)]
pub struct ResMlp {
    input_projection: Linear,
    blocks: Vec<Block>,
    output_projection: Linear,
    #[module(skip)]
    input: String,
    #[module(skip)]
    output: String,
}

impl Model for ResMlp {
    fn forward(&self, batch: &Batch) -> Result<Output> {
        let mut x = self
            .input_projection
            .forward(batch.float_flat(&self.input)?);
        for block in &self.blocks {
            x = x.clone() + block.outer.forward(gelu(block.inner.forward(x)));
        }
        let y = self.output_projection.forward(x);
        Ok(Output::output().with_float(self.output.clone(), y))
    }
}

impl ModelSpec for ResMlpSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn DynModel>, BuildError> {
        for (arg, value) in [("width", self.width), ("outputs", self.outputs)] {
            if value == 0 {
                return Err(BuildError::at(arg, "must be at least 1"));
            }
        }
        let data = ctx.data()?;
        let input = data.require("input", &self.input)?;
        let device = ctx.train_device();
        let linear = |i, o| -> Linear { LinearConfig::new(i, o).init(&device).into() };
        Ok(boxed(ResMlp {
            input_projection: linear(input.sample_len(), self.width),
            blocks: (0..self.blocks)
                .map(|_| Block {
                    inner: linear(self.width, self.width),
                    outer: linear(self.width, self.width),
                })
                .collect(),
            output_projection: linear(self.width, self.outputs),
            input: self.input.clone(),
            output: self.output.clone(),
        }))
    }
}
