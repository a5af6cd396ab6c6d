//! The trainer block as PHM-Vibench writes it (seed 002's `Default_trainer`), translated into
//! stoker's own keys before the experiment is resolved. Each key PHM-Vibench adds to
//! Lightning's either maps to a stoker key or component (`num_epochs` to `max_epochs`,
//! `monitor_metric`/`save_top_k` to a `ModelCheckpoint`, `early_stopping`/`patience` to an
//! `EarlyStopping`, `pruning` to a `ModelPruning`, `accelerator`/`gpus` to the device and the
//! processes) or is refused with the reason and the fix. Every step taken is returned as a line
//! for the run log; a config that uses none of these keys is left as it is.

use serde_yaml::{Mapping, Value};

use crate::config::{ConfigError, PathStep, RawConfig};

/// The keys PHM-Vibench's trainer block adds to stoker's (Lightning's) trainer arguments.
const PHM_KEYS: &[&str] = &[
    "num_epochs",
    "gpus",
    "accelerator",
    "monitor_metric",
    "mode",
    "save_top_k",
    "early_stopping",
    "patience",
    "min_delta",
    "pruning",
    "pruning_amount",
    "pruning_method",
    "amp_backend",
    "replace_sampler_ddp",
    "find_unused_parameters",
    "profiler",
    "log_gpu_memory",
    "resume_from_checkpoint",
];

/// Translates `raw`'s trainer block in place; returns what was done, one line per key.
pub fn translate(raw: &mut RawConfig) -> Result<Vec<String>, ConfigError> {
    let Some(Value::Mapping(trainer)) = raw.root.get("trainer").cloned() else {
        return Ok(Vec::new());
    };
    let mut t = Translation {
        raw,
        notes: Vec::new(),
    };
    let Some(mut args) = t.flattened(trainer.clone())? else {
        return Ok(Vec::new());
    };
    // A trainer's own argument of the same name (ProgressiveResizing_trainer's `mode`) is its.
    let name = trainer
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("Default_trainer");
    let own: Vec<&str> = crate::registry::find(crate::registry::Kind::Trainer, name)
        .map(|r| (r.args)().iter().map(|a| a.name).collect())
        .unwrap_or_default();
    let kept: Vec<(Value, Value)> = args
        .iter()
        .filter(|(k, _)| {
            k.as_str()
                .is_some_and(|k| own.contains(&k) && PHM_KEYS.contains(&k))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, _) in &kept {
        args.remove(key);
    }
    if !args
        .keys()
        .any(|k| k.as_str().is_some_and(|k| PHM_KEYS.contains(&k)))
        && t.notes.is_empty()
    {
        return Ok(Vec::new());
    }
    let mut args = t.translate_args(args)?;
    args.extend(kept);
    let mut trainer = trainer;
    trainer.retain(|k, _| matches!(k.as_str(), Some("name" | "args")));
    trainer.insert("args".into(), Value::Mapping(args));
    t.raw.root.insert("trainer".into(), Value::Mapping(trainer));
    Ok(t.notes)
}

struct Translation<'a> {
    raw: &'a mut RawConfig,
    notes: Vec<String>,
}

/// `trainer.args.<key>` as a path.
fn arg_path(key: &str) -> Vec<PathStep> {
    vec![
        PathStep::Key("trainer".into()),
        PathStep::Key("args".into()),
        PathStep::Key(key.into()),
    ]
}

