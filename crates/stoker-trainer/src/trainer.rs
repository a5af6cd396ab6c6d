//! A trainer is the loop plus a training step: [`Loop`] is the built loop (its arguments, its
//! strategy and its precision), [`StepTrainer`] runs it with a [`TrainingStep`]. A trainer
//! plugin builds both from its spec and returns the `StepTrainer` from `TrainerSpec::build`.

use stoker::error::{BuildError, Result};
use stoker::logger::RunInfo;
use stoker::precision::Precision;
use stoker::spec::{BuildContext, PrecisionSpec, StrategySpec};
use stoker::strategy::Strategy;
use stoker::trainer::{FitReport, Trainer, TrainingParts};

use crate::args::LoopArgs;
use crate::loops::fit;
use crate::step::TrainingStep;

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
