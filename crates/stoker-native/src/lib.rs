//! Layers whose gradients LibTorch computes natively, where Burn's generic backward is slow.
//!
//! Models use them as drop-in modules ([`nn`]: `Conv1d`, `BatchNorm`, `MaxPool1d`, `Linear`,
//! causal attention, ...), which read like Burn's; the functions below are what their `forward`
//! calls. [`device`] is which LibTorch devices this machine has.
//!
//! On the LibTorch backend Burn's autodiff computes some gradients through generic
//! compositions of small ops. Where one is measurably slower than what PyTorch runs
//! (docs/performance.md has the numbers), the function here takes the same Burn module and
//! input and runs LibTorch's kernels instead:
//! - [`linear`]: one matrix product over all leading axes, where Burn keeps a batched one.
//! - [`relu`]: the gradient by LibTorch's `threshold_backward`, not a mask fill.
//! - [`batch_norm`], [`layer_norm`], [`causal_self_attention`]: one [`island`] each, forward and
//!   backward by LibTorch's autograd (`native_batch_norm`, `layer_norm`,
//!   `scaled_dot_product_attention`).
//! - [`conv1d`], [`conv2d`]: the gradients by LibTorch's `convolution_backward`, not two more
//!   convolutions.
//! - [`max_pool1d`], [`max_pool2d`]: non-overlapping windows as a maximum of strided views, not
//!   LibTorch's indexed pooling kernel.
//! - [`adam`]: Adam's update as PyTorch's loop makes it, seven in-place LibTorch calls.
//!
//! [`autocast`] is mixed precision: inside [`with_compute_type`](autocast::with_compute_type),
//! [`linear`], the convolutions and attention compute in bf16 or fp16 and return f32.
//!
//! Each computes what the Burn module's forward computes (the tests compare values and
//! gradients), so a model can switch without changing its parameters or checkpoints. On any
//! other backend, or where a case is not covered (attention dropout, quiet softmax, uneven
//! convolution padding, kernels wider than 32 taps on the CPU, pooling windows that overlap or
//! are padded), they call Burn's forward. So do the convolutions, pools and ReLU outside
//! autodiff, where Burn's forward already is LibTorch's kernel. The LibTorch functions tch 0.22 does not bind
//! (`convolution_backward`, `autograd::grad` with output gradients) come from a small C++ shim,
//! `csrc/native.cpp`, compiled against the same libtorch.

mod adam;
mod attention;
pub mod autocast;
pub mod checkpoint;
pub mod collective;
mod conv;
pub mod device;
mod dispatch;
mod ffi;
pub mod filled;
mod island;
mod linear;
pub mod nn;
mod norm;
pub mod pinned;
mod pool;
mod relu;

pub use adam::{AdamInputs, AdamMoments, AdamStep, adam};
pub use attention::causal_self_attention;
pub use conv::{conv1d, conv2d};
pub use dispatch::constant;
pub use island::{IslandInput, island};
pub use linear::linear;
pub use norm::{batch_norm, layer_norm};
pub use pool::{max_pool1d, max_pool2d};
pub use relu::relu;

#[cfg(test)]
mod mixed_tests;
#[cfg(test)]
mod tests;

#[cfg(test)]
thread_local! {
    /// How many native operations this thread has run (tests check that a path was taken).
    static NATIVE_RUNS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts one native operation on this thread.
#[cfg(test)]
fn count_native_run() {
    NATIVE_RUNS.with(|runs| runs.set(runs.get() + 1));
}

/// How many native operations this thread has run.
#[cfg(test)]
fn native_runs() -> usize {
    NATIVE_RUNS.with(|runs| runs.get())
}
