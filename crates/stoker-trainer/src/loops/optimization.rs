//! Automatic optimization (Lightning's `optimization/automatic.py`): one micro-batch through the
//! training step, its training metrics and its gradients added to the step's; at an
//! accumulation boundary, one optimizer step: gradients reduced over processes, unscaled by the
//! precision (a step whose gradients overflowed is skipped), checked, shown to the callbacks,
//! clipped, applied, and the learning-rate schedule advanced.

use std::time::Instant;

use stoker::batch::{Batch, Output};
use stoker::burn::optim::GradientsParams;
use stoker::error::{Result, StokerError};
use stoker::loss::LossValue;
use stoker::metric::StepView;

use crate::anomaly::{self, Place};
use crate::clip;
use crate::context::Fit;
use crate::limits::ClipAlgorithm;
use crate::profile::Phase;
use crate::step::StepContext;

/// A micro-batch that went through the training step.
pub struct MicroBatch {
    /// The model's output.
    pub output: Output,
    /// The loss.
    pub loss: LossValue,
    /// The batch and the output in physical units, when the data is normalized and there are
    /// training metrics (what the metrics and `on_train_batch_end` see).
    pub decoded: Option<(Batch, Output)>,
    /// The batch the step trained on, when it was not the loop's ([`StepOutput::batch`]).
    ///
    /// [`StepOutput::batch`]: crate::step::StepOutput::batch
    pub trained: Option<Batch>,
    /// Whether an optimizer step followed it.
    pub stepped: bool,
}

impl MicroBatch {
    /// What the metrics and `on_train_batch_end` see of it (`batch`: the loop's batch).
    pub fn view<'a>(&'a self, batch: &'a Batch) -> StepView<'a> {
        let batch = self.trained.as_ref().unwrap_or(batch);
        let (batch, output) = self
            .decoded
            .as_ref()
            .map_or((batch, &self.output), |(b, o)| (b, o));
        StepView {
            batch,
            output,
            loss: &self.loss,
        }
    }
}

/// The gradients of the optimizer step being accumulated, and what its micro-batches logged.
#[derive(Default)]
pub struct Accumulation {
    grads: Option<GradientsParams>,
    logged: Vec<(String, f64)>,
}

impl Accumulation {
    /// Runs micro-batch `index` (of an epoch of `n`) and, at an accumulation boundary, the
    /// optimizer step. `seed` is the seed the device was given for it.
    pub fn micro_batch(
        &mut self,
        fit: &mut Fit<'_>,
        batch: &Batch,
        index: usize,
        n: usize,
        seed: u64,
        mark: &mut Instant,
    ) -> Result<MicroBatch> {
        let (epoch, accumulate) = (fit.state.epoch, fit.args.accumulate_grad_batches);
        let at = move |e: StokerError| {
            StokerError::msg(format!("epoch {epoch}, train batch {index}: {e}"))
        };
        let parts = &fit.parts;
        let mut ctx = StepContext {
            batch,
            model: parts.model.as_ref(),
            loss: parts.loss.as_ref(),
            device: &parts.device,
            epoch,
            global_step: fit.state.global_step,
            batch_index: index,
            starts_step: self.grads.is_none(),
            seed,
            precision: &*fit.precision,
            accumulate,
            profile: &mut fit.profile,
            mark,
            logged: Vec::new(),
        };
        let out = fit.step.training_step(&mut ctx).map_err(at)?;
        self.logged.append(&mut ctx.logged);
        if fit.args.detect_anomaly {
            let place = Place {
                epoch,
                step: fit.state.global_step + 1,
                batch: index,
            };
            anomaly::check_loss(&out.loss.total, &place)?;
        } else {
            fit.watch.record(&out.loss.total);
        }
        // Metrics see physical units when the data is normalized.
        let parts = &mut fit.parts;
        let trained = out.batch.as_ref().unwrap_or(batch);
        let decoded = match parts.metrics.train.is_empty() {
            true => None,
            false => parts.data.decode(trained, &out.output).map_err(at)?,
        };
        let micro = MicroBatch {
            output: out.output,
            loss: out.loss,
            decoded,
            trained: out.batch,
            stepped: (index + 1).is_multiple_of(accumulate) || index + 1 == n,
        };
        let view = micro.view(batch);
        for metric in parts.metrics.train.iter_mut() {
            metric.update(&view).map_err(at)?;
        }
        fit.profile.lap(Phase::Metrics, mark);
        self.grads = Some(match self.grads.take() {
            Some(sum) => fit.parts.model.add_gradients(sum, out.grads),
            None => out.grads,
        });
        if micro.stepped {
            let grads = self
                .grads
                .take()
                .expect("this micro-batch added its gradients");
            optimizer_step(fit, grads, index, n)?;
            fit.profile.lap(Phase::Optimizer, mark);
            if fit
                .state
                .global_step
                .is_multiple_of(fit.args.log_every_n_steps)
            {
                // The step row's read of the device also reads the NaN watch.
                fit.check_finite_loss()?;
                let value = micro.loss.total.clone().into_scalar::<f64>();
                fit.log(vec![
                    ("train_loss_step".into(), value),
                    ("lr".into(), fit.state.step_lr),
                ])?;
            }
            // What the step's micro-batches logged, at the step they made (the last value of
            // a name wins).
            if !self.logged.is_empty() {
                fit.log(std::mem::take(&mut self.logged))?;
            }
        }
        Ok(micro)
    }
}

/// One optimizer step from the gradients of a whole accumulation group.
fn optimizer_step(fit: &mut Fit<'_>, grads: GradientsParams, index: usize, n: usize) -> Result<()> {
    let grads = fit
        .strategy
        .reduce_gradients(fit.parts.model.as_ref(), grads)?;
    // The rate this step uses (logged with it, also when the step is skipped).
    fit.state.step_lr = fit.parts.scheduler.lr();
    let Some(grads) = fit
        .precision
        .unscale_gradients(fit.parts.model.as_ref(), grads)?
    else {
        // The gradients overflowed: no update and no schedule step, as torch.amp.GradScaler.
        fit.precision.after_step(false);
        fit.state.global_step += 1;
        return Ok(());
    };
    if fit.args.detect_anomaly {
        let place = Place {
            epoch: fit.state.epoch,
            step: fit.state.global_step + 1,
            batch: index,
        };
        anomaly::check_gradients(fit.parts.model.as_ref(), &grads, &place)?;
    }
    fit.hook(n, |c, ctx| c.on_before_optimizer_step(ctx, &grads))?;
    fit.logs
        .histograms(fit.state.global_step + 1, fit.parts.model.as_ref(), &grads)?;
    let parts = &mut fit.parts;
    let lr = fit.state.step_lr;
    let model = parts.model.as_ref();
    let grads = match (fit.args.gradient_clip_val, fit.args.gradient_clip_algorithm) {
        (None, _) => grads,
        (Some(v), ClipAlgorithm::Norm) => clip::clip_by_norm(model, grads, v).0,
        (Some(v), ClipAlgorithm::Value) => clip::clip_by_value(model, grads, v),
    };
    parts.model.optimizer_step(&mut parts.optimizer, lr, grads);
    parts.scheduler.on_optimizer_step();
    fit.precision.after_step(true);
    fit.state.global_step += 1;
    Ok(())
}
