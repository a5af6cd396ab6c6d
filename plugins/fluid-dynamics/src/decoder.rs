//! `FluidDecoder`: a causal transformer decoder over the time steps of a field.
//!
//! Each time step's field (`points` values) is one token: a linear embedding plus a learned
//! position embedding, `n_layers` pre-norm self-attention blocks with a causal mask (a step sees
//! only itself and earlier steps), and a linear head back to the field. Training is teacher
//! forced: from steps 0..T-1 it predicts steps 1..T in one pass. Evaluation also rolls out
//! autoregressively from the initial state alone, feeding each prediction back in, which is how
//! the model would be used to simulate.

use serde::{Deserialize, Serialize};
use stoker::burn::module::Param;
use stoker::burn::nn::transformer::TransformerEncoderConfig;
use stoker::burn::tensor::Distribution;
use stoker::native::nn::{Linear, LinearConfig};
use stoker::prelude::*;

use crate::blocks::CausalBlocks;

fn default_d_model() -> usize {
    64
}
fn default_heads() -> usize {
    4
}
fn default_layers() -> usize {
    3
}
fn default_max_len() -> usize {
    64
}
fn yes() -> bool {
    true
}
fn default_rollout() -> String {
    "rollout".into()
}

/// A causal transformer decoder for time series of fields [batch, time, points]: predicts the next step at every step (teacher forced) in training, and in evaluation also rolls out autoregressively from the first step (output `rollout`).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(model, name = "FluidDecoder")]
pub struct FluidDecoderSpec {
    /// Width of the tokens.
    #[serde(default = "default_d_model")]
    pub d_model: usize,
    /// Attention heads (must divide d_model).
    #[serde(default = "default_heads")]
    pub n_heads: usize,
    /// Decoder blocks.
    #[serde(default = "default_layers")]
    pub n_layers: usize,
    /// Width of the feed-forward layers (default 4 x d_model).
    #[serde(default)]
    pub d_ff: Option<usize>,
    /// Dropout in the blocks.
    #[serde(default)]
    pub dropout: f64,
    /// The longest sequence (time steps) the position embedding covers.
    #[serde(default = "default_max_len")]
    pub max_len: usize,
    /// Predict the change from the current step rather than the next step itself.
    #[serde(default = "yes")]
    pub predict_delta: bool,
    /// The batch tensor of input steps [batch, time, points].
    #[serde(default = "stoker::names::input")]
    pub input: String,
    /// The teacher-forced predictions' name.
    #[serde(default = "stoker::names::prediction")]
    pub output: String,
    /// The evaluation rollout's name.
    #[serde(default = "default_rollout")]
    pub rollout: String,
}

/// The decoder.
#[derive(Module, Debug)]
pub struct FluidDecoder {
    embed: Linear,
    position: Param<Tensor<2>>,
    blocks: CausalBlocks,
    head: Linear,
    #[module(skip)]
    predict_delta: bool,
    #[module(skip)]
    input: String,
    #[module(skip)]
    output: String,
    #[module(skip)]
    rollout: String,
}

impl FluidDecoder {
    /// The next-step prediction at every position of `steps` [batch, k, points].
    pub fn next_steps(&self, steps: Tensor<3>) -> Tensor<3> {
        let k = steps.dims()[1];
        let position = self.position.val().narrow(0, 0, k).unsqueeze_dim::<3>(0);
        let tokens = self.embed.forward(steps.clone()) + position;
        let out = self.head.forward(self.blocks.forward(tokens));
        if self.predict_delta { steps + out } else { out }
    }

    fn input(&self, batch: &Batch) -> Result<Tensor<3>> {
        let x = batch.float::<3>(&self.input)?;
        let max = self.position.val().dims()[0];
        let steps = x.dims()[1];
        if steps > max {
            return Err(StokerError::msg(format!(
                "FluidDecoder: {steps} time steps exceed max_len {max}"
            )));
        }
        Ok(x)
    }

    /// Rolls out `steps` steps from `initial` [batch, 1, points]: [batch, steps, points].
    pub fn roll_out(&self, initial: Tensor<3>, steps: usize) -> Tensor<3> {
        let mut sequence = initial;
        let mut predicted = Vec::with_capacity(steps);
        for _ in 0..steps {
            let k = sequence.dims()[1];
            let next = self.next_steps(sequence.clone()).narrow(1, k - 1, 1);
            predicted.push(next.clone());
            sequence = Tensor::cat(vec![sequence, next], 1);
        }
        Tensor::cat(predicted, 1)
    }
}

impl Model for FluidDecoder {
    fn forward(&self, batch: &Batch) -> Result<Output> {
        let x = self.input(batch)?;
        Ok(Output::output().with_float(self.output.clone(), self.next_steps(x)))
    }

    fn forward_eval(&self, batch: &Batch) -> Result<Output> {
        let x = self.input(batch)?;
        let steps = x.dims()[1];
        let rollout = self.roll_out(x.clone().narrow(1, 0, 1), steps);
        Ok(Output::output()
            .with_float(self.output.clone(), self.next_steps(x))
            .with_float(self.rollout.clone(), rollout))
    }
}

