//! Batch and layer normalization with LibTorch's fused kernels.

use super::dispatch::constant;
use super::island::island;
use burn::nn::{BatchNorm, LayerNorm};
use burn::tensor::Tensor;

/// `norm.forward(x)` for a [batch, channels, ...] input.
///
/// In training (an autodiff device and a trainable layer) on LibTorch, the normalization by
/// the batch statistics runs as LibTorch's `native_batch_norm`, and the running statistics are
/// updated exactly as Burn's `BatchNorm` does: with the momentum, from the batch mean and the
/// biased batch variance. Otherwise Burn's forward runs.
pub fn batch_norm<const D: usize>(norm: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    if !(x.device().is_autodiff() && norm.training.is_enabled()) {
        return norm.forward(x);
    }
    let (gamma, beta) = (norm.gamma.val(), norm.beta.val());
    let (momentum, epsilon) = (norm.momentum, norm.epsilon);
    let synced = crate::collective::sync_batch_norm_active();
    let native = island([&x, &gamma, &beta], |[x, gamma, beta]| {
        if synced {
            return synchronized(x, gamma, beta, epsilon);
        }
        let none: Option<&tch::Tensor> = None;
        let (y, mean, inv_std) =
            x.native_batch_norm(Some(gamma), Some(beta), none, none, true, momentum, epsilon);
        // native_batch_norm saves 1 / sqrt(var + eps) of the biased variance (in f32 for half
        // inputs on CUDA): back to the variance, never below zero, in the input's type.
        let variance = (inv_std.square().reciprocal() - epsilon).clamp_min(0.0);
        vec![y, mean.to_kind(x.kind()), variance.to_kind(x.kind())]
    });
    let Some((y, stats)) = native else {
        return norm.forward(x);
    };
    let [mean, variance]: [tch::Tensor; 2] = stats.try_into().expect("mean and variance");
    let device = y.device();
    let running = |state: Tensor<1>, batch: tch::Tensor| {
        state
            .to_device(&device)
            .mul_scalar(1.0 - momentum)
            .add(constant::<1>(batch).mul_scalar(momentum))
            .detach()
    };
    norm.running_mean
        .update(running(norm.running_mean.value_sync(), mean));
    norm.running_var
        .update(running(norm.running_var.value_sync(), variance));
    y
}

/// Batch normalization by the statistics of every process's batch (`sync_batchnorm`): each
/// process's per-channel sums of x and x^2 and its count, summed over the processes (a
/// differentiable all-reduce, so the backward sums the statistics' gradients over the processes
/// too, as torch's SyncBatchNorm), give the mean and the biased variance. The sums are taken in
/// float64, so that E[x^2] - E[x]^2 keeps the variance of inputs whose mean is far larger than
/// their spread. Returns the output, the mean and the variance.
fn synchronized(
    x: &tch::Tensor,
    gamma: &tch::Tensor,
    beta: &tch::Tensor,
    epsilon: f64,
) -> Vec<tch::Tensor> {
    let size = x.size();
    let channels = size[1];
    let axes: Vec<i64> = (0..size.len() as i64).filter(|&d| d != 1).collect();
    let count = x.numel() as i64 / channels.max(1);
    let kind = x.kind();
    let wide = tch::Kind::Double;
    let x64 = x.to_kind(wide);
    let local = tch::Tensor::cat(
        &[
            x64.sum_dim_intlist(axes.as_slice(), false, wide),
            x64.square().sum_dim_intlist(axes.as_slice(), false, wide),
            tch::Tensor::from_slice(&[count as f64]).to_device(x.device()),
        ],
        0,
    );
    let total = crate::collective::sync_sum(&local).unwrap_or_else(|e| panic!("{e}"));
    let n = total.narrow(0, 2 * channels, 1);
    let mean = total.narrow(0, 0, channels) / &n;
    let variance = (total.narrow(0, channels, channels) / &n - mean.square()).clamp_min(0.0);
    let (mean, variance) = (mean.to_kind(kind), variance.to_kind(kind));
    let shape: Vec<i64> = (0..size.len())
        .map(|d| if d == 1 { channels } else { 1 })
        .collect();
    let scale = (&variance + epsilon).rsqrt() * gamma;
    let y = (x - mean.view(shape.as_slice())) * scale.view(shape.as_slice())
        + beta.view(shape.as_slice());
    vec![y, mean.detach(), variance.detach()]
}

/// `norm.forward(x)` over the last axis, as LibTorch's `layer_norm` on LibTorch.
///
/// Burn's `LayerNorm` keeps its epsilon private, so the caller passes the one it configured
/// (`LayerNormConfig`'s default is 1e-5).
pub fn layer_norm<const D: usize>(norm: &LayerNorm, x: Tensor<D>, epsilon: f64) -> Tensor<D> {
    let gamma = norm.gamma.val();
    let [width] = gamma.dims();
    let native = match norm.beta.as_ref().map(|beta| beta.val()) {
        Some(beta) => island([&x, &gamma, &beta], |[x, gamma, beta]| {
            vec![x.layer_norm([width as i64], Some(gamma), Some(beta), epsilon, true)]
        }),
        None => island([&x, &gamma], |[x, gamma]| {
            let no_bias: Option<&tch::Tensor> = None;
            vec![x.layer_norm([width as i64], Some(gamma), no_bias, epsilon, true)]
        }),
    };
    match native {
        Some((y, _)) => y,
        None => norm.forward(x),
    }
}
