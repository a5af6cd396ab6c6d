//! One fit's parts and state: what the loops and the checkpoint connector work on, and the two
//! things every part of the loop does, calling a hook on every callback and logging a value.

use stoker::burn::optim::ModuleOptimizer;
use stoker::burn::tensor::Bytes;
use stoker::callback::{Callback, Control, HookContext};
use stoker::data::{Order, Shard, Split, has_validation};
use stoker::error::{Result, StokerError};
use stoker::logger::RunInfo;
use stoker::precision::Precision;
use stoker::strategy::Strategy;
use stoker::trainer::{Resume, TrainingParts};

use crate::args::LoopArgs;
use crate::connectors::callbacks::CallbackConnector;
use crate::connectors::logging::LogConnector;
use crate::connectors::saves::SaveQueue;
use crate::loops::evaluation::eval_sets;
use crate::non_finite::LossWatch;
use crate::profile::StepProfile;
use crate::signals::Interrupt;
use crate::state::LoopState;
use crate::step::TrainingStep;

/// A fit in progress.
pub struct Fit<'r> {
    /// The loop's arguments.
    pub args: &'r LoopArgs,
    /// The run it writes into.
    pub run: &'r RunInfo,
    /// How training is spread over processes.
    pub strategy: &'r mut dyn Strategy,
    /// The number format of the step.
    pub precision: &'r mut dyn Precision,
    /// The training step.
    pub step: &'r mut dyn TrainingStep,
    /// The components (the loggers, callbacks and checkpoint to resume from taken out: the
    /// connectors and [`Fit::new`] hold them).
    pub parts: TrainingParts,
    /// Where the loop is.
    pub state: LoopState,
    /// The loggers and the latest values.
    pub logs: LogConnector,
    /// The callbacks.
    pub callbacks: CallbackConnector,
    /// Checkpoints pending, the best and the last.
    pub saves: SaveQueue,
    /// The time of each phase of the steps.
    pub profile: StepProfile,
    /// SIGINT/SIGTERM, while training runs.
    pub interrupt: Option<Interrupt>,
    /// The sum of the training losses since the last read, kept on the device (the NaN watch).
    pub watch: LossWatch,
    /// Set once the fit failed: what is written then is this process's alone (no collective,
    /// since the other processes are elsewhere or gone).
    pub failing: bool,
}

impl<'r> Fit<'r> {
    /// Sets a fit up from the runner's parts (and the optimizer state of the checkpoint it
    /// resumes from, if any); returns the rest of the checkpoint, which the checkpoint connector
    /// restores.
    pub fn new(
        args: &'r LoopArgs,
        strategy: &'r mut dyn Strategy,
        precision: &'r mut dyn Precision,
        step: &'r mut dyn TrainingStep,
        mut parts: TrainingParts,
        run: &'r RunInfo,
    ) -> Result<(Self, Option<Resume>)> {
        stoker_native::checkpoint::set_enabled(args.gradient_checkpointing);
        let mut resume = parts.resume.take();
        let writing = !args.dev_run() && strategy.is_global_zero();
        if let Some(r) = resume.as_mut() {
            parts.optimizer = resumed_optimizer(parts.optimizer, r)?;
        }
        let has_val = has_validation(parts.data.as_ref());
        let callbacks = std::mem::take(&mut parts.callbacks);
        let loggers = parts.loggers.clone();
        let fit = Fit {
            args,
            run,
            strategy,
            precision,
            step,
            parts,
            state: LoopState::new(),
            logs: LogConnector::new(loggers, writing),
            callbacks: CallbackConnector::configure(callbacks, args, has_val),
            saves: SaveQueue::new(writing),
            profile: StepProfile::default(),
            interrupt: None,
            watch: LossWatch::default(),
            failing: false,
        };
        Ok((fit, resume))
    }

