//! ReLU with LibTorch's `threshold_backward`.
//!
//! Burn's ReLU backward builds a mask (`output <= 0`) and fills the gradient through it
//! (`mask_fill`). On LibTorch's CPU kernels that pair takes about 250 µs on a
//! [32, 16, 257] activation, where the `threshold_backward` PyTorch runs takes about 15 µs
//! (2 threads; bench/reference/phases.py and docs/performance.md).

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
use burn::tensor::Tensor;
use burn::tensor::activation;

use super::dispatch::{AutodiffTorch, from_tracked, into_tracked};

/// max(x, 0). Under autodiff on LibTorch its gradient is LibTorch's `threshold_backward`;
/// everywhere else this is Burn's `relu`.
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    match into_tracked(x.into_dispatch()) {
        Ok((x, strategy)) => {
            let y = match strategy {
                GradientCheckpointingStrategy::Disabled => tracked::<NoCheckpointing>(x),
                GradientCheckpointingStrategy::Balanced => tracked::<BalancedCheckpointing>(x),
            };
            from_tracked(y, strategy)
        }
        Err(x) => activation::relu(Tensor::from_dispatch(x)),
    }
}

fn tracked<C: CheckpointStrategy>(x: AutodiffTorch) -> AutodiffTorch {
    #[cfg(test)]
    super::count_native_run();
    match ReluBackward
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = TchTensor::new(x.primitive().tensor.relu());
            // The saved output shares its reference count with Burn's, so Burn never
            // overwrites it in place before the backward step reads it.
            prep.finish(y.clone(), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(TchTensor::new(x.primitive().tensor.relu())),
    }
}

/// ReLU's backward step: the output gradient where the output is positive, zero elsewhere.
#[derive(Debug)]
struct ReluBackward;

impl Backward<LibTorch, 1> for ReluBackward {
    type State = TchTensor;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let output = ops.state;
        unary::<LibTorch, _>(ops.parents, ops.node, grads, |grad| {
            TchTensor::new(output.tensor.threshold_backward(&grad.tensor, 0.0))
        });
    }
}
