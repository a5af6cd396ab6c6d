//! Mixed precision inside the native ops: the float type their matrix products, convolutions and
//! attention compute in, for the forward passes run in [`with_compute_type`].
//!
//! This is what torch's autocast does, made explicit: a global autocast around Burn's ops breaks
//! Burn's own backward (its saved tensors and gradients would disagree in type), so each native
//! op that computes in lower precision casts its inputs (the f32 parameters included) to the
//! compute type inside a LibTorch [`island`](crate::island), runs LibTorch's kernel there, and
//! hands Burn an f32 output. LibTorch's autograd records the casts, so the gradients that reach
//! the f32 parameters are f32. What torch's autocast keeps in float32 (normalization, softmax
//! outside attention, reductions, losses, Fourier transforms) stays in the float type of its
//! inputs, as everything outside the native ops does.

use std::cell::Cell;

/// A lower-precision float type for matrix products, convolutions and attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComputeType {
    /// bfloat16: float32's range, 8 bits of mantissa; needs no loss scaling.
    BFloat16,
    /// IEEE float16: 11 bits of mantissa but a range up to 65504; needs a loss scaler.
    Float16,
}

impl ComputeType {
    /// LibTorch's kind of this type.
    pub fn kind(self) -> tch::Kind {
        match self {
            ComputeType::BFloat16 => tch::Kind::BFloat16,
            ComputeType::Float16 => tch::Kind::Half,
        }
    }

    /// Its name in logs: `bf16` or `fp16`.
    pub fn name(self) -> &'static str {
        match self {
            ComputeType::BFloat16 => "bf16",
            ComputeType::Float16 => "fp16",
        }
    }
}

thread_local! {
    /// The compute type of the native ops on this thread (`None`: their inputs' own type).
    static COMPUTE_TYPE: Cell<Option<ComputeType>> = const { Cell::new(None) };
}

/// Runs `f` with the native ops on this thread computing in `compute` (`None`: in their inputs'
/// own type), and restores the previous setting afterwards, also when `f` panics.
pub fn with_compute_type<R>(compute: Option<ComputeType>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<ComputeType>);
    impl Drop for Restore {
        fn drop(&mut self) {
            COMPUTE_TYPE.with(|cell| cell.set(self.0));
        }
    }
    let _restore = Restore(COMPUTE_TYPE.with(|cell| cell.replace(compute)));
    f()
}

/// The compute type the native ops on this thread use now.
pub fn compute_type() -> Option<ComputeType> {
    COMPUTE_TYPE.with(Cell::get)
}

/// `tensor` in `kind`, without a copy when it already is.
pub(crate) fn cast(tensor: &tch::Tensor, kind: tch::Kind) -> tch::Tensor {
    if tensor.kind() == kind {
        tensor.shallow_clone()
    } else {
        tensor.to_kind(kind)
    }
}