/// A value as YAML text on one line (flow style: `{monitor: val_loss, save_top_k: 3}`).
fn show(value: &Value) -> String {
    match value {
        Value::Mapping(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", show(k), show(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(show).collect();
            format!("[{}]", items.join(", "))
        }
        scalar => serde_yaml::to_string(scalar)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

impl Translation<'_> {
    /// An error at `trainer.args.<key>`.
    fn refuse(&self, key: &str, message: impl Into<String>, fix: impl Into<String>) -> ConfigError {
        self.raw.error_at(&arg_path(key), message).hint(fix)
    }

    fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// The trainer's arguments, with keys written beside `name` (PHM-Vibench's flat block)
    /// moved under `args`; `None` when the block is not a mapping of arguments.
    fn flattened(&mut self, trainer: Mapping) -> Result<Option<Mapping>, ConfigError> {
        let mut args = match trainer.get("args") {
            None | Some(Value::Null) => Mapping::new(),
            Some(Value::Mapping(args)) => args.clone(),
            Some(_) => return Ok(None),
        };
        for (key, value) in trainer {
            let Some(name) = key.as_str() else {
                return Ok(None);
            };
            if matches!(name, "name" | "args") {
                continue;
            }
            if args.contains_key(name) {
                return Err(self.raw.error_at(
                    &[PathStep::Key("trainer".into()), PathStep::Key(name.into())],
                    format!("`{name}` is given both beside the trainer's name and under trainer.args"),
                ).hint("keep one"));
            }
            self.note(format!("trainer.{name} -> trainer.args.{name}"));
            args.insert(key, value);
        }
        Ok(Some(args))
    }

    fn translate_args(&mut self, mut args: Mapping) -> Result<Mapping, ConfigError> {
        self.epochs(&mut args)?;
        self.hardware(&mut args)?;
        self.checkpointing(&mut args)?;
        self.early_stopping(&mut args)?;
        self.pruning(&mut args)?;
        self.the_rest(&mut args)?;
        Ok(args)
    }

    fn epochs(&mut self, args: &mut Mapping) -> Result<(), ConfigError> {
        if let Some(epochs) = args.remove("num_epochs") {
            if let Some(max) = args.get("max_epochs")
                && *max != epochs
            {
                return Err(self.refuse(
                    "num_epochs",
                    format!(
                        "num_epochs: {} disagrees with max_epochs: {}",
                        show(&epochs),
                        show(max)
                    ),
                    "keep one of them",
                ));
            }
            self.note(format!("num_epochs: {0} -> max_epochs: {0}", show(&epochs)));
            args.insert("max_epochs".into(), epochs);
        }
        if args.get("max_steps").and_then(Value::as_i64) == Some(-1) {
            args.remove("max_steps");
            self.note("max_steps: -1 -> no step limit (left out)");
        }
        Ok(())
    }

    /// `accelerator` and `gpus`: the device (environment.device) and the processes per machine
    /// (devices).
    fn hardware(&mut self, args: &mut Mapping) -> Result<(), ConfigError> {
        let accelerator = args.remove("accelerator");
        let gpus = args.remove("gpus");
        let wants = match accelerator.as_ref().map(|v| (v, v.as_str())) {
            None | Some((Value::Null, _)) => None,
            Some((_, Some("gpu" | "cuda"))) => Some("gpu"),
            Some((_, Some("cpu"))) => Some("cpu"),
            Some((_, Some("auto"))) => Some("auto"),
            Some((value, _)) => {
                return Err(self.refuse(
                    "accelerator",
                    format!("accelerator {} is not one stoker runs on", show(value)),
                    "stoker trains with libtorch on the CPU or on CUDA GPUs: use gpu, cpu or auto",
                ));
            }
        };
        let count = match &gpus {
            None | Some(Value::Null) => None,
            Some(value) => Some(self.gpu_count(value)?),
        };
        let wants = match (wants, count) {
            (Some("cpu"), Some(n)) if n > 0 => {
                return Err(self.refuse(
                    "gpus",
                    format!("gpus: {n} with accelerator: cpu"),
                    "remove gpus for a CPU run, or set accelerator: gpu",
                ));
            }
            (_, Some(0)) => Some("cpu"),
            (None, Some(_)) => Some("gpu"),
            (wants, _) => wants,
        };
        if let Some(n) = count.filter(|&n| n > 0) {
            if let Some(devices) = args.get("devices").and_then(Value::as_u64)
                && devices != n as u64
            {
                return Err(self.refuse(
                    "gpus",
                    format!("gpus asks for {n} GPU(s) and devices for {devices} process(es)"),
                    "keep one of them: stoker runs one process per GPU",
                ));
            }
            args.insert("devices".into(), Value::from(n as u64));
            self.note(format!(
                "gpus: {} -> devices: {n} (one process per GPU, each on the GPU of its LOCAL_RANK)",
                show(gpus.as_ref().expect("gpus was given"))
            ));
        }
        let Some(wants) = wants else {
            return Ok(());
        };
        let device = self
            .raw
            .root
            .get("environment")
            .and_then(|e| e.get("device"))
            .and_then(Value::as_str)
            .unwrap_or("auto")
            .to_string();
        let conflict = match wants {
            "cpu" => device.starts_with("cuda"),
            "gpu" => device == "cpu",
            _ => false,
        };
        let what = match (&accelerator, count) {
            (Some(a), _) if !a.is_null() => format!("accelerator: {}", show(a)),
            _ => format!("gpus: {}", count.unwrap_or(0)),
        };
        if conflict {
            let key = if accelerator.is_some() {
                "accelerator"
            } else {
                "gpus"
            };
            return Err(self.refuse(
                key,
                format!("{what} disagrees with environment.device: {device}"),
                "keep one of them (environment.device is stoker's key)",
            ));
        }
        match wants {
            "cpu" => {
                self.set_device("cpu");
                self.note(format!("{what} -> environment.device: cpu"));
            }
            "gpu" if device == "auto" => self.note(format!(
                "{what} -> environment.device: auto (CUDA when this machine has it, else the CPU; the run's first line names the device used)"
            )),
            _ => self.note(format!("{what} -> environment.device: {device} (as set)")),
        }
        Ok(())
    }

    /// The number of GPUs `gpus` asks for: a count, a list of ids `[0, ..., n - 1]` or a
    /// comma-separated string of them.
    fn gpu_count(&self, value: &Value) -> Result<usize, ConfigError> {
        let ids: Vec<i64> = match value {
            Value::Number(n) => match n.as_i64() {
                Some(n) if n >= 0 => return Ok(n as usize),
                _ => {
                    return Err(self.refuse(
                        "gpus",
                        format!("gpus: {n}"),
                        "give a number of GPUs (stoker does not count the machine's GPUs for -1)",
                    ));
                }
            },
            Value::Sequence(items) => items.iter().filter_map(Value::as_i64).collect(),
            Value::String(text) => text
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .filter_map(|s| s.trim().parse().ok())
                .collect(),
            _ => Vec::new(),
        };
        let expected: Vec<i64> = (0..ids.len() as i64).collect();
        if ids.is_empty() || ids != expected {
            return Err(self.refuse(
                "gpus",
                format!("gpus: {}", show(value)),
                "stoker's process i uses GPU i (its LOCAL_RANK): choose the GPUs with CUDA_VISIBLE_DEVICES (e.g. CUDA_VISIBLE_DEVICES=2,3) and give their number (gpus: 2)",
            ));
        }
        Ok(ids.len())
    }

    fn set_device(&mut self, device: &str) {
        let environment = self
            .raw
            .root
            .entry("environment".into())
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if !environment.is_mapping() {
            *environment = Value::Mapping(Mapping::new());
        }
        if let Value::Mapping(env) = environment {
            env.insert("device".into(), Value::from(device));
        }
    }

    /// The metric PHM-Vibench monitors (`monitor_metric`, default val_loss) in stoker's name
    /// (`val_acc` is `val_accuracy` here), and its mode.
    fn monitor(&mut self, args: &Mapping) -> (Value, Value) {
        let monitor = args
            .get("monitor_metric")
            .and_then(Value::as_str)
            .unwrap_or("val_loss")
            .to_string();
        let renamed = match monitor.strip_suffix("_acc") {
            Some(split) => format!("{split}_accuracy"),
            None => monitor.clone(),
        };
        if renamed != monitor {
            let line =
                format!("monitor_metric: {monitor} -> {renamed} (stoker's name of the accuracy)");
            if !self.notes.contains(&line) {
                self.note(line);
            }
        }
        let mode = args
            .get("mode")
            .cloned()
            .unwrap_or_else(|| Value::from("min"));
        (Value::from(renamed), mode)
    }

    /// Whether `callbacks:` already lists `name`.
    fn has_callback(&self, name: &str) -> bool {
        match self.raw.root.get("callbacks") {
            Some(Value::Sequence(items)) => items.iter().any(|c| {
                c.as_str() == Some(name) || c.get("name").and_then(Value::as_str) == Some(name)
            }),
            _ => false,
        }
    }

    /// Appends `{name, args}` to `callbacks:`.
    fn add_callback(&mut self, name: &str, args: Mapping) {
        let mut entry = Mapping::new();
        entry.insert("name".into(), Value::from(name));
        entry.insert("args".into(), Value::Mapping(args));
        let callbacks = self
            .raw
            .root
            .entry("callbacks".into())
            .or_insert_with(|| Value::Sequence(Vec::new()));
        if !callbacks.is_sequence() {
            *callbacks = Value::Sequence(Vec::new());
        }
        if let Value::Sequence(items) = callbacks {
            items.push(Value::Mapping(entry));
        }
    }

    /// `monitor_metric`, `mode` and `save_top_k`: a `ModelCheckpoint` of the monitored metric
    /// (save_top_k 1 unless given, as Lightning's), when checkpointing is on.
    fn checkpointing(&mut self, args: &mut Mapping) -> Result<(), ConfigError> {
        let given: Vec<&str> = ["save_top_k", "monitor_metric", "mode"]
            .into_iter()
            .filter(|k| args.contains_key(*k))
            .collect();
        let Some(&first) = given.first() else {
            return Ok(());
        };
        let enabled = args
            .get("enable_checkpointing")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let top_k = args.remove("save_top_k").unwrap_or_else(|| Value::from(1));
        if !enabled {
            self.note(format!(
                "{} -> no ModelCheckpoint: enable_checkpointing is false",
                given.join(", ")
            ));
            return Ok(());
        }
        if self.has_callback("ModelCheckpoint") {
            return Err(self.refuse(
                first,
                "callbacks: already lists a ModelCheckpoint",
                "set save_top_k, monitor and mode in that callback's args, or remove it",
            ));
        }
        let (monitor, mode) = self.monitor(args);
        let mut checkpoint = Mapping::new();
        checkpoint.insert("monitor".into(), monitor);
        checkpoint.insert("mode".into(), mode);
        checkpoint.insert("save_top_k".into(), top_k);
        let shown = show(&Value::Mapping(checkpoint.clone()));
        self.note(format!(
            "{} -> callbacks: ModelCheckpoint {shown}",
            given.join(", ")
        ));
        self.add_callback("ModelCheckpoint", checkpoint);
        Ok(())
    }

    /// `early_stopping`, `patience` and `min_delta`: an `EarlyStopping` on the monitored metric.
    fn early_stopping(&mut self, args: &mut Mapping) -> Result<(), ConfigError> {
        let on = args.remove("early_stopping");
        let patience = args.remove("patience");
        let min_delta = args.remove("min_delta");
        match on.as_ref().map(|v| (v, v.as_bool())) {
            None | Some((_, Some(false))) => {
                if let Some(key) = [("patience", &patience), ("min_delta", &min_delta)]
                    .into_iter()
                    .find_map(|(k, v)| v.as_ref().map(|_| k))
                {
                    return Err(self.refuse(
                        key,
                        format!("{key} is given but early_stopping is not true"),
                        "set early_stopping: true, or remove patience and min_delta",
                    ));
                }
                if on.is_some() {
                    self.note("early_stopping: false -> no EarlyStopping");
                }
                return Ok(());
            }
            Some((_, Some(true))) => {}
            Some((value, None)) => {
                return Err(self.refuse(
                    "early_stopping",
                    format!("early_stopping: {} is not true or false", show(value)),
                    "write early_stopping: true with patience and min_delta beside it",
                ));
            }
        }
        if self.has_callback("EarlyStopping") {
            return Err(self.refuse(
                "early_stopping",
                "callbacks: already lists an EarlyStopping",
                "set patience in that callback's args, or remove it",
            ));
        }
        let (monitor, mode) = self.monitor(args);
        let mut stopping = Mapping::new();
        stopping.insert("monitor".into(), monitor);
        stopping.insert("mode".into(), mode);
        // PHM-Vibench's default patience (its Default_trainer's) is 10.
        stopping.insert(
            "patience".into(),
            patience.unwrap_or_else(|| Value::from(10)),
        );
        if let Some(delta) = min_delta {
            stopping.insert("min_delta".into(), delta);
        }
        let shown = show(&Value::Mapping(stopping.clone()));
        self.note(format!(
            "early_stopping: true -> callbacks: EarlyStopping {shown}"
        ));
        self.add_callback("EarlyStopping", stopping);
        Ok(())
    }

    /// `pruning`, `pruning_amount` and `pruning_method`: a `ModelPruning` (global, at every
    /// epoch, as Lightning's `ModelPruning(use_global_unstructured=True)` that PHM-Vibench makes).
    fn pruning(&mut self, args: &mut Mapping) -> Result<(), ConfigError> {
        let on = args.remove("pruning");
        let amount = args.remove("pruning_amount");
        let method = args.remove("pruning_method");
        if on.as_ref().and_then(Value::as_bool) != Some(true) {
            if on.is_some() {
                self.note("pruning: false -> no ModelPruning");
            }
            return Ok(());
        }
        if let Some(m) = &method
            && m.as_str() != Some("l1_unstructured")
        {
            return Err(self.refuse(
                "pruning_method",
                format!("pruning_method {} is not available", show(m)),
                "stoker's ModelPruning prunes by l1_unstructured",
            ));
        }
        let mut pruning = Mapping::new();
        pruning.insert("pruning_fn".into(), Value::from("l1_unstructured"));
        pruning.insert("amount".into(), amount.unwrap_or_else(|| Value::from(0.2)));
        pruning.insert("scope".into(), Value::from("global"));
        let shown = show(&Value::Mapping(pruning.clone()));
        self.note(format!("pruning: true -> callbacks: ModelPruning {shown}"));
        self.add_callback("ModelPruning", pruning);
        Ok(())
    }

    /// The remaining Lightning-1 keys PHM-Vibench writes: left out where stoker always does
    /// what they ask, refused where it cannot.
    fn the_rest(&mut self, args: &mut Mapping) -> Result<(), ConfigError> {
        args.remove("monitor_metric");
        args.remove("mode");
        if let Some(backend) = args.remove("amp_backend") {
            if backend.as_str() != Some("native") {
                return Err(self.refuse(
                    "amp_backend",
                    format!("amp_backend {} is not available", show(&backend)),
                    "stoker's mixed precision is libtorch's own (native); remove amp_backend",
                ));
            }
            self.note("amp_backend: native -> left out (libtorch's autocast is the only one)");
        }
        if let Some(replace) = args.remove("replace_sampler_ddp") {
            if replace.as_bool() == Some(false) {
                return Err(self.refuse(
                    "replace_sampler_ddp",
                    "replace_sampler_ddp: false",
                    "stoker always shards each epoch over the processes as DistributedSampler does; remove the key",
                ));
            }
            self.note("replace_sampler_ddp: true -> left out (stoker always shards the epoch)");
        }
        if let Some(unused) = args.remove("find_unused_parameters") {
            self.note(format!(
                "find_unused_parameters: {} -> left out (stoker all-reduces every parameter's gradient, used or not)",
                show(&unused)
            ));
        }
        if let Some(profiler) = args.remove("profiler") {
            match profiler.as_str() {
                None if profiler.is_null() => {}
                Some("simple") => self.note(
                    "profiler: simple -> left out (summary.json's step_profile_us always has each phase's mean time)",
                ),
                _ => {
                    return Err(self.refuse(
                        "profiler",
                        format!("profiler {} is not available", show(&profiler)),
                        "stoker records the time of each phase of a step (summary.json's step_profile_us): use profiler: simple or remove it",
                    ));
                }
            }
        }
        if let Some(memory) = args.remove("log_gpu_memory") {
            let wanted = !(memory.is_null() || memory.as_bool() == Some(false));
            if wanted && !self.has_callback("MemoryProfiler") {
                self.add_callback("MemoryProfiler", Mapping::new());
                self.note(format!(
                    "log_gpu_memory: {} -> callbacks: MemoryProfiler",
                    show(&memory)
                ));
            }
        }
        if let Some(path) = args.remove("resume_from_checkpoint")
            && !path.is_null()
        {
            return Err(self.refuse(
                "resume_from_checkpoint",
                format!("resume_from_checkpoint: {}", show(&path)),
                format!(
                    "resume from the command line: cargo xtask train CONFIG --resume {}",
                    show(&path)
                ),
            ));
        }
        Ok(())
    }
}
