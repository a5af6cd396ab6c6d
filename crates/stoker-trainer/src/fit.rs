//! `Default_trainer`'s loop: epochs of micro-batches, optimizer steps at accumulation
//! boundaries, validation on schedule, callbacks at every hook, checkpoints written at points
//! where the whole state is consistent, and exact resume from any of them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use stoker::burn::optim::{GradientsParams, ModuleOptimizer};
use stoker::burn::tensor::Bytes;
use stoker::callback::{BestCheckpoint, Callback, Control, HookContext, Position, SaveRequest};
use stoker::checkpoint::{self, CheckpointState, ResumeState};
use stoker::console;
use stoker::data::{DataModule, Order, Split};
use stoker::fs::write_atomic;
use stoker::logger::{LogRow, Loggers, RunInfo};
use stoker::loss::Loss;
use stoker::metric::StepView;
use stoker::model::DynModel;
use stoker::prelude::{Device, Result, StokerError};
use stoker::schedule::LrScheduler;
use stoker::spec::CallbackSpec;
use stoker::trainer::{FitReport, Resume, SplitMetrics, Trainer, TrainingParts};
use stoker_callbacks::model_checkpoint::ModelCheckpointSpec;

use crate::anomaly::{self, Place};
use crate::clip;
use crate::evaluate::{collect, evaluate};
use crate::prefetch::{Batches, Plan, step_seed};
use crate::profile::{Phase, StepProfile};
use crate::progress::EpochProgress;
use crate::signals::Interrupt;
use crate::spec::{ClipAlgorithm, DefaultTrainerSpec, Limit};
use crate::summary::model_summary;

/// What a training epoch's steps need to know of it.
#[derive(Clone, Copy)]
struct EpochShape {
    /// Training batches in the epoch.
    n: usize,
    /// Micro-batches per optimizer step.
    accumulate: usize,
    /// Whether this epoch validates (with `check_val_every_n_epoch`).
    validate_epoch: bool,
    /// Whether there is a validation split.
    has_val: bool,
    /// Batches between validations.
    interval: usize,
}

/// The built loop.
pub struct DefaultTrainer {
    spec: DefaultTrainerSpec,
}

impl DefaultTrainer {
    /// A loop with these arguments.
    pub fn new(spec: DefaultTrainerSpec) -> Self {
        DefaultTrainer { spec }
    }
}

impl Trainer for DefaultTrainer {
    fn fit(&mut self, parts: TrainingParts, run: &RunInfo) -> Result<FitReport> {
        let (mut fit, resume) = Fit::new(self.spec.clone(), parts, run)?;
        match fit.fit(resume) {
            Ok(report) => Ok(report),
            Err(error) => Err(fit.fail(error)),
        }
    }
}

/// A row of logged values at one (epoch, step), filled until the position changes.
struct Row {
    epoch: usize,
    step: usize,
    values: Vec<(String, f64)>,
}

/// How an epoch ended.
enum EpochEnd {
    /// All its batches ran (or a limit or a stop request ended it early).
    Done,
    /// A signal arrived; the loop stopped at a consistent point.
    Interrupted,
}

/// One fit in progress.
struct Fit<'r> {
    spec: DefaultTrainerSpec,
    run: &'r RunInfo,
    device: Device,
    seed: u64,
    data: Arc<dyn DataModule>,
    model: Box<dyn DynModel>,
    loss: Box<dyn Loss>,
    metrics: SplitMetrics,
    optimizer: ModuleOptimizer,
    optimizer_name: String,
    scheduler: Box<dyn LrScheduler>,
    loggers: Loggers,
    callbacks: Vec<(String, Box<dyn Callback>)>,
    augmentations: Arc<Vec<Box<dyn stoker::augment::Augmentation>>>,
    /// Whether checkpoints are written (not in a fast dev run).
    saving: bool,
    epoch: usize,
    batch: usize,
    global_step: usize,
    latest: BTreeMap<String, f64>,
    row: Option<Row>,
    epoch_values: Vec<(String, f64)>,
    saves: Vec<SaveRequest>,
    deletes: Vec<PathBuf>,
    stop: Option<String>,
    min_epochs_noted: bool,
    started: Instant,
    elapsed_before: f64,
    best: Option<BestCheckpoint>,
    best_metrics: BTreeMap<String, f64>,
    best_epoch: Option<usize>,
    last_checkpoint: Option<PathBuf>,
    grads: Option<GradientsParams>,
    interrupt: Option<Interrupt>,
    resumed: bool,
    /// The LR of the latest optimizer step.
    step_lr: f64,
    /// Wall seconds of each epoch run by this process.
    epoch_seconds: Vec<f64>,
    /// Time per phase of the training steps.
    profile: StepProfile,
}

