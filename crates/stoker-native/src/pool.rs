//! Max pooling over non-overlapping windows, without LibTorch's indexed pooling kernel.
//!
//! In training Burn pools with `max_pool1d_with_indices` / `max_pool2d_with_indices` and
//! differentiates through the indices, as PyTorch does. LibTorch's CPU kernel for the indexed
//! form is slow on small windows: 345 µs on [32, 16, 257] pooled by 2, where the maximum of
//! the two strided halves takes 30 µs (2 threads, torch 2.11; docs/performance.md). When the
//! windows do not overlap (stride = kernel, no padding or dilation), the forward here is that
//! element-wise maximum over the window's strided views, and the backward finds each window's
//! maximum again, by the rule LibTorch's kernel uses (the first largest value, or the last NaN),
//! and routes the gradient there.

// burn-tch marks its types deprecated in favour of CubeCL backends; LibTorch is stoker's backend.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::libtorch::TchTensor;
use burn::backend::{GradientCheckpointingStrategy, LibTorch};
use burn::nn::pool::{MaxPool1d, MaxPool2d};
use burn::nn::{PaddingConfig1d, PaddingConfig2d};
use burn::tensor::Tensor;

use super::dispatch::{AutodiffTorch, from_tracked, into_tracked};

/// `pool.forward(x)` for `x` of shape [batch, channels, length]. Under autodiff on LibTorch,
/// with windows that do not overlap, it runs without LibTorch's indexed pooling.
pub fn max_pool1d(pool: &MaxPool1d, x: Tensor<3>) -> Tensor<3> {
    let plain = pool.stride == pool.kernel_size
        && pool.dilation == 1
        && !pool.ceil_mode
        && matches!(
            pool.padding,
            PaddingConfig1d::Valid | PaddingConfig1d::Explicit(0, 0)
        );
    if !plain {
        return pool.forward(x);
    }
    windowed(x.clone(), vec![pool.kernel_size as i64]).unwrap_or_else(|| pool.forward(x))
}

/// `pool.forward(x)` for `x` of shape [batch, channels, height, width]. Under autodiff on
/// LibTorch, with windows that do not overlap, it runs without LibTorch's indexed pooling.
pub fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let plain = pool.stride == pool.kernel_size
        && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && matches!(
            pool.padding,
            PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)
        );
    if !plain {
        return pool.forward(x);
    }
    let kernel = pool.kernel_size.map(|k| k as i64).to_vec();
    windowed(x.clone(), kernel).unwrap_or_else(|| pool.forward(x))
}

/// Pools `x` by non-overlapping windows of `kernel` (one size per trailing axis) under
/// autodiff on LibTorch, or returns `None` having run nothing.
fn windowed<const D: usize>(x: Tensor<D>, kernel: Vec<i64>) -> Option<Tensor<D>> {
    let dims = x.dims();
    let spatial = &dims[D - kernel.len()..];
    if spatial
        .iter()
        .zip(&kernel)
        .any(|(&size, &k)| (size as i64) < k)
    {
        // No whole window: Burn's forward raises LibTorch's error about the output size.
        return None;
    }
    let (x, strategy) = into_tracked(x.into_dispatch()).ok()?;
    #[cfg(test)]
    super::count_native_run();
    let y = match strategy {
        GradientCheckpointingStrategy::Disabled => tracked::<NoCheckpointing>(x, kernel),
        GradientCheckpointingStrategy::Balanced => tracked::<BalancedCheckpointing>(x, kernel),
    };
    Some(from_tracked(y, strategy))
}

