//! The checkpoint connector: what a checkpoint holds (the weights, the optimizer, and every
//! piece of state an exact resume needs), writing the pending requests, and restoring a fit from
//! a checkpoint.

use stoker::checkpoint::{self, CheckpointState, ResumeState};
use stoker::console;
use stoker::error::{Result, StokerError};
use stoker::fs::write_atomic;
use stoker::trainer::Resume;

use crate::connectors::callbacks::CallbackStates;
use crate::context::Fit;

/// The bytes of a checkpoint of the current state (the weights alone when `weights_only`).
fn checkpoint_bytes(fit: &mut Fit<'_>, weights_only: bool) -> Result<Vec<u8>> {
    let weights = fit.parts.model.to_safetensors()?;
    let (resume, optimizer) = if weights_only {
        (None, None)
    } else {
        let callbacks = fit.callbacks.states()?;
        let mut train_metrics = Vec::new();
        for metric in &fit.parts.metrics.train {
            train_metrics.push(metric.state()?);
        }
        let optimizer = fit.parts.optimizer.into_bytes().map_err(|e| {
            StokerError::msg(format!("the optimizer state does not serialize: {e}"))
        })?;
        let resume = ResumeState {
            param_ids: fit.parts.model.param_ids(),
            scheduler: fit.parts.scheduler.state(),
            train_metrics,
            callbacks: callbacks.configured,
            implicit_callbacks: callbacks.implicit,
            loggers: fit.logs.loggers.states(),
            best_checkpoint: fit.saves.best.as_ref().map(|b| b.path.clone()),
            elapsed_seconds: fit.state.elapsed(),
            step: fit.step.state()?,
            precision: fit.precision.state(),
            world_size: fit.strategy.world_size(),
        };
        (Some(resume), Some(optimizer.to_vec()))
    };
    let state = CheckpointState {
        epoch: fit.state.epoch,
        batch: fit.state.batch,
        global_step: fit.state.global_step,
        seed: fit.parts.seed,
        config: fit.run.config_yaml.clone(),
        metrics: fit.logs.latest.clone(),
        resume,
    };
    let state = serde_json::to_value(&state).map_err(|e| StokerError::msg(e.to_string()))?;
    checkpoint::to_bytes(&weights, optimizer.as_deref(), &state)
}

/// Before a checkpoint in the middle of an epoch, which keeps the training metrics' sums so
/// far: with several processes, rank 0 takes every process's sums and the others start afresh,
/// so that the epoch's value counts every sample once with or without a resume. Every process
/// makes the same requests, so every process takes part; not after a failure, which one
/// process meets alone (its checkpoint then holds rank 0's sums only).
fn gather_train_metrics(fit: &mut Fit<'_>) -> Result<()> {
    if fit.strategy.world_size() == 1 || fit.failing {
        return Ok(());
    }
    fit.strategy.reduce_metrics(&mut fit.parts.metrics.train)?;
    if !fit.strategy.is_global_zero() {
        for metric in fit.parts.metrics.train.iter_mut() {
            metric.reset();
        }
    }
    Ok(())
}