impl<'r> Fit<'r> {
    fn new(
        spec: DefaultTrainerSpec,
        parts: TrainingParts,
        run: &'r RunInfo,
    ) -> Result<(Self, Option<Resume>)> {
        let TrainingParts {
            device,
            seed,
            data,
            model,
            loss,
            metrics,
            optimizer,
            optimizer_name,
            scheduler,
            loggers,
            mut callbacks,
            augmentations,
            mut resume,
        } = parts;
        let dev_run = spec.fast_dev_run.batches().is_some();
        if dev_run {
            // A fast dev run writes no logs and no checkpoints.
            loggers.clear();
        }
        if spec.enable_checkpointing
            && !dev_run
            && !callbacks.iter().any(|(name, _)| name == "ModelCheckpoint")
        {
            let monitor = (data.info().len(Split::Val) > 0).then(|| "val_loss".to_string());
            let implicit = ModelCheckpointSpec::implicit(monitor)
                .build(&stoker::spec::BuildContext {
                    device: device.clone(),
                    seed,
                    data: None,
                    parameters: None,
                    base_lr: None,
                    horizon: None,
                })
                .map_err(|e| StokerError::msg(format!("the implicit ModelCheckpoint: {e}")))?;
            callbacks.push(("ModelCheckpoint".into(), implicit));
        }
        // Checkpointing callbacks run after the others (they see what the others logged).
        callbacks.sort_by_key(|(_, c)| c.runs_last());
        let optimizer = match resume.as_mut() {
            Some(r) => {
                let bytes = r.checkpoint.optimizer.take().ok_or_else(|| {
                    StokerError::msg(format!(
                        "{}: the checkpoint holds no optimizer state",
                        r.path.display()
                    ))
                })?;
                optimizer
                    .from_bytes(Bytes::from_bytes_vec(bytes))
                    .map_err(|e| {
                        StokerError::msg(format!(
                            "{}: the optimizer state does not load: {e}",
                            r.path.display()
                        ))
                    })?
            }
            None => optimizer,
        };
        let fit = Fit {
            spec,
            run,
            device,
            seed,
            data: Arc::from(data),
            model,
            loss,
            metrics,
            optimizer,
            optimizer_name,
            scheduler,
            loggers,
            callbacks,
            augmentations: Arc::new(augmentations),
            saving: !dev_run,
            epoch: 0,
            batch: 0,
            global_step: 0,
            latest: BTreeMap::new(),
            row: None,
            epoch_values: Vec::new(),
            saves: Vec::new(),
            deletes: Vec::new(),
            stop: None,
            min_epochs_noted: false,
            started: Instant::now(),
            elapsed_before: 0.0,
            best: None,
            best_metrics: BTreeMap::new(),
            best_epoch: None,
            last_checkpoint: None,
            grads: None,
            interrupt: None,
            resumed: false,
            step_lr: 0.0,
            epoch_seconds: Vec::new(),
            profile: StepProfile::default(),
        };
        Ok((fit, resume))
    }

    fn elapsed(&self) -> f64 {
        self.elapsed_before + self.started.elapsed().as_secs_f64()
    }

    fn position(&self, batches_in_epoch: usize) -> Position {
        Position {
            epoch: self.epoch,
            global_step: self.global_step,
            batch: self.batch,
            batches_in_epoch,
        }
    }

    fn train_batches(&self) -> Result<usize> {
        let all = self
            .data
            .epoch(Split::Train, self.epoch, self.train_order())?
            .len();
        Ok(self.spec.train_batches(all))
    }

    fn train_order(&self) -> Order {
        if self.spec.overfit_batches.is_zero() {
            Order::Configured
        } else {
            Order::Sequential
        }
    }

    fn limit(&self, split: Split) -> Result<usize> {
        let all = self.data.epoch(split, 0, Order::Sequential)?.len();
        if let Some(k) = self.spec.fast_dev_run.batches() {
            return Ok(k.min(all));
        }
        let limit = match split {
            Split::Val if !self.spec.overfit_batches.is_zero() => self.spec.overfit_batches,
            Split::Val => self.spec.limit_val_batches,
            Split::Test => self.spec.limit_test_batches,
            Split::Train => self.spec.limit_train_batches,
        };
        Ok(limit.of(all))
    }

