//! The per-parameter state of the update rules: a step count and up to three tensors.

use stoker::burn::optim::{RecordState, StateSink, StateSource};
use stoker::burn::store::burn_pack::Scalar;
use stoker::burn::tensor::{Device, Tensor};

/// A step count and up to three state tensors (momentum buffers, moment estimates, ...).
#[derive(Clone, Default)]
pub struct Slots<const D: usize> {
    /// Steps taken with this state.
    pub step: u64,
    /// The first state tensor.
    pub a: Option<Tensor<D>>,
    /// The second state tensor.
    pub b: Option<Tensor<D>>,
    /// The third state tensor.
    pub c: Option<Tensor<D>>,
}

impl<const D: usize> Slots<D> {
    /// Moves the tensors to `device`.
    pub fn to_device(self, device: &Device) -> Self {
        let move_to = |t: Option<Tensor<D>>| t.map(|t| t.to_device(device));
        Slots {
            step: self.step,
            a: move_to(self.a),
            b: move_to(self.b),
            c: move_to(self.c),
        }
    }
}

impl<const D: usize> RecordState for Slots<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_scalar(prefix, "step", Scalar::UInt(self.step));
        for (leaf, tensor) in [("a", &self.a), ("b", &self.b), ("c", &self.c)] {
            if let Some(tensor) = tensor {
                out.push_tensor(prefix, leaf, tensor.to_data());
            }
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let step = match src.take_scalar(prefix, "step")? {
            Scalar::UInt(v) => v,
            Scalar::Int(v) => u64::try_from(v).ok()?,
            _ => return None,
        };
        let mut take = |leaf: &str| {
            src.take_tensor(prefix, leaf)
                .map(|data| Tensor::from_data(data, device))
        };
        let (a, b, c) = (take("a"), take("b"), take("c"));
        Some(Slots { step, a, b, c })
    }
}