impl ModelSpec for FluidDecoderSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn DynModel>, BuildError> {
        for (name, value) in [
            ("d_model", self.d_model),
            ("n_heads", self.n_heads),
            ("n_layers", self.n_layers),
            ("max_len", self.max_len),
        ] {
            if value == 0 {
                return Err(BuildError::at(name, "must be at least 1"));
            }
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(BuildError::at(
                "n_heads",
                format!(
                    "{} heads do not divide d_model {}",
                    self.n_heads, self.d_model
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(BuildError::at("dropout", "must be a probability in [0, 1)"));
        }
        let data = ctx.data()?;
        let info = data.require("input", &self.input)?;
        let [steps, points] = info.sample_shape[..] else {
            return Err(BuildError::at(
                "input",
                format!(
                    "each sample of `{}` has shape {:?}; FluidDecoder needs [time, points]",
                    self.input, info.sample_shape
                ),
            ));
        };
        if steps > self.max_len {
            return Err(BuildError::at(
                "max_len",
                format!(
                    "{} is shorter than the data's {steps} time steps",
                    self.max_len
                ),
            ));
        }
        let device = ctx.train_device();
        let d_ff = self.d_ff.unwrap_or(4 * self.d_model);
        Ok(boxed(FluidDecoder {
            embed: LinearConfig::new(points, self.d_model).init(&device).into(),
            position: Param::from_tensor(Tensor::random(
                [self.max_len, self.d_model],
                Distribution::Normal(0.0, 0.02),
                &device,
            )),
            blocks: TransformerEncoderConfig::new(self.d_model, d_ff, self.n_heads, self.n_layers)
                .with_dropout(self.dropout)
                .with_norm_first(true)
                .init(&device)
                .into(),
            head: LinearConfig::new(self.d_model, points).init(&device).into(),
            predict_delta: self.predict_delta,
            input: self.input.clone(),
            output: self.output.clone(),
            rollout: self.rollout.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use stoker::burn::nn::transformer::TransformerEncoder;

    /// A small decoder, and Burn's encoder its blocks were made from.
    fn decoder_and_encoder(device: &Device) -> (FluidDecoder, TransformerEncoder) {
        let encoder = TransformerEncoderConfig::new(16, 32, 2, 2)
            .with_dropout(0.0)
            .with_norm_first(true)
            .init(device);
        let decoder = FluidDecoder {
            embed: LinearConfig::new(5, 16).init(device).into(),
            position: Param::from_tensor(Tensor::random(
                [8, 16],
                Distribution::Normal(0.0, 0.02),
                device,
            )),
            blocks: encoder.clone().into(),
            head: LinearConfig::new(16, 5).init(device).into(),
            predict_delta: true,
            input: "x".into(),
            output: "pred".into(),
            rollout: "rollout".into(),
        };
        (decoder, encoder)
    }

    fn decoder(device: &Device) -> FluidDecoder {
        decoder_and_encoder(device).0
    }

    /// `next_steps` through Burn's `TransformerEncoder` with a causal mask (the reference).
    fn next_steps_burn(
        model: &FluidDecoder,
        encoder: &TransformerEncoder,
        steps: Tensor<3>,
    ) -> Tensor<3> {
        use stoker::burn::nn::attention::generate_autoregressive_mask;
        use stoker::burn::nn::transformer::TransformerEncoderInput;
        let [b, k, _] = steps.dims();
        let position = model.position.val().narrow(0, 0, k).unsqueeze_dim::<3>(0);
        let tokens = model.embed.inner.forward(steps.clone()) + position;
        let mask = generate_autoregressive_mask(b, k, &steps.device());
        let hidden = encoder.forward(TransformerEncoderInput::new(tokens).mask_attn(mask));
        let out = model.head.inner.forward(hidden);
        if model.predict_delta {
            steps + out
        } else {
            out
        }
    }

    fn values(t: Tensor<3>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn a_step_never_sees_later_steps() {
        let device = Device::flex();
        let model = decoder(&device);
        let x = Tensor::<3>::random([2, 6, 5], Distribution::Normal(0.0, 1.0), &device);
        // Change the last three steps: predictions at the first three must not move.
        let changed = Tensor::cat(
            vec![
                x.clone().narrow(1, 0, 3),
                Tensor::random([2, 3, 5], Distribution::Normal(0.0, 1.0), &device),
            ],
            1,
        );
        let a = values(model.next_steps(x).narrow(1, 0, 3));
        let b = values(model.next_steps(changed.clone()).narrow(1, 0, 3));
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-5, "{p} vs {q}");
        }
        let c = values(model.next_steps(changed).narrow(1, 3, 3));
        assert!(c.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn the_rollout_feeds_each_prediction_back() {
        let device = Device::flex();
        let model = decoder(&device);
        let u0 = Tensor::<3>::random([2, 1, 5], Distribution::Normal(0.0, 1.0), &device);
        let rollout = model.roll_out(u0.clone(), 4);
        assert_eq!(rollout.dims(), [2, 4, 5]);
        // Step 3 of the rollout is the next-step prediction from u0 and the first two predictions.
        let sequence = Tensor::cat(vec![u0, rollout.clone().narrow(1, 0, 2)], 1);
        let expected = values(model.next_steps(sequence).narrow(1, 2, 1));
        let got = values(rollout.narrow(1, 2, 1));
        for (p, q) in got.iter().zip(&expected) {
            assert!((p - q).abs() < 1e-5, "{p} vs {q}");
        }
    }

    #[test]
    #[allow(deprecated)] // Device::libtorch: burn-tch is deprecated upstream but is stoker's backend
    fn the_blocks_compute_burns_transformer_encoder() {
        for device in [Device::flex().autodiff(), Device::libtorch().autodiff()] {
            let (model, encoder) = decoder_and_encoder(&device);
            let x = Tensor::<3>::random([3, 7, 5], Distribution::Normal(0.0, 1.0), &device);
            let ours = values(model.next_steps(x.clone()));
            let burn = values(next_steps_burn(&model, &encoder, x));
            for (p, q) in ours.iter().zip(&burn) {
                assert!((p - q).abs() < 1e-5, "{device:?}: {p} vs {q}");
            }
        }
    }
}