    /// Runs `f` on every callback and takes in what they asked for.
    fn hook(
        &mut self,
        batches_in_epoch: usize,
        mut f: impl FnMut(&mut dyn Callback, &mut HookContext<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut control = Control::default();
        let position = self.position(batches_in_epoch);
        let lr = self.scheduler.lr();
        for (name, callback) in self.callbacks.iter_mut() {
            let mut ctx = HookContext {
                position,
                metrics: &self.latest,
                model: self.model.as_mut(),
                data: self.data.as_ref(),
                device: &self.device,
                run_dir: &self.run.dir,
                lr,
                optimizer: &self.optimizer_name,
                log_every_n_steps: self.spec.log_every_n_steps,
                control: &mut control,
            };
            f(callback.as_mut(), &mut ctx)
                .map_err(|e| StokerError::msg(format!("callback {name}: {e}")))?;
        }
        self.absorb(control)
    }

    fn absorb(&mut self, control: Control) -> Result<()> {
        for note in control.notes {
            console::note(note);
        }
        if !control.log.is_empty() {
            self.log(control.log)?;
        }
        if let Some(reason) = control.stop
            && self.stop.is_none()
        {
            self.stop = Some(reason);
        }
        self.saves.extend(control.saves);
        self.deletes.extend(control.deletes);
        self.update_best();
        Ok(())
    }

    fn update_best(&mut self) {
        let best = self.callbacks.iter().find_map(|(_, c)| c.best_checkpoint());
        if let Some(best) = best
            && self.best.as_ref().map(|b| &b.path) != Some(&best.path)
        {
            self.best_metrics = self.latest.clone();
            self.best_epoch = Some(self.epoch);
            self.best = Some(best);
        }
    }

    /// Logs values at the current (epoch, step), merging them into one row per position.
    fn log(&mut self, values: Vec<(String, f64)>) -> Result<()> {
        let (epoch, step) = (self.epoch, self.global_step);
        if self
            .row
            .as_ref()
            .is_some_and(|r| (r.epoch, r.step) != (epoch, step))
        {
            self.flush_row()?;
        }
        let row = self.row.get_or_insert(Row {
            epoch,
            step,
            values: Vec::new(),
        });
        for (name, value) in values {
            self.latest.insert(name.clone(), value);
            match row.values.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => row.values.push((name, value)),
            }
        }
        Ok(())
    }

    fn flush_row(&mut self) -> Result<()> {
        if let Some(row) = self.row.take() {
            let row = LogRow {
                epoch: row.epoch,
                step: row.step,
                values: row.values,
            };
            self.loggers.each(|_, logger| logger.log(&row))?;
        }
        Ok(())
    }

    /// The bytes of a checkpoint of the current state.
    fn checkpoint_bytes(&mut self, weights_only: bool) -> Result<Vec<u8>> {
        let weights = self.model.to_safetensors()?;
        let (resume, optimizer) = if weights_only {
            (None, None)
        } else {
            let mut callbacks = Vec::new();
            for (name, callback) in self.callbacks.iter_mut() {
                callbacks.push((name.clone(), callback.on_save_checkpoint()?));
            }
            let mut train_metrics = Vec::new();
            for metric in &self.metrics.train {
                train_metrics.push(metric.state()?);
            }
            let optimizer = self.optimizer.into_bytes().map_err(|e| {
                StokerError::msg(format!("the optimizer state does not serialize: {e}"))
            })?;
            let resume = ResumeState {
                param_ids: self.model.param_ids(),
                scheduler: self.scheduler.state(),
                train_metrics,
                callbacks,
                loggers: self.loggers.states(),
                best_checkpoint: self.best.as_ref().map(|b| b.path.clone()),
                elapsed_seconds: self.elapsed(),
            };
            (Some(resume), Some(optimizer.to_vec()))
        };
        let state = CheckpointState {
            epoch: self.epoch,
            batch: self.batch,
            global_step: self.global_step,
            seed: self.seed,
            config: self.run.config_yaml.clone(),
            metrics: self.latest.clone(),
            resume,
        };
        let state = serde_json::to_value(&state).map_err(|e| StokerError::msg(e.to_string()))?;
        checkpoint::to_bytes(&weights, optimizer.as_deref(), &state)
    }

