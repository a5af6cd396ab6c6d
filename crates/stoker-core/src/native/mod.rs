//! Operations whose backward LibTorch runs natively, where Burn's generic one is slow.
//!
//! On the LibTorch backend Burn's autodiff computes some gradients through generic
//! compositions of small ops. Where one of those is measurably slower than the kernel PyTorch
//! calls (`cargo xtask bench`, docs/performance.md), the function here runs the same forward
//! with a backward that calls LibTorch's kernel. On any other backend it is Burn's own op.

mod attention;
mod island;
mod norm;
mod relu;

pub use attention::causal_self_attention;
pub use island::{IslandInput, constant, island};
pub use norm::{batch_norm, layer_norm};
pub use relu::relu;

#[cfg(test)]
mod tests;