fn tracked<C: CheckpointStrategy>(x: AutodiffTorch, kernel: Vec<i64>) -> AutodiffTorch {
    let y = TchTensor::new(window_max(&x.primitive().tensor, &kernel));
    match PoolBackward
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            // The saved input shares its reference count with Burn's handle, so Burn never
            // overwrites it in place before the backward step reads it.
            let state = PoolState {
                x: x.into_primitive(),
                kernel,
            };
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

/// Every offset inside a window, the last axis fastest (the order LibTorch's kernel scans).
fn offsets(kernel: &[i64]) -> Vec<Vec<i64>> {
    kernel.iter().fold(vec![vec![]], |prefixes, &k| {
        prefixes
            .iter()
            .flat_map(|prefix| {
                (0..k).map(move |i| {
                    let mut offset = prefix.clone();
                    offset.push(i);
                    offset
                })
            })
            .collect()
    })
}

/// The elements at `offset` inside every whole window of `x`: a strided view shaped like the
/// pooled output.
fn at_offset(x: &tch::Tensor, kernel: &[i64], offset: &[i64]) -> tch::Tensor {
    let rank = x.dim() as i64;
    let first = rank - kernel.len() as i64;
    let size = x.size();
    kernel
        .iter()
        .zip(offset)
        .enumerate()
        .fold(x.shallow_clone(), |view, (i, (&k, &o))| {
            let axis = first + i as i64;
            let whole = size[axis as usize] / k * k;
            view.slice(axis, o, whole, k)
        })
}

/// The maximum of each window (NaN where a window holds one, as LibTorch's kernel gives).
fn window_max(x: &tch::Tensor, kernel: &[i64]) -> tch::Tensor {
    let offsets = offsets(kernel);
    let first = at_offset(x, kernel, &offsets[0]);
    if offsets.len() == 1 {
        // A window of one element: a copy, never a view of the input.
        return first.copy();
    }
    offsets[1..].iter().fold(first, |best, offset| {
        best.maximum(&at_offset(x, kernel, offset))
    })
}

/// What the backward step reads: the pooled input and the window.
#[derive(Debug, Clone)]
struct PoolState {
    x: TchTensor,
    kernel: Vec<i64>,
}

/// The backward step: each window's gradient goes to the element LibTorch's kernel picks,
/// the first largest value (`value > best`), or the last NaN.
#[derive(Debug)]
struct PoolBackward;

impl Backward<LibTorch, 1> for PoolBackward {
    type State = PoolState;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let PoolState { x, kernel } = ops.state;
        unary::<LibTorch, _>(ops.parents, ops.node, grads, |grad| {
            TchTensor::new(route(&x.tensor, &grad.tensor, &kernel))
        });
    }
}

/// The input's gradient: `grad` at each window's chosen element, zero elsewhere (also in a
/// remainder no window covers).
fn route(x: &tch::Tensor, grad: &tch::Tensor, kernel: &[i64]) -> tch::Tensor {
    let offsets = offsets(kernel);
    // Scanning as the kernel does: where each offset takes over from the ones before it.
    let mut best = at_offset(x, kernel, &offsets[0]);
    let mut takes = Vec::with_capacity(offsets.len() - 1);
    for (index, offset) in offsets.iter().enumerate().skip(1) {
        let value = at_offset(x, kernel, offset);
        let taken = value.gt_tensor(&best).logical_or(&value.isnan());
        if index + 1 < offsets.len() {
            best = value.where_self(&taken, &best);
        }
        takes.push(taken);
    }
    // The last offset that took over is the window's pick: from the last offset back, each
    // takes the gradient not yet routed where it took over.
    let input_grad = x.zeros_like();
    let mut left = grad.shallow_clone();
    for (offset, taken) in offsets[1..].iter().zip(&takes).rev() {
        // A product by the mask, not `where`, whose CPU kernel is not vectorized. Exact for
        // finite gradients; an infinite one makes its whole window NaN (inf * 0), still
        // non-finite for a gradient scaler's check.
        let routed = &left * taken;
        left = &left - &routed;
        at_offset(&input_grad, kernel, offset).copy_(&routed);
    }
    at_offset(&input_grad, kernel, &offsets[0]).copy_(&left);
    input_grad
}
