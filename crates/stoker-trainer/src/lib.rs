//! stoker's training loop, shaped as Lightning's `loops/` and `trainer/connectors/`, and open to
//! trainer plugins.
//!
//! A trainer is the loop plus a training step ([`trainer::StepTrainer`]). `Default_trainer`
//! ([`default_trainer`]) runs the default step; a plugin registers its own trainer, implements
//! [`step::TrainingStep`] (what one micro-batch, and one validation batch, does; extra state
//! kept in checkpoints) and reuses the rest by flattening [`args::LoopArgs`] into its spec.
//!
//! Reading order, top to bottom:
//! - [`loops::fit`]: set-up or resume, the sanity check, epochs until a limit or a stop
//!   request, the end of the fit; interrupts and failures.
//! - [`loops::epoch`]: the batches of one epoch and the one `should_validate` decision.
//! - [`loops::optimization`]: one micro-batch through the step; accumulation, the strategy's
//!   gradient reduction, the precision's unscaling, clipping, the optimizer and the schedule.
//! - [`loops::evaluation`]: sanity check, validation, test; `evaluate` for `stoker eval`.
//! - [`connectors`]: the callbacks (with the implicit ones), logged rows, checkpoint requests,
//!   checkpoint I/O and restore.
//! - [`context`]: a fit's parts and state; [`state`]: where the loop is.
//! - Seams: [`step`] (the training step), `stoker::strategy` and `stoker::precision` (their
//!   first implementations here: [`strategy::single_device`], [`precision::full`]).
//! - Pieces: [`args`], [`limits`], [`prefetch`], [`profile`], [`clip`], [`anomaly`],
//!   [`signals`], [`summary`], [`predict`]; the loop's own callbacks in [`callbacks`].

// `#[derive(Component)]` names `::stoker::...`: here that is the core crate.
extern crate stoker_core as stoker;

pub mod anomaly;
pub mod args;
pub mod clip;
pub mod context;
pub mod default_trainer;
pub mod limits;
pub mod loop_spec;
pub mod non_finite;
pub mod predict;
pub mod prefetch;
pub mod profile;
pub mod signals;
pub mod state;
pub mod step;
pub mod summary;
pub mod trainer;

/// The loops, each one idea: fit, epoch, optimization, evaluation.
pub mod loops {
    pub mod epoch;
    pub mod evaluation;
    pub mod fit;
    pub mod optimization;
}

/// Cross-cutting work the loops hand off: callbacks, logging, checkpoints.
pub mod connectors {
    pub mod callbacks;
    pub mod checkpoint;
    pub mod logging;
    pub mod saves;
}

/// The callbacks the loop itself provides: `ModelCheckpoint` and `Timer` (registered, and
/// added implicitly), the model summary and the progress bar (implicit only).
pub mod callbacks {
    pub mod model_checkpoint;
    pub mod model_summary;
    pub mod progress_bar;
    pub mod template;
    pub mod timer;
}

/// Strategies: how training is spread over devices and processes.
pub mod strategy {
    pub mod ddp;
    pub mod environment;
    pub mod single_device;
}

/// Precision plugins: the number format of a training step.
pub mod precision {
    pub mod bf16_true;
    pub mod full;
    pub mod grad_scaler;
    pub mod mixed;
}

pub use args::LoopArgs;
pub use default_trainer::DefaultTrainerSpec;
pub use loops::evaluation::evaluate;
pub use step::{
    DefaultStep, StepContext, StepOutput, TrainingStep, ValidationContext, default_training_step,
    default_validation_step, run_training_step,
};
pub use trainer::{Loop, StepTrainer, TrainerValidation};

#[cfg(test)]
mod test_model;
