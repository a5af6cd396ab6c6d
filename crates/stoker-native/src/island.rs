//! LibTorch islands: one differentiable Burn operation whose forward and backward LibTorch runs.
//!
//! Burn's autodiff differentiates the LibTorch backend op by op, and for composite operations
//! (batch and layer normalization, attention) it falls back on generic compositions of small
//! ops. An island instead hands the whole computation to LibTorch: the forward runs on LibTorch
//! tensors with LibTorch's own autograd recording it, and Burn's backward step asks LibTorch's
//! autograd for the inputs' gradients (`torch.autograd.grad` with the output's gradient). The
//! kernels are then the ones PyTorch runs (`native_layer_norm_backward`, the fused attention
//! backward), and Burn's graph has one node instead of a dozen.
//!
//! An island only applies to tensors on the LibTorch backend; [`island`] returns `None` for any
//! other backend and the caller runs its Burn composition instead.

// burn-tch marks its types deprecated in favour of CubeCL backends; LibTorch is stoker's backend.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::libtorch::TchTensor;
use burn::backend::{
    DispatchAutodiffContext, DispatchTensor, GradientCheckpointingStrategy, LibTorch,
};
use burn::tensor::Tensor;

use super::dispatch::{AutodiffTorch, from_plain, from_tracked, into_tracked, plain};
use super::ffi;

/// A float tensor of any rank that can enter an island.
pub trait IslandInput {
    /// The tensor's dispatch form (a shallow clone).
    fn dispatch(&self) -> DispatchTensor;
}

impl<const D: usize> IslandInput for Tensor<D> {
    fn dispatch(&self) -> DispatchTensor {
        self.clone().into_dispatch()
    }
}

/// An input once routed to LibTorch: tracked by Burn's autodiff, or a constant.
enum Routed {
    Autodiff(AutodiffTorch),
    Plain(TchTensor),
}

impl Routed {
    fn into_autodiff(self) -> AutodiffTorch {
        match self {
            Routed::Autodiff(tensor) => tensor,
            Routed::Plain(tensor) => AutodiffTorch::new(tensor),
        }
    }

    fn into_plain(self) -> TchTensor {
        match self {
            Routed::Autodiff(tensor) => tensor.into_primitive(),
            Routed::Plain(tensor) => tensor,
        }
    }
}

/// Runs `forward` on the LibTorch tensors of `inputs` as one differentiable operation.
///
/// `forward` returns the island's output first, then any auxiliary tensors (statistics a caller
/// needs, such as batch normalization's batch mean); only the first is differentiated, and the
/// auxiliary ones come back as detached copies. Returns `None`, having run nothing, when an input is not on
/// the LibTorch backend.
pub fn island<const N: usize, const D: usize>(
    inputs: [&dyn IslandInput; N],
    forward: impl FnOnce(&[tch::Tensor; N]) -> Vec<tch::Tensor>,
) -> Option<(Tensor<D>, Vec<tch::Tensor>)> {
    let mut context = DispatchAutodiffContext::Disabled;
    let mut routed = Vec::with_capacity(N);
    for input in inputs {
        let tensor = input.dispatch();
        context = context.merge(tensor.autodiff);
        routed.push(match into_tracked(tensor) {
            Ok((tensor, _)) => Routed::Autodiff(tensor),
            Err(tensor) => Routed::Plain(plain(tensor)?),
        });
    }
    let routed: [Routed; N] = routed.try_into().ok()?;
    #[cfg(test)]
    super::count_native_run();
    Some(match context {
        DispatchAutodiffContext::Disabled => {
            let (output, aux) = untracked(routed.map(|input| input.into_plain().tensor), forward);
            (from_plain(output), aux)
        }
        DispatchAutodiffContext::Enabled(strategy) => {
            let (output, aux) = match strategy {
                GradientCheckpointingStrategy::Disabled => {
                    tracked::<NoCheckpointing, N>(routed, forward)
                }
                GradientCheckpointingStrategy::Balanced => {
                    tracked::<BalancedCheckpointing, N>(routed, forward)
                }
            };
            (from_tracked(output, strategy), aux)
        }
    })
}

