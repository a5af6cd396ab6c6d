//! `--resume last | best | PATH` and `auto_resume`: finding the checkpoint, checking it against
//! the config, and finding the run directory it continues.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use stoker::checkpoint::{self, CheckpointState};
use stoker::experiment::Experiment;
use stoker::run::latest_version;
use stoker::trainer::Resume;

/// A resume that cannot go ahead, with a hint.
pub struct Refusal {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl Refusal {
    fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Refusal {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// A checkpoint written by a data-parallel run of another number of processes than
/// `world_size`. In the middle of an epoch it is refused: each process's share of the epoch,
/// the sampler's padding and the training metrics' sums depend on the number, so the rest of
/// the epoch could not be trained as it would have been. At an epoch's end, with
/// `allow_change`, the weights, the optimizer state and the schedule continue, and the next
/// epochs are shared by the new number of processes: the note that says so is returned.
pub fn check_world_size(
    resume: &Resume,
    world_size: usize,
    allow_change: bool,
) -> Result<Option<String>, Refusal> {
    let saved = resume.state.resume.as_ref().map_or(1, |r| r.world_size);
    if saved == world_size {
        return Ok(None);
    }
    let how = |n: usize| match n {
        1 => "1 process".to_string(),
        n => format!("{n} processes"),
    };
    let written = format!(
        "{} was written by a run of {}, and this run has {}",
        resume.path.display(),
        how(saved),
        how(world_size)
    );
    if resume.state.batch > 0 {
        return Err(Refusal::new(
            format!(
                "{written}: it was written in the middle of epoch {}, whose samples {} share",
                resume.state.epoch,
                how(saved)
            ),
            format!(
                "resume with {} (`cargo xtask train CONFIG --nproc {saved} --resume ...`), or from a checkpoint at an epoch's end; the weights load in any number of processes with `stoker eval` or `stoker predict`",
                how(saved)
            ),
        ));
    }
    if !allow_change {
        return Err(Refusal::new(
            format!("{written}: the global batch changes with the number of processes"),
            format!(
                "resume with {} (`--nproc {saved}`) to continue the run as it was, or add --allow-config-change to go on from epoch {} with {}",
                how(saved),
                resume.state.epoch,
                how(world_size)
            ),
        ));
    }
    Ok(Some(format!(
        "{written}: its weights, optimizer state and schedule go on from epoch {}, whose samples {} share (each its batch of the config)",
        resume.state.epoch,
        how(world_size)
    )))
}

/// Loads a checkpoint to resume from, refusing weights-only files.
pub fn load(path: &Path) -> Result<Resume, Refusal> {
    let checkpoint = checkpoint::load(path)
        .map_err(|e| Refusal::new(e.to_string(), "pass a checkpoint written by `stoker train`"))?;
    let state = CheckpointState::from_checkpoint(path, &checkpoint)
        .map_err(|e| Refusal::new(e.to_string(), "pass a checkpoint written by `stoker train`"))?;
    if state.resume.is_none() {
        return Err(Refusal::new(
            format!(
                "{} holds the model weights only (save_weights_only) and cannot be resumed from",
                path.display()
            ),
            "resume from a full checkpoint (last.safetensors, or a ModelCheckpoint without save_weights_only); use this one with `eval` or `predict`",
        ));
    }
    Ok(Resume {
        path: path.to_path_buf(),
        checkpoint,
        state,
    })
}

/// The global step of a resumable checkpoint; `Ok(None)` for a weights-only one, `Err` with
/// the reason for a file that cannot be read as a checkpoint (truncated, corrupt).
fn global_step(path: &Path) -> Result<Option<usize>, String> {
    let checkpoint = checkpoint::load(path).map_err(|e| e.to_string())?;
    let state = CheckpointState::from_checkpoint(path, &checkpoint).map_err(|e| e.to_string())?;
    Ok(state.resume.is_some().then_some(state.global_step))
}

/// A checkpoint file passed over because it cannot be read.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// Why it cannot be read.
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.path.display().to_string();
        let reason = self
            .reason
            .strip_prefix(&format!("{path}: "))
            .unwrap_or(&self.reason);
        write!(f, "skipped {path}, which cannot be read: {reason}")
    }
}

/// The checkpoint a resume starts from, with the files passed over to find it.
#[derive(Debug, Clone)]
pub struct Found {
    /// The checkpoint.
    pub path: PathBuf,
    /// Unreadable checkpoints of the run that were passed over (a truncated `last.safetensors`).
    pub skipped: Vec<Skipped>,
}

/// The experiment's newest run directory (`version_<N>` with the highest N), if any.
pub fn newest_run_dir(experiment: &Experiment) -> Option<PathBuf> {
    let experiment_dir = experiment.environment.output_dir.join(&experiment.name);
    latest_version(&experiment_dir).map(|v| experiment_dir.join(format!("version_{v}")))
}

/// The newest resumable checkpoint of the experiment's newest run: `last.safetensors` when
/// there is one, else the one with the most steps; and the unreadable files passed over.
pub fn newest(experiment: &Experiment) -> (Option<PathBuf>, Vec<Skipped>) {
    let Some(run_dir) = newest_run_dir(experiment) else {
        return (None, Vec::new());
    };
    let dir = run_dir.join("checkpoints");
    let last = dir.join("last.safetensors");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return (None, Vec::new());
    };
    let mut candidates: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    candidates.sort();
    let mut best: Option<(usize, PathBuf)> = None;
    let mut skipped = Vec::new();
    for path in candidates {
        let step = match global_step(&path) {
            Ok(Some(step)) => step,
            Ok(None) => continue,
            Err(reason) => {
                skipped.push(Skipped { path, reason });
                continue;
            }
        };
        let is_last = path == last;
        match &best {
            Some((s, p)) if *s > step || (*s == step && *p == last && !is_last) => {}
            _ => best = Some((step, path)),
        }
    }
    (best.map(|(_, p)| p), skipped)
}

