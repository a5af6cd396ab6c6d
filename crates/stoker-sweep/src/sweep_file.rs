//! The sweep file: which experiment, what to optimise, how to sample and prune, and the space.
//!
//! ```yaml
//! experiment: configs/bearing_cnn.yaml
//! objective: {metric: val_f1_macro, mode: max}
//! sampler: {name: tpe, args: {seed: 0, n_startup_trials: 5}}
//! pruner: {name: median, args: {n_warmup_epochs: 3}}
//! trials: 30
//! space:
//!   optimizer.args.lr: {log_uniform: [1.0e-4, 1.0e-2]}
//! ```
//!
//! Every mistake is reported before any trial starts, naming the sweep file and the YAML path:
//! [`SweepFile::load`] checks the file itself, [`SweepFile::check_space`] checks the space
//! against the experiment (each space key is a key of the experiment and each of its values
//! resolves), and [`SweepFile::check_objective`] the objective against what the built experiment
//! logs (`stoker sweep` builds it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml::{Mapping, Value};
use stoker::config::ConfigError;
use stoker::registry::{Kind, Named, closest_of, names, parse_nested};
use stoker::spec::{PrunerSpec, SamplerSpec, SpaceSpec};
use stoker::sweep::{Direction, Distribution};
use stoker::{BuildError, duration::WallTime};

/// How a trial's value is taken from the objective's values per epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// The best epoch's (what a `ModelCheckpoint` on the metric keeps).
    Best,
    /// The last epoch's.
    Last,
}

/// What the sweep optimises.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// A value every epoch logs (`val_f1_macro`).
    pub metric: String,
    /// Minimise or maximise.
    pub direction: Direction,
    /// Which epoch's value is the trial's.
    pub reduce: Reduce,
}

/// One parameter of the space.
#[derive(Debug)]
pub struct Param {
    /// The experiment key it sets (`optimizer.args.lr`).
    pub key: String,
    /// Its space type.
    pub spec: Box<dyn SpaceSpec>,
    /// Its distribution.
    pub distribution: Distribution,
}

/// A parsed sweep file.
#[derive(Debug)]
pub struct SweepFile {
    /// The file.
    pub path: PathBuf,
    /// The sweep's name (`name:`, else the file's stem): its folder under `output_dir` and its
    /// study's name.
    pub name: String,
    /// The experiment each trial trains.
    pub experiment: PathBuf,
    /// What to optimise.
    pub objective: Objective,
    /// The sampler, as written.
    pub sampler_name: Named,
    /// The sampler.
    pub sampler: Box<dyn SamplerSpec>,
    /// The pruner, as written.
    pub pruner_name: Named,
    /// The pruner.
    pub pruner: Box<dyn PrunerSpec>,
    /// How many trials the study should hold (a grid: its size unless smaller).
    pub trials: usize,
    /// Start no trial after this long.
    pub timeout: Option<Duration>,
    /// Overrides every trial gets (`trainer.args.max_epochs=20`).
    pub set: Vec<String>,
    /// The parameters, in the file's order.
    pub space: Vec<Param>,
    /// Where the sweep's folder goes (the experiment's `environment.output_dir` unless given).
    pub output_dir: PathBuf,
}

const KEYS: &[&str] = &[
    "name",
    "experiment",
    "objective",
    "sampler",
    "pruner",
    "trials",
    "timeout",
    "set",
    "space",
    "output_dir",
];

struct Errors<'a> {
    file: &'a Path,
}

impl Errors<'_> {
    fn at(&self, path: &str, message: impl Into<String>) -> ConfigError {
        let error = ConfigError::new(self.file.display().to_string(), message);
        if path.is_empty() {
            error
        } else {
            error.at(path)
        }
    }

    fn build(&self, at: &str, e: BuildError) -> ConfigError {
        let path = match &e.arg {
            Some(arg) if arg.starts_with(at) => arg.clone(),
            Some(arg) => format!("{at}.{arg}"),
            None => at.to_string(),
        };
        let error = self.at(&path, e.message);
        match e.hint {
            Some(hint) => error.hint(hint),
            None => error,
        }
    }
}

fn text<'a>(map: &'a Mapping, key: &str) -> Option<&'a Value> {
    map.get(key)
}

