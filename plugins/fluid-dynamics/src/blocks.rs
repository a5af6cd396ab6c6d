//! The decoder's causal transformer blocks: Burn's pre-norm `TransformerEncoderLayer`, computed
//! as its forward computes it with a causal mask, but with `stoker::native`'s drop-in layer
//! norms, attention and linear layers. Built from Burn's `TransformerEncoder` (same
//! initialization) and with the same parameter paths (`blocks.layers.0.mha.query.weight`), so
//! checkpoints are those the Burn encoder writes.

use stoker::burn::nn::Dropout;
use stoker::burn::nn::activation::Activation;
use stoker::burn::nn::transformer::{PositionWiseFeedForward, TransformerEncoder};
use stoker::native::nn::{CausalSelfAttention, LayerNorm, Linear};
use stoker::prelude::*;

/// The epsilon of the blocks' layer norms: `TransformerEncoderConfig`'s default.
const LAYER_NORM_EPSILON: f64 = 1e-5;

/// The blocks, in order.
#[derive(Module, Debug)]
pub struct CausalBlocks {
    layers: Vec<CausalBlock>,
}

/// One pre-norm block: x + attention(norm_2(x)), then x + feed_forward(norm_1(x)).
#[derive(Module, Debug)]
pub struct CausalBlock {
    mha: CausalSelfAttention,
    pwff: FeedForward,
    norm_1: LayerNorm,
    norm_2: LayerNorm,
    dropout: Dropout,
}

/// The position-wise feed-forward network.
#[derive(Module, Debug)]
pub struct FeedForward {
    linear_inner: Linear,
    linear_outer: Linear,
    dropout: Dropout,
    #[module(skip)]
    activation: Activation,
}

impl From<TransformerEncoder> for CausalBlocks {
    fn from(encoder: TransformerEncoder) -> Self {
        let layers = encoder
            .layers
            .into_iter()
            .map(|layer| {
                assert!(layer.norm_first, "the decoder's blocks are pre-norm");
                let norm = |inner| LayerNorm {
                    inner,
                    epsilon: LAYER_NORM_EPSILON,
                };
                CausalBlock {
                    mha: layer.mha.into(),
                    pwff: layer.pwff.into(),
                    norm_1: norm(layer.norm_1),
                    norm_2: norm(layer.norm_2),
                    dropout: layer.dropout,
                }
            })
            .collect();
        CausalBlocks { layers }
    }
}

impl From<PositionWiseFeedForward> for FeedForward {
    fn from(ff: PositionWiseFeedForward) -> Self {
        FeedForward {
            linear_inner: ff.linear_inner.into(),
            linear_outer: ff.linear_outer.into(),
            dropout: ff.dropout,
            activation: ff.activation,
        }
    }
}

impl CausalBlocks {
    /// Every block on `x` [batch, time, d_model], each step seeing only itself and earlier ones.
    /// With `trainer.args.gradient_checkpointing`, each block is checkpointed: its activations
    /// are recomputed in the backward pass instead of kept.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.layers.iter().fold(x, |x, layer| {
            stoker::native::checkpoint::checkpoint(layer, x, CausalBlock::forward)
        })
    }
}

impl CausalBlock {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let attended = self.mha.forward(self.norm_2.forward(x.clone()));
        let x = x + self.dropout.forward(attended);
        let ff = &self.pwff;
        let inner = ff
            .activation
            .forward(ff.linear_inner.forward(self.norm_1.forward(x.clone())));
        let fed = ff.linear_outer.forward(ff.dropout.forward(inner));
        x + self.dropout.forward(fed)
    }
}
