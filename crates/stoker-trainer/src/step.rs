//! The training-step seam. A trainer plugin implements [`TrainingStep`] to replace what one
//! micro-batch does (and what one validation batch does) and reuses everything else the loop
//! does: limits, accumulation, clipping, the optimizer and the schedule, validation cadence,
//! callbacks, loggers, checkpoints and exact resume. The step may own extra modules (a frozen
//! teacher) and extra state (adaptive loss weights); [`TrainingStep::state`] goes into every
//! checkpoint and comes back through [`TrainingStep::load_state`] on resume.

use std::time::Instant;

use stoker::batch::{Batch, Output};
use stoker::burn::optim::GradientsParams;
use stoker::burn::tensor::{Device, Tensor};
use stoker::error::Result;
use stoker::loss::{Loss, LossValue};
use stoker::model::DynModel;
use stoker::precision::Precision;

use crate::precision::full::FullPrecision;
use crate::profile::{Phase, StepProfile};

/// What one micro-batch of training does.
pub trait TrainingStep: Send {
    /// Whether the step logs a value named `name` ([`StepContext::log`]): a monitor of it is
    /// then not refused before training.
    fn logs(&self, _name: &str) -> bool {
        false
    }

    /// One micro-batch: the forward pass, the loss and its gradients. The default is
    /// [`default_training_step`].
    fn training_step(&mut self, ctx: &mut StepContext<'_>) -> Result<StepOutput> {
        default_training_step(ctx)
    }

    /// One validation (or test, or sanity-check) batch through the evaluation copy of the
    /// model: its output and its loss, which the split's metrics see. The default is
    /// [`default_validation_step`].
    fn validation_step(&mut self, ctx: &ValidationContext<'_>) -> Result<(Output, LossValue)> {
        default_validation_step(ctx)
    }

    /// The step's own state, kept in every checkpoint (JSON; `null` when it has none).
    fn state(&self) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }

    /// Restores what [`state`](TrainingStep::state) returned, on resume.
    fn load_state(&mut self, _state: &serde_json::Value) -> Result<()> {
        Ok(())
    }
}

/// The step of `Default_trainer`: forward, loss, backward.
#[derive(Debug, Default, Clone, Copy)]
pub struct DefaultStep;

impl TrainingStep for DefaultStep {}

/// The model's forward pass, the experiment's loss, and the gradients of its total.
pub fn default_training_step(ctx: &mut StepContext<'_>) -> Result<StepOutput> {
    let output = ctx.forward()?;
    let loss = ctx.compute_loss(&output)?;
    let grads = ctx.backward(loss.total.clone());
    Ok(StepOutput {
        output,
        loss,
        grads,
        batch: None,
    })
}

/// The evaluation copy's forward pass and the experiment's loss.
pub fn default_validation_step(ctx: &ValidationContext<'_>) -> Result<(Output, LossValue)> {
    let output = ctx.model.forward(ctx.batch)?;
    let loss = ctx.loss.forward(&output, ctx.batch)?;
    Ok((output, loss))
}

/// One training step outside the loop, as a trainer plugin's unit tests run it: `batch`
/// through `step` with `model` and `loss`, in 32-bit precision, without accumulation, as the
/// first micro-batch of optimizer step `global_step`. Returns what the step returned and the
/// values it logged.
pub fn run_training_step(
    step: &mut dyn TrainingStep,
    model: &dyn DynModel,
    loss: &dyn Loss,
    batch: &Batch,
    device: &Device,
    global_step: usize,
) -> Result<(StepOutput, Vec<(String, f64)>)> {
    let mut profile = StepProfile::default();
    let mut mark = Instant::now();
    let mut ctx = StepContext {
        batch,
        model,
        loss,
        device,
        epoch: 0,
        global_step,
        batch_index: 0,
        starts_step: true,
        seed: 0,
        precision: &FullPrecision,
        accumulate: 1,
        profile: &mut profile,
        mark: &mut mark,
        logged: Vec::new(),
    };
    let output = step.training_step(&mut ctx)?;
    Ok((output, ctx.logged))
}

/// What a training step returns.
pub struct StepOutput {
    /// The model's output, which the training metrics see.
    pub output: Output,
    /// The loss (its total is `train_loss`; its terms are logged beside it).
    pub loss: LossValue,
    /// The gradients of this micro-batch, as [`StepContext::backward`] returns them.
    pub grads: GradientsParams,
    /// The batch `output` answers, when the step trained on another one than the loop gave
    /// it (resized inputs and targets): the training metrics see this batch. `None`: the
    /// loop's batch.
    pub batch: Option<Batch>,
}

