//! A trainer is the loop plus a training step: [`Loop`] is the built loop (its arguments, its
//! strategy and its precision), [`StepTrainer`] runs it with a [`TrainingStep`]. A trainer
//! plugin builds both from its spec and returns the `StepTrainer` from `TrainerSpec::build`.

use stoker::error::{BuildError, Result};
use stoker::logger::RunInfo;
use stoker::precision::Precision;
use stoker::spec::{BuildContext, PrecisionSpec, StrategySpec};
use stoker::strategy::Strategy;
use stoker::trainer::{FitReport, Trainer, TrainingParts};

use stoker::console;

use crate::args::LoopArgs;
use crate::loops::fit;
use crate::step::TrainingStep;
use crate::strategy::environment::ClusterEnvironment;

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
        let precision = args
            .precision
            .parse::<dyn PrecisionSpec>("precision")?
            .build(ctx)?;
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
}
