//! A trainer is the loop plus a training step: [`Loop`] is the built loop (its arguments, its
//! strategy and its precision), [`StepTrainer`] runs it with a [`TrainingStep`]. A trainer
//! plugin builds both from its spec and returns the `StepTrainer` from `TrainerSpec::build`.

use stoker::batch::{Batch, Output};
use stoker::error::{BuildError, Result};
use stoker::logger::RunInfo;
use stoker::loss::{Loss, LossValue};
use stoker::model::DynModel;
use stoker::precision::Precision;
use stoker::registry::Named;
use stoker::spec::{BuildContext, PrecisionSpec, StrategySpec};
use stoker::strategy::Strategy;
use stoker::trainer::{FitReport, Trainer, TrainingParts};

use stoker::console;

use crate::args::LoopArgs;
use crate::loops::fit;
use crate::step::{TrainingStep, ValidationContext};
use crate::strategy::environment::ClusterEnvironment;

/// The precision `args` name: `precision` under its current name, or with `mixed_precision:
/// true` (the seeds' switch) the mixed precision of the device, `16-mixed` on CUDA and
/// `bf16-mixed` elsewhere, which the run log names.
fn precision_named(args: &LoopArgs, ctx: &BuildContext) -> Result<Named, BuildError> {
    let mut named = args.precision.clone();
    if args.precision_name() != named.name {
        console::note(format!(
            "precision `{}` is Lightning's old name of `{}`",
            named.name,
            args.precision_name()
        ));
        named.name = args.precision_name().to_string();
    }
    if !args.mixed_precision {
        return Ok(named);
    }
    match named.name.as_str() {
        "32-true" => {
            let on_cuda = stoker_native::device::libtorch_cuda_index(&ctx.device).is_some();
            let (name, device) = match on_cuda {
                true => ("16-mixed", "CUDA"),
                false => ("bf16-mixed", "the CPU"),
            };
            console::note(format!(
                "mixed_precision: true is `precision: {name}` on {device}"
            ));
            Ok(Named {
                name: name.into(),
                args: named.args,
            })
        }
        "16-mixed" | "bf16-mixed" => Ok(named),
        other => Err(BuildError::at(
            "mixed_precision",
            format!("is true, but `precision` is `{other}`, which is not mixed"),
        )
        .hint("drop `mixed_precision`, or set `precision: bf16-mixed` (or 16-mixed)")),
    }
}

/// The loop, built: its arguments, checked, and its strategy and precision.
pub struct Loop {
    /// The arguments.
    pub args: LoopArgs,
    /// How training is spread over devices and processes.
    pub strategy: Box<dyn Strategy>,
    /// The number format of a training step.
    pub precision: Box<dyn Precision>,
}

impl Loop {
    /// Checks `args` against the data of `ctx` and builds the strategy and the precision they
    /// name.
    pub fn build(args: &LoopArgs, ctx: &BuildContext) -> std::result::Result<Loop, BuildError> {
        args.validate(ctx.data()?)?;
        check_processes(args)?;
        let strategy = args
            .strategy
            .parse::<dyn StrategySpec>("strategy")?
            .build(ctx)?;
        let precision = precision_named(args, ctx)?
            .parse::<dyn PrecisionSpec>("precision")?
            .build(ctx)
            .map_err(|e| match e.arg {
                Some(_) => e.under("precision.args"),
                None => e.under("precision"),
            })?;
        Ok(Loop {
            args: args.clone(),
            strategy,
            precision,
        })
    }

    /// Trains with `step`: the whole fit, from set-up (or resume) to the last checkpoint.
    pub fn fit(
        &mut self,
        step: &mut dyn TrainingStep,
        parts: TrainingParts,
        run: &RunInfo,
    ) -> Result<FitReport> {
        fit::run(
            &self.args,
            self.strategy.as_mut(),
            self.precision.as_mut(),
            step,
            parts,
            run,
        )
    }
}

/// `devices` and `num_nodes` against the processes the launcher started: under a launcher,
/// `devices x num_nodes` must be its world size; a process started alone with more asked for
/// trains alone, and says so (`stoker train` starts the processes itself before this).
fn check_processes(args: &LoopArgs) -> std::result::Result<(), BuildError> {
    let asked = args.devices.unwrap_or(1) * args.num_nodes;
    if args.devices == Some(0) || args.num_nodes == 0 {
        return Err(BuildError::at(
            if args.num_nodes == 0 {
                "num_nodes"
            } else {
                "devices"
            },
            "must be at least 1",
        ));
    }
    let env = ClusterEnvironment::from_process().map_err(BuildError::new)?;
    match env {
        Some(env) if (args.devices.is_some() || args.num_nodes > 1) && asked != env.world_size => {
            return Err(BuildError::at(
                "devices",
                format!(
                    "devices {} x num_nodes {} is {asked} processes, and the launcher started {}",
                    args.devices.unwrap_or(1),
                    args.num_nodes,
                    env.world_size
                ),
            )
            .hint("make devices the processes per machine and num_nodes the machines the launcher started, or leave both out to follow the launcher"));
        }
        None if asked > 1 => console::warn(format!(
            "devices {} x num_nodes {} asks for {asked} processes, but this one was started alone and trains alone; `stoker train` starts them (or use --nproc, torchrun, srun)",
            args.devices.unwrap_or(1),
            args.num_nodes
        )),
        _ => {}
    }
    Ok(())
}

/// A [`Trainer`]: the loop with a training step.
pub struct StepTrainer<S: TrainingStep> {
    built: Loop,
    step: S,
}

impl<S: TrainingStep> StepTrainer<S> {
    /// The loop `built` running `step`.
    pub fn new(built: Loop, step: S) -> Self {
        StepTrainer { built, step }
    }
}

impl<S: TrainingStep + 'static> Trainer for StepTrainer<S> {
    fn fit(&mut self, parts: TrainingParts, run: &RunInfo) -> Result<FitReport> {
        self.built.fit(&mut self.step, parts, run)
    }

    fn logs(&self, name: &str) -> bool {
        self.step.logs(name)
    }

    fn validation_step(
        &mut self,
        model: &dyn DynModel,
        loss: &dyn Loss,
        batch: &Batch,
    ) -> Result<(Output, LossValue)> {
        self.step.validation_step(&ValidationContext {
            batch,
            model,
            loss,
            epoch: 0,
            global_step: 0,
        })
    }
}

/// A trainer's [`validation_step`](Trainer::validation_step) as a [`TrainingStep`], for an
/// evaluation outside training (`cargo xtask eval`).
pub struct TrainerValidation<'a>(pub &'a mut dyn Trainer);

impl TrainingStep for TrainerValidation<'_> {
    fn validation_step(&mut self, ctx: &ValidationContext<'_>) -> Result<(Output, LossValue)> {
        self.0.validation_step(ctx.model, ctx.loss, ctx.batch)
    }
}