/// Writes the checkpoints callbacks asked for, then deletes what they asked to delete. Nothing
/// is written on a process other than the global rank 0, nor in a fast dev run unless `force`
/// (the checkpoint of an interrupt or a failure).
pub fn write_pending(fit: &mut Fit<'_>, force: bool) -> Result<()> {
    if fit.saves.is_empty() {
        return Ok(());
    }
    let saves = std::mem::take(&mut fit.saves.saves);
    let deletes = std::mem::take(&mut fit.saves.deletes);
    if fit.state.batch > 0 && saves.iter().any(|s| !s.weights_only) {
        gather_train_metrics(fit)?;
    }
    if !fit.strategy.is_global_zero() || (!fit.saves.writing && !force) {
        return Ok(());
    }
    if fit.watch.tripped() {
        let paths: Vec<String> = saves.iter().map(|s| s.path.display().to_string()).collect();
        console::note(format!(
            "not written: {} (the training loss or the weights became non-finite)",
            paths.join(", ")
        ));
        return Ok(());
    }
    fit.check_finite_loss()?;
    fit.logs.flush()?;
    let (mut full, mut light) = (None, None);
    let mut weights_checked = false;
    for request in &saves {
        let slot = if request.weights_only {
            &mut light
        } else {
            &mut full
        };
        if slot.is_none() {
            let bytes = checkpoint_bytes(fit, request.weights_only)?;
            // Both forms hold the same weights: checked once, with the first one made.
            if !weights_checked {
                fit.check_finite_weights(&bytes)?;
                weights_checked = true;
            }
            *slot = Some(bytes);
        }
        if let Some(dir) = request.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StokerError::io(dir, e))?;
        }
        write_atomic(&request.path, slot.as_ref().expect("just filled"))?;
        if !request.weights_only {
            fit.saves.last = Some(request.path.clone());
        }
    }
    for path in deletes {
        if saves.iter().any(|s| s.path == path) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StokerError::io(&path, e)),
        }
    }
    Ok(())
}

/// Restores the fit from the checkpoint of `resume` (its optimizer state was loaded when the
/// fit was set up): the weights, every component's state, the loggers and the position.
pub fn restore(fit: &mut Fit<'_>, resume: Resume) -> Result<()> {
    let path = resume.path.display().to_string();
    let state = resume.state;
    let saved = state.resume.ok_or_else(|| {
        StokerError::msg(format!(
            "{path} holds weights only and cannot be resumed from"
        ))
    })?;
    let parts = &mut fit.parts;
    parts.model.load_safetensors(resume.checkpoint.weights)?;
    parts.model.set_param_ids(&saved.param_ids)?;
    parts.scheduler.load_state(&saved.scheduler)?;
    if saved.train_metrics.len() != parts.metrics.train.len() {
        return Err(StokerError::msg(format!(
            "{path}: it has {} training metrics, the config {}",
            saved.train_metrics.len(),
            parts.metrics.train.len()
        )));
    }
    // The sums of every process are in the checkpoint (see `gather_train_metrics`): rank 0
    // takes them, the others start the rest of the epoch from zero (keeping what the state
    // says of its shape, such as the loss's term names).
    let rank_zero = fit.strategy.is_global_zero();
    for (metric, s) in parts.metrics.train.iter_mut().zip(&saved.train_metrics) {
        metric.load_state(s, &parts.device)?;
        if !rank_zero {
            metric.reset();
        }
    }
    fit.callbacks.restore(
        &CallbackStates {
            configured: saved.callbacks,
            implicit: saved.implicit_callbacks,
        },
        &path,
    )?;
    fit.step
        .load_state(&saved.step)
        .map_err(|e| StokerError::msg(format!("{path}: the training step's state: {e}")))?;
    fit.precision
        .load_state(&saved.precision)
        .map_err(|e| StokerError::msg(format!("{path}: the precision's state: {e}")))?;
    let run = fit.run;
    fit.logs.loggers.each(
        |name, logger| match saved.loggers.iter().find(|(n, _)| n == name) {
            Some((_, s)) => logger.resume(run, s),
            None => logger.start(run),
        },
    )?;
    fit.state.epoch = state.epoch;
    fit.state.batch = state.batch;
    fit.state.global_step = state.global_step;
    fit.watch = crate::non_finite::LossWatch::resumed(state.global_step, path.clone());
    fit.state.elapsed_before = saved.elapsed_seconds;
    fit.state.resumed = true;
    fit.logs.latest = state.metrics;
    let best = fit.callbacks.best_checkpoint();
    fit.saves
        .update_best(best, &fit.logs.latest, fit.state.epoch);
    console::note(format!(
        "resumed from {path} at epoch {}, batch {} of the epoch, step {}",
        fit.state.epoch, fit.state.batch, fit.state.global_step
    ));
    Ok(())
}