    /// Writes the checkpoints callbacks asked for, then deletes what they asked to delete.
    fn write_saves(&mut self) -> Result<()> {
        if self.saves.is_empty() && self.deletes.is_empty() {
            return Ok(());
        }
        let saves = std::mem::take(&mut self.saves);
        let deletes = std::mem::take(&mut self.deletes);
        if !self.saving {
            return Ok(());
        }
        self.flush_row()?;
        let (mut full, mut light) = (None, None);
        for request in &saves {
            let slot = if request.weights_only {
                &mut light
            } else {
                &mut full
            };
            if slot.is_none() {
                *slot = Some(self.checkpoint_bytes(request.weights_only)?);
            }
            if let Some(dir) = request.path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| StokerError::io(dir, e))?;
            }
            write_atomic(&request.path, slot.as_ref().expect("just filled"))?;
            if !request.weights_only {
                self.last_checkpoint = Some(request.path.clone());
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

    fn restore(&mut self, resume: Resume) -> Result<()> {
        let path = resume.path.display().to_string();
        let state = resume.state;
        let saved = state.resume.ok_or_else(|| {
            StokerError::msg(format!(
                "{path} holds weights only and cannot be resumed from"
            ))
        })?;
        self.model.load_safetensors(resume.checkpoint.weights)?;
        self.model.set_param_ids(&saved.param_ids)?;
        self.scheduler.load_state(&saved.scheduler)?;
        if saved.train_metrics.len() != self.metrics.train.len() {
            return Err(StokerError::msg(format!(
                "{path}: it has {} training metrics, the config {}",
                saved.train_metrics.len(),
                self.metrics.train.len()
            )));
        }
        for (metric, s) in self.metrics.train.iter_mut().zip(&saved.train_metrics) {
            metric.load_state(s, &self.device)?;
        }
        let names = |list: &[(String, serde_json::Value)]| {
            list.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
        };
        let ours: Vec<String> = self.callbacks.iter().map(|(n, _)| n.clone()).collect();
        if names(&saved.callbacks) != ours {
            return Err(StokerError::msg(format!(
                "{path}: it was written with callbacks [{}], the config has [{}]",
                names(&saved.callbacks).join(", "),
                ours.join(", ")
            )));
        }
        for ((_, callback), (_, s)) in self.callbacks.iter_mut().zip(&saved.callbacks) {
            callback.on_load_checkpoint(s)?;
        }
        let run = self.run;
        self.loggers.each(
            |name, logger| match saved.loggers.iter().find(|(n, _)| n == name) {
                Some((_, s)) => logger.resume(run, s),
                None => logger.start(run),
            },
        )?;
        self.epoch = state.epoch;
        self.batch = state.batch;
        self.global_step = state.global_step;
        self.latest = state.metrics;
        self.elapsed_before = saved.elapsed_seconds;
        self.resumed = true;
        self.update_best();
        console::note(format!(
            "resumed from {path} at epoch {}, batch {} of the epoch, step {}",
            self.epoch, self.batch, self.global_step
        ));
        Ok(())
    }

    fn sanity_check(&mut self) -> Result<()> {
        let steps = self.spec.num_sanity_val_steps;
        if steps == 0
            || self.spec.fast_dev_run.batches().is_some()
            || self.data.info().len(Split::Val) == 0
        {
            return Ok(());
        }
        let all = self.limit(Split::Val)?;
        let n = if steps < 0 {
            all
        } else {
            (steps as usize).min(all)
        };
        if n == 0 {
            return Ok(());
        }
        let eval = self.model.for_eval();
        evaluate(
            eval.as_ref(),
            self.data.as_ref(),
            Split::Val,
            self.loss.as_ref(),
            &mut self.metrics.val,
            Some(n),
        )
        .map_err(|e| StokerError::msg(format!("sanity check: {e}")))?;
        for metric in self.metrics.val.iter_mut() {
            metric.reset();
        }
        console::note(format!(
            "sanity check passed ({n} validation batch{})",
            if n == 1 { "" } else { "es" }
        ));
        Ok(())
    }

    /// The first `limit` batches of `split` through an evaluation copy of the model.
    fn evaluate(&mut self, split: Split, limit: usize) -> Result<Vec<(String, f64)>> {
        let eval = self.model.for_eval();
        let values = evaluate(
            eval.as_ref(),
            self.data.as_ref(),
            split,
            self.loss.as_ref(),
            self.metrics.of(split),
            Some(limit),
        )?;
        self.write_artifacts(split)?;
        Ok(values)
    }

    /// Writes the files the metrics of `split` keep with the run (`confusion_matrix_val.csv`).
    fn write_artifacts(&mut self, split: Split) -> Result<()> {
        for metric in self.metrics.of(split).iter_mut() {
            for (name, content) in metric.artifacts()? {
                if self.saving {
                    write_atomic(
                        &self.run.dir.join(format!("{name}_{split}.csv")),
                        content.as_bytes(),
                    )?;
                    let tag = format!("{name}_{split}");
                    let step = self.global_step;
                    self.loggers
                        .each(|_, logger| logger.log_table(&tag, step, &content))?;
                }
            }
        }
        Ok(())
    }

    fn has_val(&self) -> Result<bool> {
        Ok(self.data.info().len(Split::Val) > 0 && self.limit(Split::Val)? > 0)
    }

    fn validate(&mut self, batches_in_epoch: usize) -> Result<()> {
        self.hook(batches_in_epoch, |c, ctx| c.on_validation_start(ctx))?;
        let limit = self.limit(Split::Val)?;
        let values = self.evaluate(Split::Val, limit)?;
        self.epoch_values.retain(|(n, _)| !n.starts_with("val_"));
        self.epoch_values.extend(values.iter().cloned());
        self.log(values)?;
        self.hook(batches_in_epoch, |c, ctx| c.on_validation_end(ctx))
    }

    fn steps_exhausted(&self) -> bool {
        self.spec
            .max_steps
            .is_some_and(|max| self.global_step >= max)
    }

    fn time_exhausted(&self) -> bool {
        self.spec
            .max_time
            .is_some_and(|t| self.elapsed() >= t.0.as_secs_f64())
    }

    fn may_stop(&self, epochs_done: usize) -> bool {
        epochs_done >= self.spec.min_epochs
    }

    /// One optimizer step from the accumulated gradients.
    fn optimizer_step(&mut self, batches_in_epoch: usize) -> Result<()> {
        let place = Place {
            epoch: self.epoch,
            step: self.global_step + 1,
            batch: self.batch,
        };
        let grads = self
            .grads
            .take()
            .expect("a boundary follows at least one backward pass");
        if self.spec.detect_anomaly {
            anomaly::check_gradients(self.model.as_ref(), &grads, &place)?;
        }
        self.hook(batches_in_epoch, |c, ctx| {
            c.on_before_optimizer_step(ctx, &grads)
        })?;
        self.log_histograms(&grads)?;
        let lr = self.scheduler.lr();
        self.step_lr = lr;
        let grads = match (
            self.spec.gradient_clip_val,
            self.spec.gradient_clip_algorithm,
        ) {
            (None, _) => grads,
            (Some(v), ClipAlgorithm::Norm) => clip::clip_by_norm(self.model.as_ref(), grads, v).0,
            (Some(v), ClipAlgorithm::Value) => clip::clip_by_value(self.model.as_ref(), grads, v),
        };
        self.model.optimizer_step(&mut self.optimizer, lr, grads);
        self.scheduler.on_optimizer_step();
        self.global_step += 1;
        Ok(())
    }

    /// Runs the rest of the current epoch.
    fn run_epoch(&mut self) -> Result<EpochEnd> {
        let n = self.train_batches()?;
        let has_val = self.has_val()?;
        let validate_epoch = has_val
            && self
                .spec
                .check_val_every_n_epoch
                .is_some_and(|c| (self.epoch + 1).is_multiple_of(c));
        let interval = match self.spec.val_check_interval {
            Limit::Batches(k) => k.max(1),
            Limit::Fraction(f) => ((n as f64 * f) as usize).max(1),
        };
        let shape = EpochShape {
            n,
            accumulate: self.spec.accumulate_grad_batches,
            validate_epoch,
            has_val,
            interval,
        };
        if self.batch == 0 {
            for metric in self.metrics.train.iter_mut() {
                metric.reset();
            }
            self.epoch_values.clear();
            self.hook(n, |c, ctx| c.on_train_epoch_start(ctx))?;
        }
        let epoch_started = Instant::now();
        let lr = self.scheduler.lr();
        if let EpochEnd::Interrupted = self.run_batches(shape)? {
            return Ok(EpochEnd::Interrupted);
        }

        // The epoch's end: its training metrics, validation, callbacks, the scheduler.
        let values = collect(Split::Train, &mut self.metrics.train)?;
        self.write_artifacts(Split::Train)?;
        self.epoch_values.splice(0..0, values.iter().cloned());
        self.log(values)?;
        let validated_at_end = has_val
            && self.spec.check_val_every_n_epoch.is_none()
            && self.batch.is_multiple_of(interval);
        if validate_epoch && !validated_at_end {
            self.validate(n)?;
        }
        self.hook(n, |c, ctx| c.on_train_epoch_end(ctx))?;
        self.scheduler.on_epoch_end(&self.latest)?;
        let seconds = epoch_started.elapsed().as_secs_f64();
        self.epoch_seconds.push(seconds);
        self.print_epoch(lr, seconds);
        self.epoch += 1;
        self.batch = 0;
        self.flush_row()?;
        self.write_saves()?;
        Ok(EpochEnd::Done)
    }

    fn run_batches(&mut self, shape: EpochShape) -> Result<EpochEnd> {
        let data = Arc::clone(&self.data);
        let augmentations = Arc::clone(&self.augmentations);
        let plan = Plan {
            data: &*data,
            augmentations: &augmentations,
            seed: self.seed,
            epoch: self.epoch,
            order: self.train_order(),
        };
        let (first, workers, prefetch) =
            (self.batch, self.spec.num_workers, self.spec.prefetch_factor);
        std::thread::scope(|scope| {
            let mut batches = Batches::start(scope, plan, first, shape.n, workers, prefetch)?;
            self.run_steps(&mut batches, shape)
        })
    }

    /// The steps of the rest of the epoch, on `batches`.
    fn run_steps(&mut self, batches: &mut Batches<'_>, shape: EpochShape) -> Result<EpochEnd> {
        let EpochShape {
            n,
            accumulate,
            validate_epoch,
            has_val,
            interval,
        } = shape;
        let mut progress = EpochProgress::start(
            self.spec.enable_progress_bar,
            self.epoch_label(),
            self.batch,
            n,
        );
        let mut mark = Instant::now();
        while self.batch < n {
            // The previous step's tensors and autodiff graph were freed since the last lap.
            self.profile.lap(Phase::Release, &mut mark);
            let index = self.batch;
            let epoch = self.epoch;
            let at = move |e: StokerError| {
                StokerError::msg(format!("epoch {epoch}, train batch {index}: {e}"))
            };
            let batch = batches.next(index).map_err(at)?;
            // Randomness inside the step (augmentations, dropout) depends only on the seed, the
            // epoch and the batch.
            self.device.seed(step_seed(self.seed, self.epoch, index));
            self.profile.lap(Phase::Data, &mut mark);
            self.hook(n, |c, ctx| c.on_train_batch_start(ctx, &batch))?;
            self.profile.lap(Phase::Hooks, &mut mark);
            let output = self.model.forward(&batch).map_err(at)?;
            let loss = self.loss.forward(&output, &batch).map_err(at)?;
            let place = Place {
                epoch: self.epoch,
                step: self.global_step + 1,
                batch: index,
            };
            if self.spec.detect_anomaly {
                anomaly::check_loss(&loss.total, &place)?;
            }
            self.profile.lap(Phase::Forward, &mut mark);
            // Metrics see physical units when the data is normalized.
            let decoded = if self.metrics.train.is_empty() {
                None
            } else {
                self.data.decode(&batch, &output).map_err(at)?
            };
            let (metric_batch, metric_output) =
                decoded.as_ref().map_or((&batch, &output), |(b, o)| (b, o));
            let view = StepView {
                batch: metric_batch,
                output: metric_output,
                loss: &loss,
            };
            for metric in self.metrics.train.iter_mut() {
                metric.update(&view).map_err(at)?;
            }
            self.profile.lap(Phase::Metrics, &mut mark);
            let scaled = if accumulate > 1 {
                loss.total.clone().div_scalar(accumulate as f64)
            } else {
                loss.total.clone()
            };
            let grads = self.model.backward(scaled);
            self.grads = Some(match self.grads.take() {
                Some(sum) => self.model.add_gradients(sum, grads),
                None => grads,
            });
            let boundary = (index + 1).is_multiple_of(accumulate) || index + 1 == n;
            self.profile.lap(Phase::Backward, &mut mark);
            if boundary {
                self.optimizer_step(n)?;
                self.profile.lap(Phase::Optimizer, &mut mark);
                if self.global_step.is_multiple_of(self.spec.log_every_n_steps) {
                    let value = loss.total.clone().into_scalar::<f64>();
                    self.log(vec![
                        ("train_loss_step".into(), value),
                        ("lr".into(), self.step_lr),
                    ])?;
                }
            }
            self.batch = index + 1;
            if progress.message_due() {
                let value = loss.total.clone().into_scalar::<f64>();
                progress.advance(self.batch, Some(self.progress_message(value)));
            } else {
                progress.advance(self.batch, None);
            }
            self.profile.lap(Phase::Logging, &mut mark);
            self.hook(n, |c, ctx| c.on_train_batch_end(ctx, &view, boundary))?;
            self.profile.step();
            if !boundary {
                self.profile.lap(Phase::Hooks, &mut mark);
                continue;
            }
            let done = self.batch;
            let due = match self.spec.check_val_every_n_epoch {
                None => has_val && (self.epoch * n + done).is_multiple_of(interval),
                Some(_) => validate_epoch && done.is_multiple_of(interval) && done < n,
            };
            if due {
                self.validate(n)?;
            }
            self.write_saves()?;
            self.profile.lap(Phase::Hooks, &mut mark);
            if self.stop.is_some() && self.may_stop(self.epoch)
                || self.steps_exhausted()
                || self.time_exhausted()
            {
                break;
            }
            if self.interrupt.as_ref().is_some_and(Interrupt::requested) {
                return Ok(EpochEnd::Interrupted);
            }
        }
        Ok(EpochEnd::Done)
    }

    /// `epoch 3/20` (or `epoch 3` when only steps or time bound training).
    fn epoch_label(&self) -> String {
        match self.spec.epochs() {
            Some(max) => {
                let width = max.to_string().len();
                format!("epoch {:>width$}/{max}", self.epoch + 1)
            }
            None => format!("epoch {}", self.epoch + 1),
        }
    }

    /// The progress bar's message: the live loss, the chosen metrics, the LR.
    fn progress_message(&self, loss: f64) -> String {
        let mut parts = vec![format!("loss {}", format_value(loss))];
        let chosen: Vec<&String> = if self.spec.progress_bar_metrics.is_empty() {
            self.latest
                .keys()
                .filter(|k| k.starts_with("val_"))
                .collect()
        } else {
            self.spec.progress_bar_metrics.iter().collect()
        };
        for name in chosen {
            if let Some(value) = self.latest.get(name) {
                parts.push(format!("{name} {}", format_value(*value)));
            }
        }
        parts.push(format!("lr {:.2e}", self.scheduler.lr()));
        parts.join("  ")
    }

    /// Histograms of every weight and gradient, for the loggers that want them at this step.
    fn log_histograms(&mut self, grads: &GradientsParams) -> Result<()> {
        let step = self.global_step + 1;
        if !self.loggers.wants_histograms(step) {
            return Ok(());
        }
        let values = |tensor: stoker::prelude::Tensor<1>| {
            tensor
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| StokerError::msg(format!("histogram values: {e:?}")))
        };
        let mut tensors = Vec::new();
        for (path, tensor) in self.model.parameters_flat() {
            tensors.push((format!("weights/{path}"), values(tensor)?));
        }
        for (path, tensor) in self.model.gradients_flat(grads) {
            tensors.push((format!("gradients/{path}"), values(tensor)?));
        }
        self.loggers.each(|_, logger| {
            if !logger
                .histogram_every_n_steps()
                .is_some_and(|n| n > 0 && step.is_multiple_of(n))
            {
                return Ok(());
            }
            for (tag, values) in &tensors {
                logger.log_histogram(tag, step, values)?;
            }
            Ok(())
        })
    }

