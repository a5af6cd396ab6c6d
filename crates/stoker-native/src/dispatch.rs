//! Between Burn's dispatch tensors and the LibTorch tensors the native ops work on.
//!
//! Outside autodiff a LibTorch tensor is `LibTorch(Float(TchTensor))`; under autodiff it is
//! `Autodiff(LibTorch(Autodiff(tracked tensor)))` with the context naming the checkpointing
//! strategy. Every native op reads and writes these forms through here.

// burn-tch marks its types deprecated in favour of CubeCL backends; LibTorch is stoker's backend.
#![allow(deprecated)]

use burn::backend::libtorch::TchTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, BackendTensor, DispatchAutodiffContext, DispatchTensor, DispatchTensorKind,
    GradientCheckpointingStrategy, LibTorch,
};
use burn::tensor::Tensor;

/// A float tensor of Burn's autodiff backend over LibTorch.
pub(crate) type AutodiffTorch = FloatTensor<Autodiff<LibTorch>>;

/// A LibTorch tensor as Burn's autodiff holds it, with its checkpointing strategy; any other
/// tensor comes back unchanged.
// The Err is the caller's own tensor handed back, moved as Burn moves every DispatchTensor;
// boxing it would allocate on each call on the other backends.
#[allow(clippy::result_large_err)]
pub(crate) fn into_tracked(
    tensor: DispatchTensor,
) -> Result<(AutodiffTorch, GradientCheckpointingStrategy), DispatchTensor> {
    let DispatchTensor { kind, autodiff } = tensor;
    match (kind, autodiff) {
        (DispatchTensorKind::Autodiff(inner), DispatchAutodiffContext::Enabled(strategy)) => {
            match *inner {
                DispatchTensorKind::LibTorch(BackendTensor::Autodiff(tensor)) => {
                    Ok((tensor, strategy))
                }
                other => Err(DispatchTensor {
                    kind: DispatchTensorKind::Autodiff(Box::new(other)),
                    autodiff,
                }),
            }
        }
        (kind, autodiff) => Err(DispatchTensor { kind, autodiff }),
    }
}

/// A tracked LibTorch tensor back as a Burn tensor under autodiff with `strategy`.
pub(crate) fn from_tracked<const D: usize>(
    tensor: AutodiffTorch,
    strategy: GradientCheckpointingStrategy,
) -> Tensor<D> {
    let inner = DispatchTensorKind::LibTorch(BackendTensor::Autodiff(tensor));
    Tensor::from_dispatch(DispatchTensor {
        kind: DispatchTensorKind::Autodiff(Box::new(inner)),
        autodiff: DispatchAutodiffContext::Enabled(strategy),
    })
}

/// The LibTorch tensor of a dispatch tensor outside autodiff, if it is one.
pub(crate) fn plain(tensor: DispatchTensor) -> Option<TchTensor> {
    match tensor.kind {
        DispatchTensorKind::LibTorch(BackendTensor::Float(tensor)) => Some(tensor),
        _ => None,
    }
}

/// A LibTorch tensor as a Burn tensor outside autodiff, keeping its storage's reference count.
pub(crate) fn from_plain<const D: usize>(tensor: TchTensor) -> Tensor<D> {
    Tensor::from_dispatch(DispatchTensor {
        kind: DispatchTensorKind::LibTorch(BackendTensor::Float(tensor)),
        autodiff: DispatchAutodiffContext::Disabled,
    })
}

/// A LibTorch float tensor as a Burn tensor outside autodiff (for an island's auxiliary outputs).
pub fn constant<const D: usize>(tensor: tch::Tensor) -> Tensor<D> {
    from_plain(TchTensor::new(tensor))
}
