//! Batches copied to a CUDA device from pinned (page-locked) host memory, asynchronously: what
//! PyTorch's `DataLoader(pin_memory=True)` with `.to(device, non_blocking=True)` does.
//!
//! Burn's upload (`Tensor::from_data`) copies from pageable memory, which CUDA first stages
//! through a pinned buffer of its own while the calling thread waits. Here the host values are
//! copied once into a pinned tensor (LibTorch's caching host allocator, which reuses the blocks)
//! and the device copy is queued on the current stream without waiting: the data worker that
//! prepared the batch goes on to the next one, and the copy overlaps whatever the GPU is still
//! running. The caching allocator records the copy on the block, so the pinned memory is not
//! handed out again before the copy has read it.

// burn-tch marks its types deprecated in favour of CubeCL backends; LibTorch is stoker's backend.
#![allow(deprecated)]

use burn::backend::libtorch::TchTensor;
use burn::backend::{BackendTensor, DispatchAutodiffContext, DispatchTensor, DispatchTensorKind};
use burn::tensor::{Device, Int, Tensor};

use crate::device::libtorch_cuda_index;

/// `host` (a CPU tensor of `shape`'s values) on CUDA device `index`, copied asynchronously
/// through pinned memory.
pub(crate) fn to_cuda(host: tch::Tensor, shape: &[usize], index: usize) -> TchTensor {
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    let cuda = tch::Device::Cuda(index);
    let pinned = host.reshape(&dims).pin_memory(cuda);
    TchTensor::new(pinned.to_device_(cuda, pinned.kind(), true, false))
}

/// A Burn tensor (outside autodiff) of a LibTorch tensor.
pub(crate) fn burn_tensor<const D: usize, K: burn::tensor::kind::Basic>(
    tensor: BackendTensor<burn::backend::LibTorch>,
) -> Tensor<D, K> {
    Tensor::from_dispatch(DispatchTensor {
        kind: DispatchTensorKind::LibTorch(tensor),
        autodiff: DispatchAutodiffContext::Disabled,
    })
}

/// `values` (row-major, `shape`) on `device` through pinned memory and an asynchronous copy;
/// `None` when `device` is not a LibTorch CUDA device (the caller uploads as usual).
pub fn upload_f32<const D: usize>(
    values: &[f32],
    shape: [usize; D],
    device: &Device,
) -> Option<Tensor<D>> {
    let index = libtorch_cuda_index(&device.clone().without_autodiff())?;
    let tensor = to_cuda(tch::Tensor::from_slice(values), &shape, index);
    let tensor = burn_tensor(BackendTensor::Float(tensor));
    Some(crate::filled::in_float_dtype_of(tensor, device))
}

/// [`upload_f32`] for integer values (class labels).
pub fn upload_i64<const D: usize>(
    values: &[i64],
    shape: [usize; D],
    device: &Device,
) -> Option<Tensor<D, Int>> {
    let index = libtorch_cuda_index(&device.clone().without_autodiff())?;
    let tensor = to_cuda(tch::Tensor::from_slice(values), &shape, index);
    Some(burn_tensor(BackendTensor::Int(tensor)))
}
