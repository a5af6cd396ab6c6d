//! Convolutions whose gradients LibTorch's `convolution_backward` computes.
//!
//! Burn computes a convolution's gradients on LibTorch with two more convolutions (a
//! transposed one for the input, one of the input by the output gradient for the weight), plus
//! a sum for the bias. PyTorch calls `aten::convolution_backward`, which picks oneDNN or cuDNN
//! kernels for the whole step: on cnn1d's kernel-3 convolutions, 1103 against 1407 µs per step
//! (bench/reference/conv_backward.py, 2 threads). The forward is LibTorch's convolution, as
//! Burn's is. Wide kernels on the CPU keep Burn's backward, which is faster there
//! (`WIDE_KERNEL_TAPS`).

// burn-tch marks its types deprecated in favour of CubeCL backends; LibTorch is stoker's backend.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::libtorch::TchTensor;
use burn::backend::{GradientCheckpointingStrategy, LibTorch};
use burn::nn::conv::{Conv1d, Conv2d};
use burn::nn::{PaddingConfig1d, PaddingConfig2d};
use burn::tensor::Tensor;

use super::autocast::{ComputeType, cast, compute_type};
use super::dispatch::{AutodiffTorch, from_tracked, into_tracked};
use super::ffi::{self, ConvGeometry};
use super::island::island;

/// `conv.forward(x)` for `x` of shape [batch, channels_in, length]; under autodiff on LibTorch
/// its gradients come from LibTorch's `convolution_backward`.
pub fn conv1d(conv: &Conv1d, x: Tensor<3>) -> Tensor<3> {
    let length = x.dims()[2];
    let padding = match conv.padding {
        PaddingConfig1d::Valid => Some(0),
        PaddingConfig1d::Explicit(left, right) => (left == right).then_some(left),
        PaddingConfig1d::Same => symmetric_same(conv.kernel_size, conv.stride, length),
    };
    let geometry = padding.map(|padding| {
        ConvGeometry::new(&[conv.stride], &[padding], &[conv.dilation], conv.groups)
    });
    let bias = conv.bias.as_ref().map(|bias| bias.val());
    geometry
        .and_then(|geometry| convolution(x.clone(), conv.weight.val(), bias, geometry))
        .unwrap_or_else(|| conv.forward(x))
}

/// `conv.forward(x)` for `x` of shape [batch, channels_in, height, width]; under autodiff on
/// LibTorch its gradients come from LibTorch's `convolution_backward`.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [_, _, height, width] = x.dims();
    let padding = match conv.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => {
            (top == bottom && left == right).then_some([top, left])
        }
        PaddingConfig2d::Same => symmetric_same(conv.kernel_size[0], conv.stride[0], height)
            .zip(symmetric_same(conv.kernel_size[1], conv.stride[1], width))
            .map(|(rows, columns)| [rows, columns]),
    };
    let geometry = padding
        .map(|padding| ConvGeometry::new(&conv.stride, &padding, &conv.dilation, conv.groups));
    let bias = conv.bias.as_ref().map(|bias| bias.val());
    geometry
        .and_then(|geometry| convolution(x.clone(), conv.weight.val(), bias, geometry))
        .unwrap_or_else(|| conv.forward(x))
}

/// The padding on each side of one axis that Burn's `Same` gives, when both sides are equal
/// (Burn puts an odd extra element at the end, which LibTorch's convolution cannot express).
fn symmetric_same(kernel: usize, stride: usize, size: usize) -> Option<usize> {
    let size_out = size.div_ceil(stride);
    let total = if size_out > 0 {
        ((size_out - 1) * stride + kernel).saturating_sub(size)
    } else {
        0
    };
    (total % 2 == 0).then_some(total / 2)
}

/// Kernels with more taps than this keep Burn's backward on the CPU. Burn's weight gradient
/// is one convolution of the input by the output gradient, which oneDNN runs faster than its
/// backward-weights kernel when the kernel is wide. On [32, 1, L] inputs with 16 output
/// channels (2 threads, torch 2.11), weight gradient only, Burn's against LibTorch's:
/// kernel 64 stride 8 (L = 2048) 516 against 622 µs, kernel 64 stride 1 (L = 512) 550 against
/// 832, kernel 16 stride 4 (4 channels in) 406 against 412, kernel 3 (L = 2048) 5202 against 185.
const WIDE_KERNEL_TAPS: i64 = 32;

