//! Batches written straight into LibTorch's memory. Burn's upload (`Tensor::from_data`) hands
//! LibTorch a Rust buffer that LibTorch copies into a zero-filled tensor of its own, so a batch
//! read into a `Vec` is written three times before the step sees it. Here LibTorch allocates the
//! tensor first and the caller writes the values into it: on the CPU that memory is the batch.

// burn-tch marks its types deprecated in favour of CubeCL backends; LibTorch is stoker's backend.
#![allow(deprecated)]

use std::mem::MaybeUninit;

use burn::backend::BackendTensor;
use burn::backend::libtorch::TchTensor;
use burn::tensor::{Device, FloatDType, Tensor};

use crate::device::libtorch_cuda_index;

/// A float tensor of `shape` on `device` whose values `fill` writes into host memory LibTorch
/// allocated, returning that memory as the values it initialized (all of it: the same slice):
/// on the LibTorch CPU device that memory becomes the tensor; on a LibTorch CUDA device it is
/// copied there through pinned memory, asynchronously ([`pinned`](crate::pinned)). The tensor has
/// the device's float type, as `Tensor::from_data` gives. `None` on any other device (the caller
/// uploads as usual); `fill`'s error as it is.
///
/// # Panics
/// When `fill` returns a slice other than the one it was given (it would leave values unwritten).
pub fn filled_f32<const D: usize, E>(
    shape: [usize; D],
    device: &Device,
    fill: impl for<'a> FnOnce(&'a mut [MaybeUninit<f32>]) -> Result<&'a mut [f32], E>,
) -> Option<Result<Tensor<D>, E>> {
    let plain = device.clone().without_autodiff();
    let cuda = libtorch_cuda_index(&plain);
    if cuda.is_none() && plain != Device::libtorch() {
        return None;
    }
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    let host = tch::Tensor::empty(&dims, (tch::Kind::Float, tch::Device::Cpu));
    let len: usize = shape.iter().product();
    let values: &mut [MaybeUninit<f32>] = if len == 0 {
        &mut []
    } else {
        // SAFETY: a new contiguous CPU tensor of `len` f32 values, owned by `host`, which
        // outlives this slice and is not read before `fill` has written it; MaybeUninit makes
        // no claim about the values LibTorch left there.
        unsafe { std::slice::from_raw_parts_mut(host.data_ptr().cast(), len) }
    };
    let (start, len) = (values.as_ptr() as usize, values.len());
    match fill(values) {
        Err(e) => return Some(Err(e)),
        Ok(written) => assert!(
            written.as_ptr() as usize == start && written.len() == len,
            "filled_f32: the values returned are not the tensor's"
        ),
    }
    let tensor = match cuda {
        Some(index) => crate::pinned::to_cuda(host, &shape, index),
        None => TchTensor::new(host),
    };
    let tensor: Tensor<D> = crate::pinned::burn_tensor(BackendTensor::Float(tensor));
    Some(Ok(in_float_dtype_of(tensor, &plain)))
}

/// An f32 `tensor` in `device`'s float type (bf16 where the device was configured for pure bf16
/// training), as `Tensor::from_data` would have made it.
pub(crate) fn in_float_dtype_of<const D: usize>(tensor: Tensor<D>, device: &Device) -> Tensor<D> {
    match device.settings().float_dtype {
        FloatDType::F32 => tensor,
        other => tensor.cast(other),
    }
}
