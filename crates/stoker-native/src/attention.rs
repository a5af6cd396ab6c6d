//! Causal self-attention with LibTorch's fused scaled-dot-product attention.

use super::autocast::{ComputeType, cast, compute_type};
use super::island::island;
use super::linear::linear;
use burn::nn::attention::{MhaInput, MultiHeadAttention, generate_autoregressive_mask};
use burn::tensor::Tensor;

/// Causal self-attention of `mha` over `x` [batch, time, d_model]: what
/// `mha.forward(MhaInput::self_attn(x).mask_attn(generate_autoregressive_mask(..)))` computes.
///
/// On LibTorch, without attention dropout or quiet softmax and with a masking value of -1e4 or
/// below (Burn's default), the scores, the causal mask, the
/// softmax and the weighted sum run as one `scaled_dot_product_attention` (fused forward and
/// backward). Burn masks with -1e4 where LibTorch masks with -inf; the weights this gives a
/// masked score, exp(-1e4), are zero in every float type either way.
pub fn causal_self_attention(mha: &MultiHeadAttention, x: Tensor<3>) -> Tensor<3> {
    let [batch, time, d_model] = x.dims();
    let heads = mha.n_heads;
    let dropout_off =
        mha.dropout.prob == 0.0 || !mha.dropout.training.is_enabled() || !x.device().is_autodiff();
    if dropout_off && !mha.quiet_softmax && mha.min_float <= -1e4 && d_model % heads == 0 {
        let split = |t: Tensor<3>| {
            t.reshape([batch, time, heads, d_model / heads])
                .swap_dims(1, 2)
        };
        let query = split(linear(&mha.query, x.clone()));
        let key = split(linear(&mha.key, x.clone()));
        let value = split(linear(&mha.value, x.clone()));
        // Under mixed precision the attention runs in the compute type, as torch's autocast
        // runs scaled_dot_product_attention.
        let kind = compute_type().map(ComputeType::kind);
        let native = island([&query, &key, &value], |[q, k, v]| {
            let no_mask: Option<&tch::Tensor> = None;
            let query_kind = q.kind();
            let [q, k, v] =
                [q, k, v].map(|t| kind.map_or_else(|| t.shallow_clone(), |kind| cast(t, kind)));
            let context = tch::Tensor::scaled_dot_product_attention(
                &q, &k, &v, no_mask, 0.0, true, None, false,
            );
            vec![context.to_kind(query_kind)]
        });
        if let Some((context, _)) = native {
            let context: Tensor<4> = context;
            let context = context.swap_dims(1, 2).reshape([batch, time, d_model]);
            return linear(&mha.output, context);
        }
    }
    let mask = generate_autoregressive_mask(batch, time, &x.device());
    mha.forward(MhaInput::self_attn(x).mask_attn(mask)).context
}
