//! A resume that changes the run's length (`max_epochs`, `max_steps`, `limit_train_batches`):
//! whether the learning-rate schedule depends on it, and how it continues if so.

use std::collections::BTreeMap;

use stoker::experiment::Experiment;
use stoker::schedule::{Horizon, LrScheduler};
use stoker::spec::BuildContext;
use stoker::trainer::{Resume, TrainingParts};

/// The most steps compared between the old and the new plan.
const COMPARED_STEPS: usize = 100_000;

fn plan(h: &Horizon) -> String {
    match (h.total_steps, h.epochs) {
        (Some(s), Some(e)) => format!("{s} steps ({e} epochs)"),
        (Some(s), None) => format!("{s} steps"),
        (None, Some(e)) => format!("{e} epochs"),
        (None, None) => "no set length".into(),
    }
}

/// `experiment`'s scheduler built for `horizon` and restored to the checkpoint's position.
fn restored(
    experiment: &Experiment,
    parts: &TrainingParts,
    resume: &Resume,
    horizon: Horizon,
) -> Option<Box<dyn LrScheduler>> {
    let ctx = BuildContext {
        device: parts.device.clone(),
        seed: parts.seed,
        data: Some(parts.data.info().clone()),
        parameters: Some(
            parts
                .model
                .parameters()
                .into_iter()
                .map(|p| p.path)
                .collect(),
        ),
        base_lr: Some(experiment.optimizer.spec.lr()),
        horizon: Some(horizon),
    };
    let mut scheduler = experiment.scheduler.spec.build(&ctx).ok()?;
    scheduler
        .load_state(&resume.state.resume.as_ref()?.scheduler)
        .ok()?;
    Some(scheduler)
}

/// The note to give when the checkpoint's config planned another length of training than the
/// experiment and the schedule's learning rates depend on it; `None` when nothing changes.
pub fn note(experiment: &Experiment, parts: &TrainingParts, resume: &Resume) -> Option<String> {
    let saved = crate::assemble::load_yaml(&resume.state.config, &[]).ok()?;
    let info = parts.data.info();
    let (old, new) = (
        saved.trainer.spec.horizon(info),
        experiment.trainer.spec.horizon(info),
    );
    if old == new {
        return None;
    }
    // Each plan with its own schedule: the checkpoint's config's and the current one's.
    let mut before = restored(&saved, parts, resume, old)?;
    let mut after = restored(experiment, parts, resume, new)?;
    let (old_lr, new_lr) = (before.lr(), after.lr());
    let step = resume.state.global_step;
    let end = old.total_steps.max(new.total_steps).unwrap_or(step);
    let mut differs = old_lr != new_lr;
    for k in step..end.min(step + COMPARED_STEPS) {
        if differs {
            break;
        }
        let none = BTreeMap::new();
        for (scheduler, plan) in [(&mut before, &old), (&mut after, &new)] {
            scheduler.on_optimizer_step();
            // An epoch ends on each plan's own boundaries; a schedule driven by metrics
            // (plateau) does not depend on the length.
            if (k + 1) % plan.steps_per_epoch.max(1) == 0 && scheduler.on_epoch_end(&none).is_err()
            {
                return None;
            }
        }
        differs = before.lr() != after.lr();
    }
    differs.then(|| {
        format!(
            "the learning-rate schedule `{}` follows the run's length, which was {} and is now {}: it continues from optimizer step {step} on the new plan (learning rate {new_lr:.4e} now, {old_lr:.4e} on the old plan)",
            experiment.scheduler.name,
            plan(&old),
            plan(&new),
        )
    })
}
