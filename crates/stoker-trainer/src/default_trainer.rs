//! `Default_trainer`: the loop with the default training step (forward, loss, backward).

use serde::{Deserialize, Serialize};
use stoker::error::BuildError;
use stoker::spec::{BuildContext, TrainerSpec};
use stoker::trainer::Trainer;
use stoker_derive::Component;

use crate::args::LoopArgs;
use crate::step::DefaultStep;
use crate::trainer::{Loop, StepTrainer};

/// Lightning's training loop: epochs and steps limits, gradient accumulation and clipping, validation every N epochs or steps, batch limits, overfitting and dev runs, sanity validation, step logging, anomaly detection, a test run after fitting, checkpoints that resume exactly.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[component(trainer, name = "Default_trainer")]
pub struct DefaultTrainerSpec {
    /// The loop's arguments.
    #[serde(flatten)]
    pub loop_args: LoopArgs,
}

impl TrainerSpec for DefaultTrainerSpec {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Trainer>, BuildError> {
        let built = Loop::build(&self.loop_args, ctx)?;
        Ok(Box::new(StepTrainer::new(built, DefaultStep)))
    }

    crate::loop_args_methods!();
}
