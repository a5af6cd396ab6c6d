//! Block-level gradient checkpointing (`trainer.args.gradient_checkpointing`, what
//! `torch.utils.checkpoint` and Hugging Face's `gradient_checkpointing_enable` do): a block of
//! layers runs forward without keeping anything for its backward pass but its input, and the
//! backward pass runs the block forward again to get its gradients. Memory then holds one
//! block's activations at a time instead of every block's, at the cost of a second forward pass.
//!
//! [`checkpoint`] records one Burn autodiff operation for the whole block, whose only parent is
//! the block's input. Its backward step rebuilds the block with fresh copies of its parameters
//! (leaves of a graph of their own, so that the nested backward pass does not touch the graph
//! being differentiated), runs it on the saved input, back-propagates the output's gradient
//! through it, and hands the input's gradient to the parent and each parameter's gradient to
//! the parameter's own node. The block's random draws (dropout) repeat exactly: the device is
//! seeded with the same draw before both passes.
//!
//! Models wrap their blocks in [`checkpoint`]; the loop turns it on with [`set_enabled`]. Off,
//! outside autodiff (evaluation), on other backends, or on an input that needs no gradient, the
//! block just runs.

// burn-tch marks its types deprecated in favour of CubeCL backends; LibTorch is stoker's backend.
#![allow(deprecated)]

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::libtorch::TchTensor;
use burn::backend::{GradientCheckpointingStrategy, LibTorch};
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Distribution, Tensor};

use super::dispatch::{AutodiffTorch, from_plain, from_tracked, into_tracked, plain};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns block checkpointing on or off for every [`checkpoint`] call from now on.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether block checkpointing is on.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// `forward(block, x)`, checkpointed when [`enabled`]: nothing inside the block is kept for the
/// backward pass, which runs the block again.
pub fn checkpoint<M, const D: usize>(
    block: &M,
    x: Tensor<D>,
    forward: fn(&M, Tensor<D>) -> Tensor<D>,
) -> Tensor<D>
where
    M: Module + fmt::Debug + 'static,
{
    if !enabled() {
        return forward(block, x);
    }
    let (tracked, strategy) = match into_tracked(x.clone().into_dispatch()) {
        Ok(found) if found.0.is_tracked() => found,
        _ => return forward(block, x),
    };
    let device = x.device();
    let seed = draw_seed(&device);
    device.seed(seed);
    // Not a mapper that detaches each tensor: a parameter that stays active gives its detached
    // value a gradient again when read, and the block would record its whole graph.
    let detached = block.clone().no_grad();
    let y = forward(&detached, x.detach());
    let Ok((y, _)) = into_tracked(y.into_dispatch()) else {
        unreachable!("a block of LibTorch tensors gives a LibTorch tensor")
    };

    let output = y.into_primitive();
    #[cfg(test)]
    super::count_native_run();
    let state = BlockState {
        x: tracked.primitive().clone(),
        block: block.clone(),
        forward,
        seed,
    };
    let out = match strategy {
        GradientCheckpointingStrategy::Disabled => {
            record::<NoCheckpointing, M, D>(tracked, state, output)
        }
        GradientCheckpointingStrategy::Balanced => {
            record::<BalancedCheckpointing, M, D>(tracked, state, output)
        }
    };
    from_tracked(out, strategy)
}

/// A seed for the block's random draws, from the device's own generator (which the loop seeds
/// per batch, so that a resume repeats it).
fn draw_seed(device: &Device) -> u64 {
    let draw: Tensor<1> = Tensor::random(
        [1],
        Distribution::Uniform(0.0, 1.0),
        &device.clone().inner(),
    );
    (draw.into_scalar::<f64>() * (1u64 << 52) as f64) as u64
}

fn record<C: CheckpointStrategy, M, const D: usize>(
    x: AutodiffTorch,
    state: BlockState<M, D>,
    output: TchTensor,
) -> AutodiffTorch
where
    M: Module + fmt::Debug + 'static,
{
    match BlockBackward::<M, D>(std::marker::PhantomData)
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// A parameter's gradient in the nested pass, read from its fresh copy.
type Reader = Box<dyn FnOnce(&burn::tensor::Gradients) -> Option<TchTensor>>;

/// A module's parameters replaced by fresh leaves that require a gradient, each remembered
/// with the node of the parameter it copies.
#[derive(Default)]
struct Fresh {
    copies: Vec<(NodeId, Reader)>,
}

impl ModuleMapper for Fresh {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let original = param.val();
        let Ok((tracked, _)) = into_tracked(original.clone().into_dispatch()) else {
            return param;
        };
        if !tracked.is_tracked() {
            return param;
        }
        let fresh = original.detach().require_grad();
        let copy = fresh.clone();
        self.copies.push((
            tracked.id(),
            Box::new(move |grads| {
                let grad = copy.grad(grads)?;
                plain(grad.into_dispatch())
            }),
        ));
        param.map(|_| fresh)
    }
}