    fn print_epoch(&self, lr: f64, seconds: f64) {
        let mut line = self.epoch_label();
        line.push_str(&format!("  step {}", self.global_step));
        for (name, value) in &self.epoch_values {
            line.push_str(&format!("  {name} {}", format_value(*value)));
        }
        line.push_str(&format!("  lr {lr:.2e}  {seconds:.2}s"));
        console::line(line);
    }

    /// The whole fit (after [`Fit::new`]).
    fn fit(&mut self, resume: Option<Resume>) -> Result<FitReport> {
        match resume {
            Some(resume) => self.restore(resume)?,
            None => {
                let run = self.run;
                self.loggers.each(|_, logger| logger.start(run))?;
            }
        }
        if self.spec.enable_model_summary {
            console::line(format!(
                "model summary\n{}",
                model_summary(&self.model.parameters())
            ));
        }
        if let Some(k) = self.spec.fast_dev_run.batches() {
            console::note(format!(
                "fast_dev_run: {k} batch(es) of train, val and test, no checkpoints, no logs"
            ));
        }
        self.interrupt = Interrupt::install().ok();
        let n = self.train_batches()?;
        self.hook(n, |c, ctx| c.on_fit_start(ctx))?;
        if !self.resumed {
            self.sanity_check()?;
        }
        let mut interrupted = false;
        loop {
            if self.spec.epochs().is_some_and(|max| self.epoch >= max)
                || self.steps_exhausted()
                || self.time_exhausted()
            {
                break;
            }
            if let Some(reason) = &self.stop {
                if self.may_stop(self.epoch) {
                    break;
                }
                if !self.min_epochs_noted {
                    console::note(format!(
                        "{reason}, but min_epochs is {}: training goes on",
                        self.spec.min_epochs
                    ));
                    self.min_epochs_noted = true;
                }
            }
            if let EpochEnd::Interrupted = self.run_epoch()? {
                interrupted = true;
                break;
            }
            if self.interrupt.as_ref().is_some_and(Interrupt::requested) {
                interrupted = true;
                break;
            }
        }
        self.interrupt = None;
        if interrupted {
            return self.interrupted();
        }
        let n = self.train_batches()?;
        self.hook(n, |c, ctx| c.on_fit_end(ctx))?;
        self.write_saves()?;
        let test_metrics = self.test_after_fit()?;
        self.flush_row()?;
        let stopped_early = self.stop.clone().or_else(|| {
            if self.steps_exhausted() && self.spec.epochs().is_some_and(|e| self.epoch < e) {
                Some(format!("max_steps {} reached", self.global_step))
            } else if self.time_exhausted() {
                Some("max_time reached".into())
            } else {
                None
            }
        });
        if let Some(reason) = &stopped_early {
            console::note(format!("stopped: {reason}"));
        }
        Ok(self.report(false, stopped_early, test_metrics))
    }

