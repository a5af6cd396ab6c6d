//! The fit loop (Lightning's `fit_loop.py`): set-up or resume, the sanity check, epochs until a
//! limit or a stop request ends training, then the end of the fit, the test run and the report;
//! on a signal, a checkpoint to resume from; on a failure, the callbacks' `on_exception` and the
//! checkpoints they ask for.

use std::collections::BTreeMap;

use stoker::callback::SaveRequest;
use stoker::console;
use stoker::error::{Result, StokerError};
use stoker::logger::RunInfo;
use stoker::precision::Precision;
use stoker::strategy::Strategy;
use stoker::trainer::{FitReport, Resume, TrainingParts};

use crate::args::LoopArgs;
use crate::connectors::checkpoint::{restore, write_pending};
use crate::context::Fit;
use crate::loops::epoch::{self, EpochEnd};
use crate::loops::evaluation::{sanity_check, test_after_fit};
use crate::signals::Interrupt;
use crate::step::TrainingStep;

/// Trains: the whole fit of `parts` into `run`, with `step` as the training step.
pub fn run(
    args: &LoopArgs,
    strategy: &mut dyn Strategy,
    precision: &mut dyn Precision,
    step: &mut dyn TrainingStep,
    parts: TrainingParts,
    run: &RunInfo,
) -> Result<FitReport> {
    let (mut fit, resume) = Fit::new(args, strategy, precision, step, parts, run)?;
    match fit_all(&mut fit, resume) {
        Ok(report) => Ok(report),
        Err(error) => Err(fail(&mut fit, error)),
    }
}

fn fit_all(fit: &mut Fit<'_>, resume: Option<Resume>) -> Result<FitReport> {
    match resume {
        Some(resume) => restore(fit, resume)?,
        None => {
            let run = fit.run;
            fit.logs.loggers.each(|_, logger| logger.start(run))?;
        }
    }
    fit.strategy.setup(fit.parts.model.as_mut())?;
    let position = [fit.state.epoch, fit.state.batch, fit.state.global_step].map(|v| v as f64);
    if !fit.strategy.agree(&position)? {
        return Err(StokerError::msg(format!(
            "the processes do not start from the same point (this one: epoch {}, batch {}, step {}): they resumed from different checkpoints, or some from none; every process must read the same checkpoint (a file system they all share, or the same --resume PATH)",
            fit.state.epoch, fit.state.batch, fit.state.global_step
        )));
    }
    if fit.args.sync_batchnorm {
        fit.strategy.sync_batchnorm()?;
    }
    if let Some(k) = fit.args.fast_dev_run.batches() {
        console::note(format!(
            "fast_dev_run: {k} batch(es) of train, val and test, no checkpoints, no logs"
        ));
    }
    fit.interrupt = Interrupt::install().ok();
    let n = fit.train_batches()?;
    fit.hook(n, |c, ctx| c.on_fit_start(ctx))?;
    if !fit.state.resumed {
        sanity_check(fit)?;
    }
    let interrupted = epochs(fit)?;
    fit.interrupt = None;
    if interrupted {
        return interrupt(fit);
    }
    // The losses since the last logged row: a run does not end in success on a NaN.
    fit.check_finite_loss()?;
    let n = fit.train_batches()?;
    fit.hook(n, |c, ctx| c.on_fit_end(ctx))?;
    write_pending(fit, false)?;
    fit.strategy.barrier()?;
    let differed = fit.strategy.sync_model(fit.parts.model.as_mut())?;
    let world = fit.strategy.world_size();
    if world > 1 {
        console::note(if differed {
            format!(
                "the weights of the {world} processes differed at the end of training (batch norm's running statistics without sync_batchnorm, or best weights a callback restored on rank 0): rank 0's were given to every process"
            )
        } else {
            format!("the weights of the {world} processes are identical at the end of training")
        });
    }
    let test_metrics = test_after_fit(fit)?;
    fit.logs.flush()?;
    let (args, state) = (fit.args, &fit.state);
    let stopped_early = state.stop.clone().or_else(|| {
        (state.steps_exhausted(args) && args.epochs().is_some_and(|e| state.epoch < e))
            .then(|| format!("max_steps {} reached", state.global_step))
    });
    if let Some(reason) = &stopped_early {
        console::note(format!("stopped: {reason}"));
    }
    fit.strategy.teardown()?;
    Ok(report(fit, false, stopped_early, test_metrics))
}

