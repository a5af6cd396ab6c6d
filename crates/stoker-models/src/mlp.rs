//! `MLP`: a multi-layer perceptron on flattened inputs.

use serde::{Deserialize, Serialize};
use stoker::burn::nn::{Dropout, DropoutConfig};
use stoker::native::nn::{Linear, LinearConfig};
use stoker::prelude::*;

use crate::activation::Activation;

/// A multi-layer perceptron: Linear layers with an activation and dropout between them, on the flattened input tensor.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(model, name = "MLP")]
pub struct MlpSpec {
    /// Layer widths from input to output, e.g. [8, 64, 64, 1]; the first is the input's values per sample.
    pub sizes: Vec<usize>,
    /// Activation between layers: relu, gelu, tanh, sigmoid, silu, identity.
    #[serde(default)]
    pub activation: Activation,
    /// Dropout probability after each hidden activation (0 = none).
    #[serde(default)]
    pub dropout: f64,
    /// The batch tensor the model reads.
    #[serde(default = "stoker::names::input")]
    pub input: String,
    /// The name of the output tensor.
    #[serde(default = "stoker::names::prediction")]
    pub output: String,
}

/// The MLP module.
#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
    dropout: Dropout,
    #[module(skip)]
    activation: Activation,
    #[module(skip)]
    input: String,
    #[module(skip)]
    output: String,
}

impl Model for Mlp {
    fn forward(&self, batch: &Batch) -> Result<Output> {
        let mut x = batch.float_flat(&self.input)?;
        let expected = self.layers[0].inner.weight.dims()[0];
        if x.dims()[1] != expected {
            return Err(StokerError::msg(format!(
                "MLP: each sample of `{}` has {} values, but the model was built for {expected} (a split with another sample shape?)",
                self.input,
                x.dims()[1]
            )));
        }
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = self.dropout.forward(self.activation.apply(x));
            }
        }
        Ok(Output::output().with_float(self.output.clone(), x))
    }
}

impl ModelSpec for MlpSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn DynModel>, BuildError> {
        if self.sizes.len() < 2 {
            return Err(
                BuildError::at("sizes", "needs at least an input and an output width")
                    .hint("e.g. `sizes: [8, 64, 1]`"),
            );
        }
        if let Some(i) = self.sizes.iter().position(|&s| s == 0) {
            return Err(BuildError::at(
                format!("sizes[{i}]"),
                "a layer width must be at least 1",
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(BuildError::at(
                "dropout",
                format!("{} is not a probability in [0, 1)", self.dropout),
            ));
        }
        let data = ctx.data()?;
        let input = data.require("input", &self.input)?;
        if input.kind != ElementKind::Float {
            return Err(BuildError::at(
                "input",
                format!(
                    "tensor `{}` holds integers; the MLP needs floats",
                    self.input
                ),
            ));
        }
        if input.sample_len() != self.sizes[0] {
            return Err(BuildError::at(
                "sizes[0]",
                format!(
                    "sizes[0] is {} but each sample of `{}` has {} values (shape {:?})",
                    self.sizes[0],
                    self.input,
                    input.sample_len(),
                    input.sample_shape
                ),
            )
            .hint(format!("set sizes[0] to {}", input.sample_len())));
        }
        let device = ctx.train_device();
        let layers = self
            .sizes
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(&device).into())
            .collect();
        Ok(boxed(Mlp {
            layers,
            dropout: DropoutConfig::new(self.dropout).init(),
            activation: self.activation,
            input: self.input.clone(),
            output: self.output.clone(),
        }))
    }
}