    fn report(
        &self,
        interrupted: bool,
        stopped_early: Option<String>,
        test_metrics: BTreeMap<String, f64>,
    ) -> FitReport {
        FitReport {
            final_metrics: self.latest.clone(),
            best_metrics: self.best_metrics.clone(),
            monitor: self.best.as_ref().map(|b| b.monitor.clone()),
            best_epoch: self.best_epoch,
            epochs: self.epoch,
            global_step: self.global_step,
            best_checkpoint: self.best.as_ref().map(|b| b.path.clone()),
            last_checkpoint: self.last_checkpoint.clone(),
            stopped_early,
            interrupted,
            test_metrics,
            epoch_seconds: self.epoch_seconds.clone(),
            step_profile: self.profile.mean_micros(),
            trainable_parameters: self
                .model
                .parameters()
                .iter()
                .filter(|p| p.trainable)
                .map(|p| p.shape.iter().product::<usize>())
                .sum(),
        }
    }

    /// A signal stopped the loop at a consistent point: write a checkpoint to resume from.
    fn interrupted(&mut self) -> Result<FitReport> {
        let path = self
            .run
            .dir
            .join("checkpoints")
            .join("interrupted.safetensors");
        self.saves.push(SaveRequest {
            path: path.clone(),
            weights_only: false,
        });
        let saving = self.saving;
        self.saving = true;
        self.write_saves()?;
        self.saving = saving;
        self.flush_row()?;
        console::note(format!(
            "interrupted at epoch {}, batch {} of the epoch, step {}; checkpoint {}",
            self.epoch,
            self.batch,
            self.global_step,
            path.display()
        ));
        Ok(self.report(
            true,
            Some("interrupted by a signal".into()),
            BTreeMap::new(),
        ))
    }

