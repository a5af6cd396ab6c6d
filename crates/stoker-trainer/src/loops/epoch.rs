//! The training epoch loop (Lightning's `training_epoch_loop.py`): the batches of one epoch,
//! prepared in the loop or ahead by workers, each through the optimization; validation when
//! [`EpochPlan::should_validate`] says so; at the epoch's end its training metrics, the epoch
//! hooks, the scheduler's epoch step and the checkpoints due.

use std::sync::Arc;
use std::time::Instant;

use stoker::data::Split;
use stoker::error::{Result, StokerError};

use crate::connectors::checkpoint::write_pending;
use crate::context::Fit;
use crate::limits::Limit;
use crate::loops::evaluation::{collect, validate};
use crate::loops::optimization::Accumulation;
use crate::prefetch::{Batches, Plan, step_seed};
use crate::profile::Phase;

/// How an epoch ended.
pub enum EpochEnd {
    /// All its batches ran (or a limit or a stop request ended it early).
    Done,
    /// A signal arrived; the loop stopped at a consistent point.
    Interrupted,
}

/// One epoch's shape: its batches, and when it validates.
#[derive(Debug, Clone, Copy)]
pub struct EpochPlan {
    /// The epoch (0-based).
    pub epoch: usize,
    /// Its training batches.
    pub n: usize,
    /// Whether there is a validation split to run.
    pub has_val: bool,
    /// `check_val_every_n_epoch`.
    pub every_n_epochs: Option<usize>,
    /// Training batches between validations.
    pub interval: usize,
}

impl EpochPlan {
    /// Whether validation runs after `done` batches of the epoch: at an optimizer step inside
    /// the epoch (`at_end` false) or at its end, after its training metrics (`at_end` true).
    /// Validation that falls on the epoch's last batch runs at its end; with
    /// `check_val_every_n_epoch`, a validating epoch always validates at its end.
    pub fn should_validate(&self, done: usize, at_end: bool) -> bool {
        if !self.has_val || (!at_end && done >= self.n) {
            return false;
        }
        match self.every_n_epochs {
            // Every `interval` training batches, counted across epochs.
            None => {
                at_end == (done == self.n)
                    && (self.epoch * self.n + done).is_multiple_of(self.interval)
            }
            Some(every) => {
                (self.epoch + 1).is_multiple_of(every)
                    && (at_end || done.is_multiple_of(self.interval))
            }
        }
    }
}

/// Runs the rest of the current epoch.
pub fn run(fit: &mut Fit<'_>) -> Result<EpochEnd> {
    let n = fit.train_batches()?;
    let plan = EpochPlan {
        epoch: fit.state.epoch,
        n,
        has_val: fit.has_val()?,
        every_n_epochs: fit.args.check_val_every_n_epoch,
        interval: match fit.args.val_check_interval {
            Limit::Batches(k) => k.max(1),
            Limit::Fraction(f) => ((n as f64 * f) as usize).max(1),
        },
    };
    if fit.state.batch == 0 {
        for metric in fit.parts.metrics.train.iter_mut() {
            metric.reset();
        }
        fit.logs.epoch_values.clear();
        fit.hook(n, |c, ctx| c.on_train_epoch_start(ctx))?;
    }
    let started = Instant::now();
    if let EpochEnd::Interrupted = run_batches(fit, plan)? {
        return Ok(EpochEnd::Interrupted);
    }
    end(fit, plan, started)?;
    Ok(EpochEnd::Done)
}

/// The epoch's end: its training metrics, validation, the hooks, the scheduler, checkpoints.
fn end(fit: &mut Fit<'_>, plan: EpochPlan, started: Instant) -> Result<()> {
    fit.check_finite_loss()?;
    let metrics = &mut fit.parts.metrics.train;
    fit.strategy.reduce_metrics(metrics)?;
    let values = collect(Split::Train, metrics)?;
    fit.logs
        .artifacts(&fit.run.dir, Split::Train, fit.state.global_step, metrics)?;
    fit.logs.epoch_values.splice(0..0, values.iter().cloned());
    fit.log(values)?;
    if plan.should_validate(fit.state.batch, true) {
        validate(fit, plan.n)?;
    }
    fit.hook(plan.n, |c, ctx| c.on_train_epoch_end(ctx))?;
    fit.parts.scheduler.on_epoch_end(&fit.logs.latest)?;
    fit.state
        .epoch_seconds
        .push(started.elapsed().as_secs_f64());
    let epoch_values = fit.logs.epoch_values.iter().cloned().collect();
    fit.state.history.push(epoch_values);
    fit.state.epoch += 1;
    fit.state.batch = 0;
    fit.logs.flush()?;
    write_pending(fit, false)?;
    // Every process has the epoch's checkpoints before any starts the next epoch.
    fit.strategy.barrier()
}