/// Resolves `last`, `best` or a path.
pub fn resolve(which: &str, experiment: &Experiment) -> Result<Found, Refusal> {
    let experiment_dir = experiment.environment.output_dir.join(&experiment.name);
    match which {
        "last" => {
            let (path, skipped) = newest(experiment);
            match path {
                Some(path) => Ok(Found { path, skipped }),
                None => Err(Refusal::new(
                    format!(
                        "`--resume last`: no resumable checkpoint under {}{}",
                        experiment_dir.display(),
                        skipped
                            .iter()
                            .map(|s| format!("\n  {s}"))
                            .collect::<String>()
                    ),
                    "train without --resume first, or give the checkpoint's path",
                )),
            }
        }
        "best" => {
            let newest = resolve("last", experiment)?;
            let resume = load(&newest.path)?;
            resume.state.resume.and_then(|r| r.best_checkpoint).filter(|p| p.is_file()).map(|path| Found { path, skipped: newest.skipped }).ok_or_else(|| {
                Refusal::new(
                    format!("`--resume best`: the run of {} has no best checkpoint", newest.path.display()),
                    "a best checkpoint needs a ModelCheckpoint with a monitor; resume from `last` or a path",
                )
            })
        }
        path => {
            let path = PathBuf::from(path);
            if path.is_file() {
                Ok(Found {
                    path,
                    skipped: Vec::new(),
                })
            } else {
                Err(Refusal::new(
                    format!("checkpoint {} does not exist", path.display()),
                    "use --resume last, best, or a checkpoint file",
                ))
            }
        }
    }
}