/// The convolution under autodiff on LibTorch, or `None` (nothing run) for any other tensors
/// and for wide kernels on the CPU. Under mixed precision, [`mixed`] (also outside autodiff).
fn convolution<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<D>,
    bias: Option<Tensor<1>>,
    geometry: ConvGeometry,
) -> Option<Tensor<D>> {
    if let Some(kind) = compute_type().map(ComputeType::kind) {
        return mixed(&x, &weight, bias.as_ref(), geometry, kind);
    }
    let (x, strategy) = into_tracked(x.into_dispatch()).ok()?;
    let (weight, _) = into_tracked(weight.into_dispatch()).ok()?;
    let taps: i64 = weight.primitive().tensor.size()[2..].iter().product();
    if taps > WIDE_KERNEL_TAPS && x.primitive().tensor.device() == tch::Device::Cpu {
        return None;
    }
    let bias = match bias {
        Some(bias) => Some(into_tracked(bias.into_dispatch()).ok()?.0),
        None => None,
    };
    #[cfg(test)]
    super::count_native_run();
    let output = match (bias, strategy) {
        (Some(bias), GradientCheckpointingStrategy::Disabled) => {
            tracked::<NoCheckpointing, 3>([x, weight, bias], geometry)
        }
        (Some(bias), GradientCheckpointingStrategy::Balanced) => {
            tracked::<BalancedCheckpointing, 3>([x, weight, bias], geometry)
        }
        (None, GradientCheckpointingStrategy::Disabled) => {
            tracked::<NoCheckpointing, 2>([x, weight], geometry)
        }
        (None, GradientCheckpointingStrategy::Balanced) => {
            tracked::<BalancedCheckpointing, 2>([x, weight], geometry)
        }
    };
    Some(from_tracked(output, strategy))
}

/// The convolution in `kind` (mixed precision) as an island: input, weight and bias cast to it,
/// LibTorch's convolution (and its backward, `convolution_backward`), the output back in the
/// input's type. `None` (nothing run) for tensors not on LibTorch.
fn mixed<const D: usize>(
    x: &Tensor<D>,
    weight: &Tensor<D>,
    bias: Option<&Tensor<1>>,
    geometry: ConvGeometry,
    kind: tch::Kind,
) -> Option<Tensor<D>> {
    let run = move |x: &tch::Tensor, w: &tch::Tensor, b: Option<&tch::Tensor>| {
        let bias = b.map(|b| cast(b, kind));
        convolve(&cast(x, kind), &cast(w, kind), bias.as_ref(), &geometry).to_kind(x.kind())
    };
    let output = match bias {
        Some(bias) => island([x, weight, bias], |[x, w, b]| vec![run(x, w, Some(b))]),
        None => island([x, weight], |[x, w]| vec![run(x, w, None)]),
    };
    output.map(|(y, _)| y)
}

/// LibTorch's (non-transposed) convolution of `x` by `weight` with `geometry`.
fn convolve(
    x: &tch::Tensor,
    weight: &tch::Tensor,
    bias: Option<&tch::Tensor>,
    geometry: &ConvGeometry,
) -> tch::Tensor {
    let zeros = vec![0; geometry.stride.len()];
    x.convolution(
        weight,
        bias,
        &geometry.stride,
        &geometry.padding,
        &geometry.dilation,
        false,
        &zeros,
        geometry.groups,
    )
}

/// Runs the convolution of `inputs` (input, weight and, with N = 3, bias) as one Burn
/// autodiff operation.
fn tracked<C: CheckpointStrategy, const N: usize>(
    inputs: [AutodiffTorch; N],
    geometry: ConvGeometry,
) -> AutodiffTorch {
    let nodes = inputs.each_ref().map(|input| input.node());
    let primitives = inputs.map(|input| input.into_primitive());
    let output = {
        let [x, weight] = [&primitives[0].tensor, &primitives[1].tensor];
        let bias = primitives.get(2).map(|bias| &bias.tensor);
        TchTensor::new(convolve(x, weight, bias, &geometry))
    };
    match ConvBackward::<N>
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            // The saved input and weight share their reference counts with Burn's handles, so
            // Burn never overwrites them in place before the backward step reads them.
            let [x, weight] = [primitives[0].clone(), primitives[1].clone()];
            let state = ConvState {
                x,
                weight,
                geometry,
            };
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// What the backward step reads: the convolution's input, weight and geometry.
#[derive(Debug, Clone)]
struct ConvState {
    x: TchTensor,
    weight: TchTensor,
    geometry: ConvGeometry,
}

/// The backward step of a convolution with `N` inputs (2 without a bias, 3 with one).
#[derive(Debug)]
struct ConvBackward<const N: usize>;

impl<const N: usize> Backward<LibTorch, N> for ConvBackward<N> {
    type State = ConvState;

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        let ConvState {
            x,
            weight,
            geometry,
        } = ops.state;
        let wanted: [bool; 3] =
            std::array::from_fn(|i| ops.parents.get(i).is_some_and(Option::is_some));
        let bias_channels = (N == 3).then(|| weight.tensor.size()[0] as usize);
        let input_grads = ffi::convolution_backward(
            &grad.tensor,
            &x.tensor,
            &weight.tensor,
            &geometry,
            bias_channels,
            wanted,
        );
        for (parent, input_grad) in ops.parents.into_iter().zip(input_grads) {
            if let Some(parent) = parent {
                let input_grad =
                    input_grad.expect("convolution_backward gives every gradient asked for");
                grads.register::<LibTorch>(parent.id, TchTensor::new(input_grad));
            }
        }
    }
}