/// The epoch's remaining batches, with `num_workers` threads preparing them ahead.
fn run_batches(fit: &mut Fit<'_>, plan: EpochPlan) -> Result<EpochEnd> {
    let data = Arc::clone(&fit.parts.data);
    let augmentations = Arc::clone(&fit.parts.augmentations);
    let order = fit.train_order();
    let prepare = Plan {
        augmentations: &augmentations,
        seed: fit.parts.seed,
        epoch: plan.epoch,
    };
    let (first, workers, prefetch) = (
        fit.state.batch,
        fit.args.num_workers,
        fit.args.prefetch_factor,
    );
    std::thread::scope(|scope| {
        let strategy = &*fit.strategy;
        let open = || {
            strategy
                .epoch(&*data, Split::Train, plan.epoch, order)
                .map_err(|e| {
                    StokerError::msg(format!("epoch {}, train batch {first}: {e}", plan.epoch))
                })
        };
        let mut batches = Batches::start(scope, prepare, open, first, plan.n, workers, prefetch)?;
        run_steps(fit, &mut batches, plan)
    })
}

/// The steps of the rest of the epoch, on `batches`.
fn run_steps(fit: &mut Fit<'_>, batches: &mut Batches<'_>, plan: EpochPlan) -> Result<EpochEnd> {
    let n = plan.n;
    let mut accumulation = Accumulation::default();
    let mut mark = Instant::now();
    while fit.state.batch < n {
        // The previous step's tensors and autodiff graph were freed since the last lap.
        fit.profile.lap(Phase::Release, &mut mark);
        let (epoch, index) = (fit.state.epoch, fit.state.batch);
        let batch = batches
            .next(index)
            .map_err(|e| StokerError::msg(format!("epoch {epoch}, train batch {index}: {e}")))?;
        // Randomness inside the step (augmentations, dropout) depends only on the seed, the
        // epoch and the batch.
        let seed = step_seed(fit.parts.seed, epoch, index);
        fit.parts.device.seed(seed);
        fit.profile.lap(Phase::Data, &mut mark);
        fit.hook(n, |c, ctx| c.on_train_batch_start(ctx, &batch))?;
        fit.profile.lap(Phase::Hooks, &mut mark);
        let micro = accumulation.micro_batch(fit, &batch, index, n, seed, &mut mark)?;
        fit.state.batch = index + 1;
        fit.profile.lap(Phase::Logging, &mut mark);
        let view = micro.view(&batch);
        fit.hook(n, |c, ctx| c.on_train_batch_end(ctx, &view, micro.stepped))?;
        fit.profile.step();
        if !micro.stepped {
            fit.profile.lap(Phase::Hooks, &mut mark);
            continue;
        }
        if plan.should_validate(fit.state.batch, false) {
            validate(fit, n)?;
        }
        write_pending(fit, false)?;
        fit.profile.lap(Phase::Hooks, &mut mark);
        // A stop request or a signal in any process stops every process at the same step;
        // max_steps is the same everywhere.
        let flags = [fit.state.stop.is_some(), fit.interrupt_requested()];
        let [requested, interrupted] = fit.strategy.step_flags(flags);
        if requested && fit.state.stop.is_none() {
            fit.state
                .request_stop("another process asked to stop".into());
        }
        if (requested && fit.state.may_stop(fit.args, epoch)) || fit.state.steps_exhausted(fit.args)
        {
            break;
        }
        if interrupted {
            return Ok(EpochEnd::Interrupted);
        }
    }
    Ok(EpochEnd::Done)
}