/// Flattens a YAML document into `path -> value` lines.
fn flatten(value: &serde_yaml::Value, prefix: String, out: &mut BTreeMap<String, String>) {
    match value {
        serde_yaml::Value::Mapping(m) => {
            for (k, v) in m {
                let key = k
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{k:?}"));
                let path = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(v, path, out);
            }
        }
        serde_yaml::Value::Sequence(items) if items.iter().any(|i| i.is_mapping()) => {
            for (i, v) in items.iter().enumerate() {
                flatten(v, format!("{prefix}[{i}]"), out);
            }
        }
        other => {
            let text = serde_json::to_string(other).unwrap_or_default();
            out.insert(prefix, text);
        }
    }
}

/// Keys that may differ without changing the run (where it is written).
const IGNORED: [&str; 1] = ["environment.output_dir"];

/// The differences between the checkpoint's config and the current one, as `path: old -> new`.
pub fn config_diff(saved: &str, current: &str) -> Vec<(String, String)> {
    let parse = |text: &str| {
        let mut out = BTreeMap::new();
        if let Ok(value) = serde_yaml::from_str::<serde_yaml::Value>(text) {
            flatten(&value, String::new(), &mut out);
        }
        out
    };
    let (old, new) = (parse(saved), parse(current));
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !IGNORED.contains(&k.as_str()))
        .filter_map(|k| {
            let (a, b) = (old.get(k), new.get(k));
            (a != b).then(|| {
                let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(absent)".into());
                (k.clone(), format!("{} -> {}", show(a), show(b)))
            })
        })
        .collect()
}

/// Whether a difference can never work on resume: the model's architecture, or another
/// optimizer (whose state has another form).
pub fn incompatible(path: &str) -> bool {
    path.starts_with("model.") || path == "optimizer.name"
}

/// Keys whose change alters only what is still to come, never what was trained: the limits of
/// the run, validation and logging cadence, the progress bar and model summary, and the threads
/// that prepare batches. A resume accepts them with a note.
const CONTINUING: [&str; 17] = [
    "trainer.args.max_epochs",
    "trainer.args.min_epochs",
    "trainer.args.max_steps",
    "trainer.args.max_time",
    "trainer.args.limit_train_batches",
    "trainer.args.limit_val_batches",
    "trainer.args.limit_test_batches",
    "trainer.args.check_val_every_n_epoch",
    "trainer.args.val_check_interval",
    "trainer.args.num_sanity_val_steps",
    "trainer.args.test_after_fit",
    "trainer.args.log_every_n_steps",
    "trainer.args.enable_progress_bar",
    "trainer.args.progress_bar_metrics",
    "trainer.args.enable_model_summary",
    "trainer.args.num_workers",
    "trainer.args.prefetch_factor",
];

/// Whether a difference changes only what is still to train (see [`CONTINUING`]).
pub fn continuing(path: &str) -> bool {
    CONTINUING.contains(&path) || path.starts_with("trainer.args.progress_bar_metrics[")
}

/// Keys a newer stoker writes into `config.yaml` with the value that means what the run did
/// before they existed: a checkpoint written without them resumes as if it had them.
const ADDED_WITH_DEFAULTS: [(&str, &str); 9] = [
    ("trainer.args.devices", "null"),
    ("trainer.args.num_nodes", "1"),
    ("trainer.args.strategy", "\"auto\""),
    ("trainer.args.precision", "\"32-true\""),
    ("trainer.args.sync_batchnorm", "false"),
    ("trainer.args.mixed_precision", "false"),
    ("trainer.args.auto_lr_find", "false"),
    ("trainer.args.auto_scale_batch_size", "null"),
    ("trainer.args.gradient_checkpointing", "false"),
];

/// Whether a difference is a key added since the checkpoint was written, at its default.
fn added_at_default(path: &str, change: &str) -> bool {
    ADDED_WITH_DEFAULTS
        .iter()
        .any(|(key, default)| path == *key && change == format!("(absent) -> {default}"))
}