/// Epochs until a limit or a stop request ends training; whether a signal interrupted them.
fn epochs(fit: &mut Fit<'_>) -> Result<bool> {
    loop {
        // Every process agrees at each epoch's start: a stop request (a timer's, say) or a
        // signal in any of them.
        let mut flags = [fit.state.stop.is_some(), fit.interrupt_requested()];
        fit.strategy.reduce_any(&mut flags)?;
        if flags[0] && fit.state.stop.is_none() {
            fit.state
                .request_stop("another process asked to stop".into());
        }
        if flags[1] {
            return Ok(true);
        }
        if fit.state.epochs_exhausted(fit.args) || fit.state.steps_exhausted(fit.args) {
            return Ok(false);
        }
        if let Some(reason) = &fit.state.stop {
            if fit.state.may_stop(fit.args, fit.state.epoch) {
                return Ok(false);
            }
            if !fit.state.min_epochs_noted {
                console::note(format!(
                    "{reason}, but min_epochs is {}: training goes on",
                    fit.args.min_epochs
                ));
                fit.state.min_epochs_noted = true;
            }
        }
        if let EpochEnd::Interrupted = epoch::run(fit)? {
            return Ok(true);
        }
    }
}

/// What the fit reports to the runner.
fn report(
    fit: &Fit<'_>,
    interrupted: bool,
    stopped_early: Option<String>,
    test_metrics: BTreeMap<String, f64>,
) -> FitReport {
    let saves = &fit.saves;
    FitReport {
        final_metrics: fit.logs.latest.clone(),
        best_metrics: saves.best_metrics.clone(),
        monitor: saves.best.as_ref().map(|b| b.monitor.clone()),
        best_epoch: saves.best_epoch,
        epochs: fit.state.epoch,
        global_step: fit.state.global_step,
        best_checkpoint: saves.best.as_ref().map(|b| b.path.clone()),
        last_checkpoint: saves.last.clone(),
        stopped_early,
        interrupted,
        test_metrics,
        epoch_seconds: fit.state.epoch_seconds.clone(),
        history: fit.state.history.clone(),
        step_profile: fit.profile.mean_micros(),
        trainable_parameters: fit
            .parts
            .model
            .parameters()
            .iter()
            .filter(|p| p.trainable)
            .map(|p| p.shape.iter().product::<usize>())
            .sum(),
    }
}

/// A signal stopped the loop at a consistent point: write a checkpoint to resume from.
fn interrupt(fit: &mut Fit<'_>) -> Result<FitReport> {
    let path = fit
        .run
        .dir
        .join("checkpoints")
        .join("interrupted.safetensors");
    fit.saves.saves.push(SaveRequest {
        path: path.clone(),
        weights_only: false,
    });
    write_pending(fit, true)?;
    fit.logs.flush()?;
    console::note(format!(
        "interrupted at epoch {}, batch {} of the epoch, step {}; checkpoint {}",
        fit.state.epoch,
        fit.state.batch,
        fit.state.global_step,
        path.display()
    ));
    fit.strategy.teardown()?;
    Ok(report(
        fit,
        true,
        Some("interrupted by a signal".into()),
        BTreeMap::new(),
    ))
}

/// Training failed: tell the callbacks, write what they ask for, flush the logs.
fn fail(fit: &mut Fit<'_>, error: StokerError) -> StokerError {
    fit.failing = true;
    let message = error.to_string();
    let n = fit.train_batches().unwrap_or(0);
    let hooks = fit.hook(n, |c, ctx| c.on_exception(ctx, &message));
    let saved = write_pending(fit, true);
    let flushed = fit.logs.flush();
    let torn_down = fit.strategy.teardown();
    for problem in [hooks.err(), saved.err(), flushed.err(), torn_down.err()]
        .into_iter()
        .flatten()
    {
        console::warn(format!("while handling the failure: {problem}"));
    }
    error
}
