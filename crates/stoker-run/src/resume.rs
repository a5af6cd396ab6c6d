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

fn global_step(path: &Path) -> Option<usize> {
    let checkpoint = checkpoint::load(path).ok()?;
    let state = CheckpointState::from_checkpoint(path, &checkpoint).ok()?;
    state.resume.as_ref()?;
    Some(state.global_step)
}

/// The newest resumable checkpoint of the experiment's newest run: `last.safetensors` when
/// there is one, else the one with the most steps.
pub fn newest(experiment: &Experiment) -> Option<PathBuf> {
    let experiment_dir = experiment.environment.output_dir.join(&experiment.name);
    let version = latest_version(&experiment_dir)?;
    let dir = experiment_dir
        .join(format!("version_{version}"))
        .join("checkpoints");
    let last = dir.join("last.safetensors");
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    candidates.sort();
    let mut best: Option<(usize, PathBuf)> = None;
    for path in candidates {
        if let Some(step) = global_step(&path) {
            let is_last = path == last;
            match &best {
                Some((s, p)) if *s > step || (*s == step && *p == last && !is_last) => {}
                _ => best = Some((step, path)),
            }
        }
    }
    best.map(|(_, p)| p)
}

/// Resolves `last`, `best` or a path.
pub fn resolve(which: &str, experiment: &Experiment) -> Result<PathBuf, Refusal> {
    let experiment_dir = experiment.environment.output_dir.join(&experiment.name);
    match which {
        "last" => newest(experiment).ok_or_else(|| {
            Refusal::new(
                format!(
                    "`--resume last`: no resumable checkpoint under {}",
                    experiment_dir.display()
                ),
                "train without --resume first, or give the checkpoint's path",
            )
        }),
        "best" => {
            let newest = resolve("last", experiment)?;
            let resume = load(&newest)?;
            resume.state.resume.and_then(|r| r.best_checkpoint).filter(|p| p.is_file()).ok_or_else(|| {
                Refusal::new(
                    format!("`--resume best`: the run of {} has no best checkpoint", newest.display()),
                    "a best checkpoint needs a ModelCheckpoint with a monitor; resume from `last` or a path",
                )
            })
        }
        path => {
            let path = PathBuf::from(path);
            if path.is_file() {
                Ok(path)
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

/// Whether a difference cannot change what is trained: how many threads prepare batches.
pub fn harmless(path: &str) -> bool {
    matches!(
        path,
        "trainer.args.num_workers" | "trainer.args.prefetch_factor"
    )
}

/// Keys a newer stoker writes into `config.yaml` with the value that means what the run did
/// before they existed: a checkpoint written without them resumes as if it had them.
const ADDED_WITH_DEFAULTS: [(&str, &str); 2] = [
    ("trainer.args.strategy", "\"auto\""),
    ("trainer.args.precision", "\"32-true\""),
];

/// Whether a difference is a key added since the checkpoint was written, at its default.
fn added_at_default(path: &str, change: &str) -> bool {
    ADDED_WITH_DEFAULTS
        .iter()
        .any(|(key, default)| path == *key && change == format!("(absent) -> {default}"))
}

/// Checks a checkpoint's config against the experiment.
pub fn check_config(
    resume: &Resume,
    experiment: &Experiment,
    allow_change: bool,
) -> Result<(), Refusal> {
    let mut diff = config_diff(&resume.state.config, &experiment.resolved_yaml());
    diff.retain(|(k, change)| !harmless(k) && !added_at_default(k, change));
    if diff.is_empty() {
        return Ok(());
    }
    let listing = diff
        .iter()
        .map(|(k, d)| format!("    {k}: {d}"))
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
        return Ok(());
    }
    Err(Refusal::new(
        format!(
            "the config differs from the one {} was written with:\n{listing}",
            resume.path.display()
        ),
        "resume with the same config, or pass --allow-config-change to accept these changes",
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
    }
}
