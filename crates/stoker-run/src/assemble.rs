//! From an experiment file to the built parts of a run, with every failure reported as a
//! [`ConfigError`] that names the file, the YAML path and a fix.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use stoker::burn::tensor::{Device, FloatDType};
use stoker::config::{ConfigError, PathStep, RawConfig};
use stoker::data::{Order, Shard, Split};
use stoker::experiment::{Component, Experiment, SpecKind};
use stoker::logger::Loggers;
use stoker::metric::StepView;
use stoker::spec::BuildContext;
use stoker::trainer::{SplitMetrics, Trainer, TrainingParts};

/// A run, built and checked, not yet started.
pub struct Assembled {
    /// The resolved experiment.
    pub experiment: Experiment,
    /// What the loop gets.
    pub parts: TrainingParts,
    /// The loop.
    pub trainer: Box<dyn Trainer>,
    /// Seconds the experiment took to load and build.
    pub built_seconds: f64,
    /// The names the metrics computed on the trial batch (`loss`, `mse`, ...), unprefixed.
    pub metric_names: Vec<String>,
}

impl Assembled {
    /// The values each epoch of this run logs (`train_loss`, `val_accuracy`, `lr`, ...).
    pub fn logged_names(&self) -> Vec<String> {
        crate::monitors::epoch_names(&self.metric_names, &self.parts)
    }

    /// Whether this run logs a value named `name`: a metric of an evaluated split, or a value
    /// the trainer or a callback says it logs.
    pub fn logs(&self, name: &str) -> bool {
        self.logged_names().iter().any(|n| n == name)
            || self.trainer.logs(name)
            || self.parts.callbacks.iter().any(|(_, c)| c.logs(name))
    }

    /// Refuses a `monitor` nothing in this run logs (see [`monitors`](crate::monitors)):
    /// what `train` and `check` do before anything else.
    pub fn check_monitors(&self) -> Result<(), ConfigError> {
        crate::monitors::check(
            &self.experiment,
            &self.parts,
            self.trainer.as_ref(),
            &crate::monitors::epoch_names(&self.metric_names, &self.parts),
        )
    }
}

/// Loads CONFIG, applies the `--set` overrides and resolves every component.
pub fn load(config: &Path, sets: &[String]) -> Result<Experiment, ConfigError> {
    resolve(RawConfig::load(config)?, sets)
}

/// [`load`] from YAML text (it stands as `experiment.yaml` in the working directory).
pub fn load_yaml(yaml: &str, sets: &[String]) -> Result<Experiment, ConfigError> {
    resolve(
        RawConfig::from_text(yaml, Path::new("experiment.yaml"))?,
        sets,
    )
}

fn resolve(mut raw: RawConfig, sets: &[String]) -> Result<Experiment, ConfigError> {
    for assignment in sets {
        raw.set(assignment)?;
    }
    Experiment::resolve(raw)
}

/// Makes `dtype` the default float type of `device` (and of its autodiff form), before any
/// of its tensors exists.
fn configure(device: &Device, dtype: FloatDType) -> Result<(), String> {
    let mut device = device.clone();
    if !device.supports_dtype(dtype) {
        return Err(format!(
            "the device {device:?} does not compute in {dtype:?}"
        ));
    }
    device.configure(dtype).map_err(|e| {
        format!("the device's float type could not be set to {dtype:?} ({e:?}); it must be set before any tensor exists")
    })
}

fn built<T, S: ?Sized + SpecKind>(
    experiment: &Experiment,
    component: &Component<S>,
    result: Result<T, stoker::BuildError>,
) -> Result<T, ConfigError> {
    result.map_err(|e| experiment.build_error(component, &e))
}

