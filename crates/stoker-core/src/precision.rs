//! The precision contract: in which number format a training step computes. The loop calls a
//! precision plugin at fixed points (Lightning's `Precision`): around the forward pass, on the
//! loss before backward (scaling), on the gradients before clipping and before
//! `on_before_optimizer_step` (unscaling, and skipping a step whose gradients overflowed), after
//! each optimizer step (the scaler's update), and when a checkpoint is written or read.

use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use crate::error::Result;
use crate::model::DynModel;

/// A built precision plugin (`trainer.args.precision`).
pub trait Precision: Send {
    /// Runs `forward` (the model's forward pass and the loss) in this precision's context.
    fn forward(&self, forward: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        forward()
    }

    /// The loss back-propagated in place of `loss` (a loss scaler multiplies it).
    fn scale_loss(&self, loss: Tensor<1>) -> Tensor<1> {
        loss
    }

    /// The gradients of one optimizer step in true scale (a loss scaler divides them), or
    /// `None` when the step must be skipped (they overflowed): then neither the optimizer nor
    /// the learning-rate schedule steps.
    fn unscale_gradients(
        &mut self,
        _model: &dyn DynModel,
        grads: GradientsParams,
    ) -> Result<Option<GradientsParams>> {
        Ok(Some(grads))
    }

    /// After an optimizer step was taken (`true`) or skipped (`false`): a loss scaler updates
    /// its scale.
    fn after_step(&mut self, _stepped: bool) {}

    /// What to keep in a checkpoint (a loss scaler's scale and counters).
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Restores [`state`](Precision::state).
    fn load_state(&mut self, _state: &serde_json::Value) -> Result<()> {
        Ok(())
    }
}