/// What the backward step needs: the block's input, the block and how to run it, and the seed
/// of its random draws.
struct BlockState<M, const D: usize> {
    x: TchTensor,
    block: M,
    forward: fn(&M, Tensor<D>) -> Tensor<D>,
    seed: u64,
}

impl<M: Clone, const D: usize> Clone for BlockState<M, D> {
    fn clone(&self) -> Self {
        BlockState {
            x: self.x.clone(),
            block: self.block.clone(),
            forward: self.forward,
            seed: self.seed,
        }
    }
}

impl<M, const D: usize> fmt::Debug for BlockState<M, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockState")
            .field("x", &self.x.tensor.size())
            .finish()
    }
}

/// The backward step of a checkpointed block.
struct BlockBackward<M, const D: usize>(std::marker::PhantomData<M>);

impl<M, const D: usize> fmt::Debug for BlockBackward<M, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlockBackward")
    }
}

impl<M, const D: usize> Backward<LibTorch, 1> for BlockBackward<M, D>
where
    M: Module + fmt::Debug + 'static,
{
    type State = BlockState<M, D>;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        let BlockState {
            x,
            block,
            forward,
            seed,
        } = ops.state;
        let x: Tensor<D> = from_plain(x);
        let device = x.device().autodiff();
        let x = x.autodiff().require_grad();
        let mut fresh = Fresh::default();
        let block = block.map(&mut fresh);
        device.seed(seed);
        let y = forward(&block, x.clone());
        let upstream: Tensor<D> = from_plain::<D>(grad).autodiff();
        let nested = (y * upstream).sum().backward();
        if let [Some(parent)] = &ops.parents
            && let Some(gx) = x.grad(&nested).and_then(|g| plain(g.into_dispatch()))
        {
            grads.register::<LibTorch>(parent.id, gx);
        }
        for (id, read) in fresh.copies {
            if let Some(g) = read(&nested) {
                grads.register::<LibTorch>(id, g);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::activation::gelu;

    #[derive(Module, Debug)]
    struct Block {
        inner: Linear,
        outer: Linear,
    }

    impl Block {
        fn forward(&self, x: Tensor<2>) -> Tensor<2> {
            self.outer.forward(gelu(self.inner.forward(x.clone()))) + x
        }
    }

    #[derive(Module, Debug)]
    struct Net {
        first: Linear,
        blocks: Vec<Block>,
    }

    impl Net {
        fn forward(&self, x: Tensor<2>) -> Tensor<2> {
            let mut h = self.first.forward(x);
            for block in &self.blocks {
                h = checkpoint(block, h, Block::forward);
            }
            h
        }
    }

    #[test]
    fn a_checkpointed_block_gives_the_gradients_of_the_plain_one() {
        let device = Device::libtorch().autodiff();
        let block = |d| Block {
            inner: LinearConfig::new(d, 16).init(&device),
            outer: LinearConfig::new(16, d).init(&device),
        };
        let net = Net {
            first: LinearConfig::new(5, 8).init(&device),
            blocks: vec![block(8), block(8)],
        };
        let x = Tensor::<2>::random([6, 5], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let weights = Tensor::<2>::random([6, 8], Distribution::Normal(0.0, 1.0), &device);
        let run = |on: bool| {
            set_enabled(on);
            let before = crate::native_runs();
            let y = net.forward(x.clone());
            let checkpointed = crate::native_runs() - before;
            let grads = (y.clone() * weights.clone()).sum().backward();
            set_enabled(false);
            let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
            let of = |l: &Linear| values(l.weight.grad(&grads).unwrap());
            (
                checkpointed,
                values(y),
                values(x.grad(&grads).unwrap()),
                [
                    of(&net.first),
                    of(&net.blocks[0].inner),
                    of(&net.blocks[1].outer),
                ],
            )
        };
        let (plain_runs, y0, gx0, gw0) = run(false);
        let (runs, y1, gx1, gw1) = run(true);
        assert_eq!((plain_runs, runs), (0, 2), "both blocks checkpointed");
        assert_eq!(y1, y0, "the same output");
        assert_eq!(gx1, gx0, "the input's gradient");
        assert_eq!(
            gw1, gw0,
            "the parameters' gradients, inside the blocks and before them"
        );
    }
}