/// Checks a checkpoint's config against the experiment. Returns the accepted changes, as
/// `path: old -> new`, that alter only what is still to train (say them to the user).
pub fn check_config(
    resume: &Resume,
    experiment: &Experiment,
    allow_change: bool,
) -> Result<Vec<String>, Refusal> {
    let mut diff = config_diff(&resume.state.config, &experiment.resolved_yaml());
    diff.retain(|(k, change)| !added_at_default(k, change));
    let line = |(k, d): &(String, String)| format!("{k}: {d}");
    let accepted: Vec<String> = diff
        .iter()
        .filter(|(k, _)| continuing(k))
        .map(line)
        .collect();
    diff.retain(|(k, _)| !continuing(k));
    if diff.is_empty() {
        return Ok(accepted);
    }
    let listing = diff
        .iter()
        .map(|d| format!("    {}", line(d)))
        .collect::<Vec<_>>()
        .join("\n");
    let hard: Vec<&String> = diff
        .iter()
        .map(|(k, _)| k)
        .filter(|k| incompatible(k))
        .collect();
    if !hard.is_empty() {
        return Err(Refusal::new(
            format!(
                "the config differs from the checkpoint's in what a resume cannot change:\n{listing}"
            ),
            format!(
                "{} cannot change on resume (the weights or the optimizer state would not fit); start a new run instead",
                hard.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if allow_change {
        println!("stoker: resuming with a changed config:\n{listing}");
        return Ok(accepted);
    }
    Err(Refusal::new(
        format!(
            "the config differs from the one {} was written with:\n{listing}",
            resume.path.display()
        ),
        "resume with the same config, or pass --allow-config-change to accept these changes (the run's limits, logging and validation cadence, progress bar and workers may change without it)",
    ))
}

/// The run directory a checkpoint belongs to (`<run>/checkpoints/x.safetensors`), if any.
pub fn run_dir_of(checkpoint: &Path) -> Option<(PathBuf, usize)> {
    let dir = std::path::absolute(checkpoint)
        .ok()?
        .parent()?
        .parent()?
        .to_path_buf();
    let version = dir
        .file_name()?
        .to_str()?
        .strip_prefix("version_")?
        .parse()
        .ok()?;
    dir.join("config.yaml").is_file().then_some((dir, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_changed_keys_and_ignores_the_output_dir() {
        let old = "environment: {seed: 1, output_dir: runs}\ntrainer: {name: T, args: {max_epochs: 3}}\nmetrics: [{name: loss, args: {}}]\n";
        let new = "environment: {seed: 1, output_dir: elsewhere}\ntrainer: {name: T, args: {max_epochs: 5}}\nmetrics: [{name: loss, args: {}}, {name: mse, args: {}}]\n";
        let diff = config_diff(old, new);
        assert_eq!(
            diff,
            vec![
                (
                    "metrics[1].name".to_string(),
                    "(absent) -> \"mse\"".to_string()
                ),
                ("trainer.args.max_epochs".to_string(), "3 -> 5".to_string()),
            ]
        );
        assert!(incompatible("model.args.sizes"));

        // A checkpoint from before `strategy` and `precision` were written resumes as if it had
        // their defaults; another value is a change.
        let before = "trainer: {name: T, args: {max_epochs: 3}}\n";
        let now = "trainer: {name: T, args: {max_epochs: 3, strategy: auto, precision: 32-true}}\n";
        let diff = config_diff(before, now);
        assert_eq!(diff.len(), 2);
        assert!(diff.iter().all(|(k, c)| added_at_default(k, c)), "{diff:?}");
        let other = now.replace("32-true", "bf16-mixed");
        let diff = config_diff(before, &other);
        assert!(
            !diff.iter().all(|(k, c)| added_at_default(k, c)),
            "{diff:?}"
        );
        assert!(incompatible("optimizer.name"));
        assert!(!incompatible("optimizer.args.lr"));
        assert!(continuing("trainer.args.max_epochs"));
        assert!(continuing("trainer.args.progress_bar_metrics[0]"));
        assert!(!continuing("trainer.args.accumulate_grad_batches"));
        assert!(!continuing("optimizer.args.lr"));
    }
}