/// The YAML text of a value as `--set KEY=VALUE` takes it (JSON, which YAML reads as flow style).
pub fn set_text(value: &Value) -> String {
    serde_json::to_value(value)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| serde_yaml::to_string(value).unwrap_or_default())
}

impl SweepFile {
    /// Reads and checks the sweep file at `path`.
    pub fn load(path: &Path) -> Result<SweepFile, ConfigError> {
        let errors = Errors { file: path };
        let source = std::fs::read_to_string(path).map_err(|e| {
            errors
                .at("", format!("cannot read the sweep file: {e}"))
                .hint("sweep files live in `configs/sweeps/`")
        })?;
        let root: Value = serde_yaml::from_str(&source).map_err(|e| {
            let mut error = errors.at("", format!("YAML syntax error: {e}"));
            error.location = e.location().map(|l| (l.line(), l.column()));
            error
        })?;
        let Value::Mapping(map) = root else {
            return Err(errors
                .at("", "the sweep file is not a YAML mapping")
                .hint("a sweep file has `experiment:`, `objective:`, `trials:` and `space:`"));
        };
        for key in map.keys() {
            let key = key.as_str().unwrap_or("?");
            if !KEYS.contains(&key) {
                let hint = match closest_of(key, KEYS.iter().copied()).first() {
                    Some(c) => format!("did you mean `{c}`? a sweep file has: {}", KEYS.join(", ")),
                    None => format!("a sweep file has: {}", KEYS.join(", ")),
                };
                return Err(errors.at(key, format!("unknown key `{key}`")).hint(hint));
            }
        }
        let name = match text(&map, "name") {
            Some(Value::String(name)) => name.clone(),
            Some(_) => return Err(errors.at("name", "must be text")),
            None => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "sweep".into()),
        };
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(errors
                .at("name", format!("`{name}` cannot name a folder"))
                .hint("use letters, digits, `_` and `-`"));
        }
        let experiment = match text(&map, "experiment") {
            Some(Value::String(file)) => resolve_experiment(path, file).ok_or_else(|| {
                errors.at("experiment", format!("`{file}` does not exist")).hint(
                    "give the experiment file relative to the working directory or to the sweep file",
                )
            })?,
            Some(_) => return Err(errors.at("experiment", "must name an experiment file")),
            None => {
                return Err(errors
                    .at("", "names no experiment")
                    .hint("add `experiment: configs/NAME.yaml`: the experiment every trial trains"));
            }
        };
        let objective = objective(&errors, text(&map, "objective"))?;
        let (sampler_name, sampler) =
            component::<dyn SamplerSpec>(&errors, &map, "sampler", "tpe")?;
        let (pruner_name, pruner) = component::<dyn PrunerSpec>(&errors, &map, "pruner", "none")?;
        let built = sampler
            .build()
            .map_err(|e| errors.build("sampler.args", e))?;
        pruner.build().map_err(|e| errors.build("pruner.args", e))?;
        let space = space(&errors, text(&map, "space"))?;
        let dists: Vec<(String, Distribution)> = space
            .iter()
            .map(|p| (p.key.clone(), p.distribution.clone()))
            .collect();
        if let Err((key, message)) = built.check(&dists) {
            return Err(errors
                .at(&format!("space.{key}"), message)
                .hint("give the range a `step`, or list the values with `choice`"));
        }
        let bounded = built.capacity(&dists);
        let trials = match (text(&map, "trials"), bounded) {
            (Some(Value::Number(n)), _) if n.as_u64().is_some_and(|n| n > 0) => {
                let n = n.as_u64().unwrap_or(1) as usize;
                bounded.map_or(n, |size| n.min(size))
            }
            (Some(_), _) => return Err(errors.at("trials", "must be a positive number of trials")),
            (None, Some(size)) => size,
            (None, None) => {
                return Err(errors
                    .at("", "says no number of trials")
                    .hint("add `trials: 20` (only a grid search knows its own)"));
            }
        };
        let timeout = match text(&map, "timeout") {
            None => None,
            Some(value) => {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => String::new(),
                };
                Some(
                    WallTime::parse(&text)
                        .map_err(|e| errors.at("timeout", e))?
                        .0,
                )
            }
        };
        let set = match text(&map, "set") {
            None => Vec::new(),
            Some(Value::Mapping(m)) => m
                .iter()
                .map(|(k, v)| format!("{}={}", k.as_str().unwrap_or("?"), set_text(v)))
                .collect(),
            Some(_) => {
                return Err(errors
                    .at("set", "must be a mapping of experiment keys to values")
                    .hint("for example `set: {trainer.args.max_epochs: 20}`"));
            }
        };
        let output_dir = match text(&map, "output_dir") {
            // Where the experiment's own runs go (a mistake in the experiment is `check`'s).
            None => resolve(&experiment, &set)
                .map(|e| e.environment.output_dir)
                .unwrap_or_else(|_| PathBuf::from("runs")),
            Some(Value::String(dir)) => PathBuf::from(dir),
            Some(_) => return Err(errors.at("output_dir", "must be a folder")),
        };
        Ok(SweepFile {
            path: path.to_path_buf(),
            name,
            experiment,
            objective,
            sampler_name,
            sampler,
            pruner_name,
            pruner,
            trials,
            timeout,
            set,
            space,
            output_dir,
        })
    }

    /// What the sweep will do, in words (`stoker sweep FILE --check`).
    pub fn plan(&self) -> String {
        let mut out = format!(
            "sweep {}: {} trials of {} ({} {} of `{}`), sampler {}, pruner {}{}\n  study: {}\n",
            self.name,
            self.trials,
            self.experiment.display(),
            if self.objective.direction == Direction::Maximize {
                "maximise"
            } else {
                "minimise"
            },
            if self.objective.reduce == Reduce::Best {
                "the best epoch"
            } else {
                "the last epoch"
            },
            self.objective.metric,
            self.sampler_name.name,
            self.pruner_name.name,
            self.timeout
                .map(|t| format!(", no new trial after {} s", t.as_secs()))
                .unwrap_or_default(),
            self.output_dir
                .join(&self.name)
                .join("study.journal")
                .display()
        );
        for set in &self.set {
            out.push_str(&format!("  every trial: --set {set}\n"));
        }
        for p in &self.space {
            let what = match &p.distribution {
                Distribution::Float {
                    low,
                    high,
                    log: true,
                    ..
                } => format!("log-uniform in [{low}, {high}]"),
                Distribution::Float {
                    low,
                    high,
                    step: Some(step),
                    ..
                } => format!("{low} to {high} in steps of {step}"),
                Distribution::Float { low, high, .. } => format!("uniform in [{low}, {high}]"),
                Distribution::Int {
                    low,
                    high,
                    log: true,
                    ..
                } => format!("an integer log-uniform in [{low}, {high}]"),
                Distribution::Int {
                    low, high, step, ..
                } => format!("an integer from {low} to {high} in steps of {step}"),
                Distribution::Categorical { .. } => {
                    let values: Vec<String> = probe_values(p).iter().map(set_text).collect();
                    format!("one of {}", values.join(", "))
                }
            };
            out.push_str(&format!("  {}: {what}\n", p.key));
        }
        out.trim_end().to_string()
    }

    /// The parameters and their distributions.
    pub fn distributions(&self) -> Vec<(String, Distribution)> {
        self.space
            .iter()
            .map(|p| (p.key.clone(), p.distribution.clone()))
            .collect()
    }

    /// The `--set` overrides of a trial with these internal values: the fixed ones, then the
    /// parameters'.
    pub fn sets_for(&self, params: &BTreeMap<String, f64>) -> Vec<String> {
        let mut sets = self.set.clone();
        for p in &self.space {
            if let Some(v) = params.get(&p.key) {
                sets.push(format!("{}={}", p.key, set_text(&p.spec.value(*v))));
            }
        }
        sets
    }

    /// The parameters' values as written in YAML (a choice as listed).
    pub fn values_for(&self, params: &BTreeMap<String, f64>) -> BTreeMap<String, Value> {
        self.space
            .iter()
            .filter_map(|p| Some((p.key.clone(), p.spec.value(*params.get(&p.key)?))))
            .collect()
    }

    /// Checks the sweep's space against its experiment: every space key is a key of the
    /// experiment, and each of its end values (every choice) resolves with it.
    pub fn check_space(&self) -> Result<(), ConfigError> {
        let errors = Errors { file: &self.path };
        let base = resolve(&self.experiment, &self.set).map_err(|e| {
            ConfigError::new(
                self.path.display().to_string(),
                format!("its experiment does not load: {e}"),
            )
            .at("experiment")
        })?;
        let resolved: Value = serde_yaml::from_str(&base.resolved_yaml()).unwrap_or(Value::Null);
        for p in &self.space {
            let at = format!("space.{}", p.key);
            let steps = stoker::config::parse_path(&p.key)
                .map_err(|e| errors.at(&at, format!("`{}` is not a key path: {e}", p.key)))?;
            let present = value_at(&resolved, &steps).is_some();
            for v in probe_values(p) {
                let mut sets = self.set.clone();
                sets.push(format!("{}={}", p.key, set_text(&v)));
                if let Err(e) = resolve(&self.experiment, &sets) {
                    let what = if present {
                        format!("`{}: {}` does not fit the experiment", p.key, set_text(&v))
                    } else {
                        format!(
                            "`{}` is not a key of the experiment {}",
                            p.key,
                            self.experiment.display()
                        )
                    };
                    return Err(errors.at(&at, what).hint(format!(
                        "the experiment says: {}{}",
                        e.message,
                        e.hint.map(|h| format!(" ({h})")).unwrap_or_default()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Checks that the objective is among what each epoch of the experiment logs: `logs` says
    /// whether the built experiment logs it, `logged` lists what it logs (for the hint).
    pub fn check_objective(&self, logs: bool, logged: &[String]) -> Result<(), ConfigError> {
        if logs {
            return Ok(());
        }
        Err(Errors { file: &self.path }
            .at(
                "objective.metric",
                format!(
                    "`{}` is not logged by the experiment, so no trial would report it",
                    self.objective.metric
                ),
            )
            .hint(format!(
                "optimise one of the values each epoch logs: {}",
                logged
                    .iter()
                    .filter(|n| !["epoch", "step", "train_loss_step"].contains(&n.as_str()))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
    }
}

/// The experiment with `sets` applied, resolved (every component looked up, its args checked).
fn resolve(
    experiment: &Path,
    sets: &[String],
) -> Result<stoker::experiment::Experiment, ConfigError> {
    let mut raw = stoker::config::RawConfig::load(experiment)?;
    for set in sets {
        raw.set(set)?;
    }
    stoker::experiment::Experiment::resolve(raw)
}

/// The value at `steps` of a YAML document.
fn value_at<'a>(value: &'a Value, steps: &[stoker::config::PathStep]) -> Option<&'a Value> {
    let mut node = value;
    for step in steps {
        node = match step {
            stoker::config::PathStep::Key(k) => node.get(k.as_str())?,
            stoker::config::PathStep::Index(i) => node.get(*i)?,
        };
    }
    Some(node)
}

/// The values a check resolves: a range's ends, every choice.
fn probe_values(p: &Param) -> Vec<Value> {
    match &p.distribution {
        Distribution::Float { low, high, .. } => vec![p.spec.value(*low), p.spec.value(*high)],
        Distribution::Int { low, high, .. } => {
            vec![p.spec.value(*low as f64), p.spec.value(*high as f64)]
        }
        Distribution::Categorical { choices } => {
            (0..choices.len()).map(|i| p.spec.value(i as f64)).collect()
        }
    }
}

/// The experiment path as written: relative to the working directory, else to the sweep file.
fn resolve_experiment(sweep: &Path, file: &str) -> Option<PathBuf> {
    let direct = PathBuf::from(file);
    if direct.is_file() {
        return Some(direct);
    }
    let beside = sweep.parent().unwrap_or(Path::new(".")).join(file);
    beside.is_file().then_some(beside)
}

fn objective(errors: &Errors<'_>, value: Option<&Value>) -> Result<Objective, ConfigError> {
    let hint = "write `objective: {metric: val_loss, mode: min}`";
    let Some(Value::Mapping(map)) = value else {
        return Err(errors
            .at("objective", "must say the metric and the mode")
            .hint(hint));
    };
    for key in map.keys() {
        let key = key.as_str().unwrap_or("?");
        if !["metric", "mode", "reduce"].contains(&key) {
            return Err(errors
                .at(&format!("objective.{key}"), format!("unknown key `{key}`"))
                .hint("an objective has metric, mode (min | max) and reduce (best | last)"));
        }
    }
    let metric = match map.get("metric") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => {
            return Err(errors
                .at("objective.metric", "must name a logged value")
                .hint(hint));
        }
    };
    let direction = match map.get("mode").and_then(Value::as_str) {
        Some("min") => Direction::Minimize,
        Some("max") => Direction::Maximize,
        _ => {
            return Err(errors
                .at("objective.mode", "must be `min` or `max`")
                .hint(hint));
        }
    };
    let reduce = match map.get("reduce").and_then(Value::as_str) {
        None | Some("best") => Reduce::Best,
        Some("last") => Reduce::Last,
        Some(other) => {
            return Err(errors
                .at("objective.reduce", format!("`{other}`: `best` or `last`"))
                .hint("best: the trial's best epoch (default); last: its last epoch"));
        }
    };
    Ok(Objective {
        metric,
        direction,
        reduce,
    })
}

fn component<S: ?Sized + stoker::registry::SpecKind>(
    errors: &Errors<'_>,
    map: &Mapping,
    key: &str,
    default: &str,
) -> Result<(Named, Box<S>), ConfigError> {
    let named = match map.get(key) {
        None => Named::new(default),
        Some(value) => serde_yaml::from_value::<Named>(value.clone()).map_err(|e| {
            errors.at(key, e.to_string()).hint(format!(
                "write `{key}: NAME` or `{key}: {{name: NAME, args: {{...}}}}`"
            ))
        })?,
    };
    let spec = named.parse::<S>(key).map_err(|e| errors.build(key, e))?;
    Ok((named, spec))
}

fn space(errors: &Errors<'_>, value: Option<&Value>) -> Result<Vec<Param>, ConfigError> {
    let example = "for example `space: {optimizer.args.lr: {log_uniform: [1.0e-4, 1.0e-2]}}`";
    let map = match value {
        Some(Value::Mapping(map)) if !map.is_empty() => map,
        _ => return Err(errors.at("space", "names no parameter").hint(example)),
    };
    let types = names(Kind::Space);
    let mut params = Vec::new();
    for (key, entry) in map {
        let key = key.as_str().unwrap_or("?").to_string();
        let at = format!("space.{key}");
        let Value::Mapping(args) = entry else {
            return Err(errors
                .at(&at, "must be a space type and its range or values")
                .hint(format!("{example}; types: {}", types.join(", "))));
        };
        let named: Vec<&str> = args
            .keys()
            .filter_map(Value::as_str)
            .filter(|k| types.contains(k))
            .collect();
        let type_name = match named.as_slice() {
            [one] => *one,
            [] => {
                let first = args.keys().next().and_then(Value::as_str).unwrap_or("?");
                let close = closest_of(first, types.iter().copied());
                return Err(errors
                    .at(&at, "names no space type")
                    .hint(match close.first() {
                        Some(c) => format!("did you mean `{c}`? types: {}", types.join(", ")),
                        None => format!("types: {} (cargo xtask list space)", types.join(", ")),
                    }));
            }
            several => {
                return Err(errors.at(
                    &at,
                    format!("names several space types: {}", several.join(", ")),
                ));
            }
        };
        let parsed = parse_nested(Kind::Space, type_name, Some(entry.clone()), &at)
            .map_err(|e| errors.build(&at, strip_args(e, &at)))?;
        let spec: Box<dyn SpaceSpec> = stoker::registry::SpecKind::from_any(parsed.spec)
            .ok_or_else(|| errors.at(&at, "is not a space type"))?;
        let distribution = spec.distribution().map_err(|e| errors.build(&at, e))?;
        params.push(Param {
            key,
            spec,
            distribution,
        });
    }
    Ok(params)
}

/// A space entry is its own args: an error at `space.KEY.args.step` is at `space.KEY.step`.
fn strip_args(mut e: BuildError, at: &str) -> BuildError {
    if let Some(arg) = &e.arg {
        let prefix = format!("{at}.args");
        if let Some(rest) = arg.strip_prefix(&prefix) {
            e.arg = Some(format!("{at}{rest}"));
        }
    }
    e
}