/// What a training step sees.
pub struct StepContext<'a> {
    /// The training batch, augmented.
    pub batch: &'a Batch,
    /// The model being trained (on the autodiff device).
    pub model: &'a dyn DynModel,
    /// The experiment's loss.
    pub loss: &'a dyn Loss,
    /// The device the data lives on.
    pub device: &'a Device,
    /// The epoch (0-based).
    pub epoch: usize,
    /// Optimizer steps taken before this micro-batch.
    pub global_step: usize,
    /// The micro-batch's index in the epoch.
    pub batch_index: usize,
    /// Whether this micro-batch is the first of its optimizer step (with
    /// `accumulate_grad_batches`, later ones add to its gradients).
    pub starts_step: bool,
    /// The seed the loop gave the device for this micro-batch (dropout): reseed with it,
    /// `ctx.device.seed(ctx.seed)`, to repeat a forward pass with the same random draws.
    pub seed: u64,
    pub(crate) precision: &'a dyn Precision,
    pub(crate) accumulate: usize,
    pub(crate) profile: &'a mut StepProfile,
    pub(crate) mark: &'a mut Instant,
    pub(crate) logged: Vec<(String, f64)>,
}

impl StepContext<'_> {
    /// The model's forward pass on the batch, in the precision's context.
    pub fn forward(&mut self) -> Result<Output> {
        let (model, batch) = (self.model, self.batch);
        self.forward_with(model, batch)
    }

    /// `model`'s forward pass on `batch`, in the precision's context: the trained model on
    /// another batch (perturbed inputs), or another model (a frozen teacher) on this one.
    pub fn forward_with(&mut self, model: &dyn DynModel, batch: &Batch) -> Result<Output> {
        let mut output = None;
        self.precision.forward(&mut || {
            output = Some(model.forward(batch)?);
            Ok(())
        })?;
        Ok(output.expect("the forward pass ran"))
    }

    /// The experiment's loss on `output`, in the precision's context.
    pub fn compute_loss(&mut self, output: &Output) -> Result<LossValue> {
        let batch = self.batch;
        self.compute_loss_with(output, batch)
    }

    /// The experiment's loss on `output` against `batch`, in the precision's context.
    pub fn compute_loss_with(&mut self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let loss = self.loss;
        let mut value = None;
        self.precision.forward(&mut || {
            value = Some(loss.forward(output, batch)?);
            Ok(())
        })?;
        self.profile.lap(Phase::Forward, self.mark);
        Ok(value.expect("the loss ran"))
    }

    /// The gradients of `loss` with respect to the model's parameters, as this micro-batch
    /// contributes them: divided by `accumulate_grad_batches` and scaled by the precision
    /// (a loss scaler). Burn frees the graph it back-propagates, so a second call needs a
    /// second forward pass; gradients are linear, so the gradients of a weighted sum of losses
    /// are the weighted sum of theirs.
    pub fn backward(&mut self, loss: Tensor<1>) -> GradientsParams {
        let grads = self.model.backward(self.contribution(loss));
        self.profile.lap(Phase::Backward, self.mark);
        grads
    }

    /// As [`backward`](StepContext::backward), and also the gradient of `loss` with respect to
    /// `leaf` (a tensor made with `.autodiff().require_grad()` that the forward pass used, such
    /// as an input), scaled as the parameters' are; `None` when the loss does not depend on it.
    pub fn backward_with_leaf<const D: usize>(
        &mut self,
        loss: Tensor<1>,
        leaf: &Tensor<D>,
    ) -> (GradientsParams, Option<Tensor<D>>) {
        let mut grads = self.contribution(loss).backward();
        let of_leaf = leaf.grad_remove(&mut grads);
        let params = self.model.params_gradients(grads);
        self.profile.lap(Phase::Backward, self.mark);
        (params, of_leaf)
    }

    /// `loss` as this micro-batch contributes it: divided by the accumulation and scaled by
    /// the precision.
    fn contribution(&self, loss: Tensor<1>) -> Tensor<1> {
        let loss = if self.accumulate > 1 {
            loss.div_scalar(self.accumulate as f64)
        } else {
            loss
        };
        self.precision.scale_loss(loss)
    }

    /// Logs `value` as `name` at the optimizer step this micro-batch is part of (a row of
    /// `metrics.csv`, written once the step is taken; with accumulation, the last micro-batch's
    /// value of a name wins).
    pub fn log(&mut self, name: impl Into<String>, value: f64) {
        self.logged.push((name.into(), value));
    }
}

/// What a validation step sees.
pub struct ValidationContext<'a> {
    /// The batch.
    pub batch: &'a Batch,
    /// The evaluation copy of the model (no autodiff, dropout off).
    pub model: &'a dyn DynModel,
    /// The experiment's loss.
    pub loss: &'a dyn Loss,
    /// The epoch (0-based).
    pub epoch: usize,
    /// Optimizer steps taken so far.
    pub global_step: usize,
}
