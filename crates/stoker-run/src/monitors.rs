//! Monitors checked before training: every `monitor` of a callback or the scheduler
//! (`ModelCheckpoint`, `EarlyStopping`, `plateau`) must name a value the run will log, or the
//! mistake would surface only after an epoch of training.

use stoker::config::{ConfigError, PathStep};
use stoker::data::{Split, has_validation};
use stoker::experiment::Experiment;
use stoker::trainer::{Trainer, TrainingParts};

/// Every `monitor: NAME` under `value`, with its path; not where the same arguments say
/// `strict: false` (EarlyStopping's way of accepting a monitor that is not logged).
fn monitors_in(
    value: &serde_yaml::Value,
    path: Vec<PathStep>,
    out: &mut Vec<(Vec<PathStep>, String)>,
) {
    match value {
        serde_yaml::Value::Mapping(map) => {
            let lenient = map.get("strict") == Some(&serde_yaml::Value::Bool(false));
            for (key, child) in map {
                let Some(key) = key.as_str() else { continue };
                let mut at = path.clone();
                at.push(PathStep::Key(key.to_string()));
                match (key, child) {
                    ("monitor", serde_yaml::Value::String(name)) => {
                        if !lenient {
                            out.push((at, name.clone()));
                        }
                    }
                    _ => monitors_in(child, at, out),
                }
            }
        }
        serde_yaml::Value::Sequence(items) => {
            for (i, child) in items.iter().enumerate() {
                let mut at = path.clone();
                at.push(PathStep::Index(i));
                monitors_in(child, at, out);
            }
        }
        _ => {}
    }
}

/// The names each epoch logs: the metrics' names (`metric_names`, from the trial batch)
/// prefixed with the training split's and, when the data validates, the validation split's and
/// each named validation set's (`val_<name>`).
pub fn epoch_names(metric_names: &[String], parts: &TrainingParts) -> Vec<String> {
    let mut prefixes = vec![Split::Train.to_string()];
    if has_validation(parts.data.as_ref()) {
        prefixes.push(Split::Val.to_string());
    }
    for (name, _) in parts.data.named_vals() {
        prefixes.push(format!("val_{name}"));
    }
    let mut names: Vec<String> = prefixes
        .iter()
        .flat_map(|prefix| metric_names.iter().map(move |n| format!("{prefix}_{n}")))
        .collect();
    // ModelCheckpoint ranks by `epoch` and `step` too.
    names.extend(["train_loss_step", "lr", "epoch", "step"].map(String::from));
    names
}

/// Refuses a monitor that names nothing the run logs: not a metric of a split that is
/// evaluated, nor a value the trainer or a callback says it logs.
pub fn check(
    experiment: &Experiment,
    parts: &TrainingParts,
    trainer: &dyn Trainer,
    logged: &[String],
) -> Result<(), ConfigError> {
    let Ok(config) = serde_yaml::from_str::<serde_yaml::Value>(&experiment.resolved_yaml()) else {
        return Ok(());
    };
    let mut monitors = Vec::new();
    for key in ["callbacks", "scheduler"] {
        if let Some(value) = config.get(key) {
            monitors_in(value, vec![PathStep::Key(key.into())], &mut monitors);
        }
    }
    let several = stoker::training::strategy::environment::process_world_size() > 1;
    for (path, name) in monitors {
        // With several processes every decision on a monitor must be the same in each: only
        // the metrics (reduced over the processes), lr, epoch and step are.
        let elsewhere = trainer.logs(&name) || parts.callbacks.iter().any(|(_, c)| c.logs(&name));
        let own = name == "train_loss_step" || (!logged.contains(&name) && elsewhere);
        if several && own && !["lr", "epoch", "step"].contains(&name.as_str()) {
            return Err(experiment
                .raw
                .error_at(
                    &path,
                    format!("`{name}` is each process's own value in data-parallel training, so the processes would decide differently on it"),
                )
                .hint(format!(
                    "monitor a metric, reduced over every process: {}",
                    logged
                        .iter()
                        .filter(|n| *n != "train_loss_step")
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
        }
        let known = logged.contains(&name)
            || trainer.logs(&name)
            || parts.callbacks.iter().any(|(_, c)| c.logs(&name));
        if known {
            continue;
        }
        let why = if name.starts_with("val_") && !has_validation(parts.data.as_ref()) {
            " (the data has no validation split)"
        } else {
            ""
        };
        return Err(experiment
            .raw
            .error_at(
                &path,
                format!("`{name}` is monitored, but no configured metric or loss produces it{why}, so it would fail after the first epoch"),
            )
            .hint(format!(
                "monitor one of the values the run logs: {}; or add the metric that produces it to `metrics`",
                logged.join(", ")
            )));
    }
    Ok(())
}