    fn test_after_fit(&mut self) -> Result<BTreeMap<String, f64>> {
        if !self.spec.test_after_fit {
            return Ok(BTreeMap::new());
        }
        if self.data.info().len(Split::Test) == 0 {
            console::note("test_after_fit: the data has no test split; skipped");
            return Ok(BTreeMap::new());
        }
        let weights = match &self.best {
            Some(best) if best.path.is_file() => {
                let checkpoint = checkpoint::load(&best.path)?;
                self.model.load_safetensors(checkpoint.weights)?;
                format!("the best checkpoint {}", best.path.display())
            }
            _ => "the final weights".to_string(),
        };
        let limit = self.limit(Split::Test)?;
        let values = self.evaluate(Split::Test, limit)?;
        let line: Vec<String> = values
            .iter()
            .map(|(n, v)| format!("{n} {}", format_value(*v)))
            .collect();
        console::line(format!("test ({weights}): {}", line.join("  ")));
        self.log(values.clone())?;
        Ok(values.into_iter().collect())
    }

    /// Training failed: tell the callbacks, write what they ask for, close the loggers.
    fn fail(&mut self, error: StokerError) -> StokerError {
        let message = error.to_string();
        let n = self.train_batches().unwrap_or(0);
        let hooks = self.hook(n, |c, ctx| c.on_exception(ctx, &message));
        let saving = self.saving;
        self.saving = true;
        let saved = self.write_saves();
        self.saving = saving;
        let flushed = self.flush_row();
        for problem in [hooks.err(), saved.err(), flushed.err()]
            .into_iter()
            .flatten()
        {
            console::warn(format!("while handling the failure: {problem}"));
        }
        error
    }
}

/// A value as the epoch line prints it.
pub fn format_value(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 || (1e-3..1e4).contains(&magnitude) {
        format!("{value:.4}")
    } else {
        format!("{value:.3e}")
    }
}