/// The island under Burn's autodiff: records LibTorch's graph when an input needs a gradient.
fn tracked<C: CheckpointStrategy, const N: usize>(
    inputs: [Routed; N],
    forward: impl FnOnce(&[tch::Tensor; N]) -> Vec<tch::Tensor>,
) -> (AutodiffTorch, Vec<tch::Tensor>) {
    let inputs = inputs.map(Routed::into_autodiff);
    let guards = inputs.each_ref().map(|input| input.node());
    let needs_grad = inputs.each_ref().map(|input| input.is_tracked());
    let primitives = inputs.map(|input| input.into_primitive());
    match IslandBackward::<N>
        .prepare::<C>(guards)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let leaves: [tch::Tensor; N] = std::array::from_fn(|i| {
                let leaf = primitives[i].tensor.detach();
                if needs_grad[i] {
                    leaf.set_requires_grad(true)
                } else {
                    leaf
                }
            });
            let mut outputs = tch::with_grad(|| forward(&leaves)).into_iter();
            let recorded = outputs.next().expect("an island returns its output");
            let output = TchTensor::new(unaliased(recorded.detach(), &leaves));
            // Every input and the output share their storage's reference count with Burn's
            // handles, so Burn never overwrites in place a tensor LibTorch's graph saved (the
            // convolution's input, the attention's output) before the backward step.
            let state = IslandState {
                leaves: leaves
                    .into_iter()
                    .zip(&primitives)
                    .map(|(leaf, primitive)| {
                        TchTensor::from_existing(leaf, primitive.storage.clone())
                    })
                    .collect(),
                output: TchTensor::from_existing(recorded, output.storage.clone()),
            };
            // Copies: an auxiliary output may be a tensor the graph saved (batch norm's mean).
            let aux = outputs.map(|tensor| tensor.detach().copy()).collect();
            (prep.finish(state, output), aux)
        }
        OpsKind::UnTracked(prep) => {
            let (output, aux) = untracked(primitives.map(|primitive| primitive.tensor), forward);
            (prep.finish(output), aux)
        }
    }
}

/// The island with nothing to differentiate: `forward` without LibTorch's graph. An output
/// that is an input or a view of one comes back copied, since Burn may write into it.
fn untracked<const N: usize>(
    inputs: [tch::Tensor; N],
    forward: impl FnOnce(&[tch::Tensor; N]) -> Vec<tch::Tensor>,
) -> (TchTensor, Vec<tch::Tensor>) {
    let mut outputs = tch::no_grad(|| forward(&inputs))
        .into_iter()
        .map(|tensor| unaliased(tensor, &inputs));
    let output = TchTensor::new(outputs.next().expect("an island returns its output"));
    (output, outputs.collect())
}

/// `tensor`, or a copy of it when it shares storage with one of `others` (an island whose
/// output is its input or a view of it, at any offset).
fn unaliased(tensor: tch::Tensor, others: &[tch::Tensor]) -> tch::Tensor {
    if others.iter().any(|other| ffi::is_alias_of(&tensor, other)) {
        tensor.copy()
    } else {
        tensor
    }
}

/// What an island's backward step needs: LibTorch's recorded output and its inputs (those
/// with a gradient require one in LibTorch's graph).
#[derive(Clone)]
struct IslandState {
    leaves: Vec<TchTensor>,
    output: TchTensor,
}

impl std::fmt::Debug for IslandState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IslandState")
            .field("leaves", &self.leaves.len())
            .field("output", &self.output.tensor.size())
            .finish()
    }
}

/// The backward step of an island with `N` inputs.
#[derive(Debug)]
struct IslandBackward<const N: usize>;

impl<const N: usize> Backward<LibTorch, N> for IslandBackward<N> {
    type State = IslandState;

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        let IslandState { leaves, output } = ops.state;
        let (parents, leaves): (Vec<_>, Vec<_>) = ops
            .parents
            .into_iter()
            .zip(leaves)
            .filter_map(|(parent, leaf)| Some((parent?, leaf.tensor)))
            .unzip();
        if leaves.is_empty() {
            return;
        }
        let input_grads = ffi::grad(&[&output.tensor], &[&grad.tensor], &leaves);
        // Burn adds gradients in place, so each registered gradient must own its memory:
        // `ffi::grad` copies one that shares storage with the output gradient (an island that
        // passes it through) or another gradient (x + x), and an input LibTorch did not reach
        // gets zeros (Burn expects every parent's gradient).
        for ((parent, leaf), input_grad) in parents.into_iter().zip(&leaves).zip(input_grads) {
            let input_grad = input_grad.unwrap_or_else(|| leaf.zeros_like());
            grads.register::<LibTorch>(parent.id, TchTensor::new(input_grad));
        }
    }
}