/// Builds every component in order (data, model, loss, metrics, optimizer, trainer, scheduler,
/// loggers), then runs one trial batch through the model, loss and metrics without training, so
/// that a name or shape mistake is reported here rather than after an epoch.
pub fn assemble(experiment: Experiment) -> Result<Assembled, ConfigError> {
    let started = std::time::Instant::now();
    let env = &experiment.environment;
    let (choice, local_rank) = stoker::training::strategy::environment::process_device(env.device);
    let device = stoker::native::device::resolve(choice).map_err(|message| {
        let error = experiment.raw.error_at(
            &[
                PathStep::Key("environment".into()),
                PathStep::Key("device".into()),
            ],
            message,
        );
        if local_rank > 0 && choice != env.device {
            error.hint(format!(
                "this process has local rank {local_rank}, and each process on a machine takes a GPU of its own ({} plus the local rank): start at most as many processes per machine as it has GPUs",
                env.device
            ))
        } else {
            error.hint(
                "use `cpu` or `flex` on a machine without a GPU (or `auto`, which picks for you)",
            )
        }
    })?;
    if let Some(dtype) = experiment.trainer.spec.float_dtype() {
        configure(&device, dtype).map_err(|message| {
            let path = experiment.trainer.path.clone();
            experiment.raw.error_at(&path, message)
        })?;
    }
    device.seed(env.seed);
    let mut ctx = BuildContext {
        device: device.clone(),
        seed: env.seed,
        data: None,
        parameters: None,
        base_lr: None,
        horizon: None,
    };

    let data = built(
        &experiment,
        &experiment.data,
        experiment.data.spec.build(&ctx),
    )?;
    let info = data.info().clone();
    if info.len(Split::Train) == 0 {
        return Err(experiment
            .raw
            .error_at(&experiment.data.path, "the training split is empty")
            .hint("give the data more samples, or hold out less for val and test"));
    }
    ctx.data = Some(info.clone());

    let model = built(
        &experiment,
        &experiment.model,
        experiment.model.spec.build(&ctx),
    )?;
    ctx.parameters = Some(model.parameters().into_iter().map(|p| p.path).collect());
    let loss = built(
        &experiment,
        &experiment.loss,
        experiment.loss.spec.build(&ctx),
    )?;
    let mut metrics = SplitMetrics {
        train: Vec::new(),
        val: Vec::new(),
        test: Vec::new(),
        named_val: Vec::new(),
    };
    for split in Split::ALL {
        for metric in &experiment.metrics {
            let m = built(&experiment, metric, metric.spec.build(&ctx))?;
            metrics.of(split).push(m);
        }
    }
    for _ in data.named_vals() {
        let set = experiment
            .metrics
            .iter()
            .map(|metric| built(&experiment, metric, metric.spec.build(&ctx)))
            .collect::<Result<Vec<_>, _>>()?;
        metrics.named_val.push(set);
    }
    let optimizer = built(
        &experiment,
        &experiment.optimizer,
        experiment.optimizer.spec.build(&ctx),
    )?;
    ctx.base_lr = Some(experiment.optimizer.spec.lr());
    let mut trainer = built(
        &experiment,
        &experiment.trainer,
        experiment.trainer.spec.build(&ctx),
    )?;
    ctx.horizon = Some(experiment.trainer.spec.horizon(&info));
    let scheduler = built(
        &experiment,
        &experiment.scheduler,
        experiment.scheduler.spec.build(&ctx),
    )?;
    let mut loggers = Vec::new();
    for logger in &experiment.loggers {
        loggers.push((
            logger.name.clone(),
            built(&experiment, logger, logger.spec.build(&ctx))?,
        ));
    }
    let mut callbacks = Vec::new();
    for callback in &experiment.callbacks {
        callbacks.push((
            callback.name.clone(),
            built(&experiment, callback, callback.spec.build(&ctx))?,
        ));
    }

    let mut augmentations = Vec::new();
    for augmentation in &experiment.augmentations {
        augmentations.push(built(
            &experiment,
            augmentation,
            augmentation.spec.build(&ctx),
        )?);
    }

    let mut parts = TrainingParts {
        device,
        seed: env.seed,
        data: Arc::from(data),
        model,
        loss,
        metrics,
        optimizer,
        optimizer_name: experiment.optimizer.name.clone(),
        scheduler,
        loggers: Loggers::new(loggers),
        callbacks,
        augmentations: Arc::new(augmentations),
        resume: None,
    };
    let metric_names = trial_batch(&experiment, &mut parts, trainer.as_mut())?;
    Ok(Assembled {
        experiment,
        parts,
        trainer,
        built_seconds: started.elapsed().as_secs_f64(),
        metric_names,
    })
}

/// Runs the first training batch through the trainer's validation step (an evaluation copy of
/// the model, the loss) and the metrics: nothing is trained and nothing is kept. Returns the names the metrics compute.
fn trial_batch(
    experiment: &Experiment,
    parts: &mut TrainingParts,
    trainer: &mut dyn Trainer,
) -> Result<Vec<String>, ConfigError> {
    let fail = |message: String| {
        experiment
            .raw
            .error_at(&[PathStep::Key("model".into())], format!("a trial batch through the model, loss and metrics failed: {message}"))
            .hint("check that the tensor names agree: the data's tensors, model.args (input/output), loss.args and metrics args (pred/target)")
    };
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = catch_unwind(AssertUnwindSafe(|| -> stoker::Result<Vec<String>> {
        let mut batches = parts
            .data
            .epoch(Split::Train, 0, Order::Configured, Shard::WHOLE)?;
        let batch = batches.batch(0)?;
        let model = parts.model.for_eval();
        let (output, loss) =
            trainer.validation_step(model.as_ref(), parts.loss.as_ref(), &batch)?;
        let decoded = parts.data.decode(&batch, &output)?;
        let (batch, output) = decoded.as_ref().map_or((&batch, &output), |(b, o)| (b, o));
        let view = StepView {
            batch,
            output,
            loss: &loss,
        };
        let mut names = Vec::new();
        for metric in parts.metrics.val.iter_mut() {
            metric.update(&view)?;
            names.extend(metric.compute()?.into_iter().map(|(name, _)| name));
            metric.reset();
        }
        Ok(names)
    }));
    std::panic::set_hook(previous_hook);
    match outcome {
        Ok(Ok(names)) => Ok(names),
        Ok(Err(e)) => Err(fail(e.to_string())),
        Err(panic) => Err(fail(panic_message(&panic))),
    }
}

/// The text of a caught panic.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}