    /// Runs `f` on every callback (each one's notes printed as it returns), then takes in what
    /// they asked for: values logged, a stop request kept, checkpoints queued, the best
    /// checkpoint noted.
    pub fn hook(
        &mut self,
        batches_in_epoch: usize,
        f: impl FnMut(&mut dyn Callback, &mut HookContext<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut control = Control::default();
        let mut ctx = HookContext {
            position: self.state.position(batches_in_epoch),
            metrics: &self.logs.latest,
            epoch_metrics: &self.logs.epoch_values,
            model: self.parts.model.as_mut(),
            data: self.parts.data.as_ref(),
            device: &self.parts.device,
            run_dir: &self.run.dir,
            lr: self.parts.scheduler.lr(),
            elapsed: self.state.elapsed(),
            optimizer: &self.parts.optimizer_name,
            log_every_n_steps: self.args.log_every_n_steps,
            is_global_zero: self.strategy.is_global_zero(),
            control: &mut control,
        };
        self.callbacks.call(&mut ctx, f)?;
        if !control.log.is_empty() {
            self.log(std::mem::take(&mut control.log))?;
        }
        if let Some(reason) = control.stop {
            self.state.request_stop(reason);
        }
        self.saves.request(control.saves, control.deletes);
        let best = self.callbacks.best_checkpoint();
        self.saves
            .update_best(best, &self.logs.latest, self.state.epoch);
        Ok(())
    }

    /// Logs values at the current epoch and optimizer step.
    pub fn log(&mut self, values: Vec<(String, f64)>) -> Result<()> {
        self.logs
            .log(self.state.epoch, self.state.global_step, values)
    }

    /// Reads the sum of the training losses since the last read (one device read, where a step
    /// row is logged, at the epoch's end, before checkpoints and at the fit's end): an error
    /// that stops the run if there was one.
    pub fn check_finite_loss(&mut self) -> Result<()> {
        let last = self.saves.last.as_ref().map(|p| p.display().to_string());
        self.watch
            .check(self.state.epoch, self.state.global_step, last.as_deref())
    }

    /// Refuses a checkpoint's bytes whose weights hold a NaN or an infinity (see
    /// [`LossWatch::weights`]).
    pub fn check_finite_weights(&mut self, checkpoint: &[u8]) -> Result<()> {
        let last = self.saves.last.as_ref().map(|p| p.display().to_string());
        self.watch.weights(
            checkpoint,
            self.state.epoch,
            self.state.global_step,
            last.as_deref(),
        )
    }

    /// Whether SIGINT or SIGTERM arrived in this process (the loop reduces it over the
    /// processes before it acts on it).
    pub fn interrupt_requested(&self) -> bool {
        self.interrupt.as_ref().is_some_and(Interrupt::requested)
    }

    /// The order of the training epochs' samples (stored order when overfitting).
    pub fn train_order(&self) -> Order {
        if self.args.overfit_batches.is_zero() {
            Order::Configured
        } else {
            Order::Sequential
        }
    }

    /// The training batches of the current epoch.
    pub fn train_batches(&self) -> Result<usize> {
        let all = self
            .strategy
            .epoch(
                self.parts.data.as_ref(),
                Split::Train,
                self.state.epoch,
                self.train_order(),
            )?
            .len();
        Ok(self.args.train_batches(all))
    }

    /// The batches of `split` an evaluation runs over all processes together (the whole
    /// split, limited): what decides whether it runs, the same on every process. A process's
    /// own share may be empty when the split has fewer samples than processes; it then takes
    /// part with no batch. For validation with named sets, the sum over the sets, each limited
    /// on its own.
    pub fn eval_batches_of_all(&self, split: Split) -> Result<usize> {
        let mut total = 0;
        for (_, data) in eval_sets(self.parts.data.as_ref(), split) {
            let all = data.epoch(split, 0, Order::Sequential, Shard::WHOLE)?.len();
            total += self.args.eval_batches(split, all);
        }
        Ok(total)
    }

    /// Whether there is validation to run (on every process alike).
    pub fn has_val(&self) -> Result<bool> {
        Ok(has_validation(self.parts.data.as_ref()) && self.eval_batches_of_all(Split::Val)? > 0)
    }
}

/// The optimizer with the state the checkpoint of `resume` holds.
fn resumed_optimizer(optimizer: ModuleOptimizer, resume: &mut Resume) -> Result<ModuleOptimizer> {
    let path = resume.path.display().to_string();
    let bytes = resume.checkpoint.optimizer.take().ok_or_else(|| {
        StokerError::msg(format!("{path}: the checkpoint holds no optimizer state"))
    })?;
    optimizer
        .from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| StokerError::msg(format!("{path}: the optimizer state does not load: {e}")))
}
