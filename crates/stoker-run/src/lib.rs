//! The run lifecycle as a library: what `cargo xtask train` does, callable from Rust.
//!
//! 1. [`setup`] (an experiment file) or [`setup_from_yaml`] (YAML text) loads the experiment,
//!    applies `--set`-style overrides, builds every component and runs one trial batch: a
//!    mistake is a [`ConfigError`](stoker::config::ConfigError) naming the file, the YAML path
//!    and a fix, before anything is written.
//! 2. [`Assembled::train`] trains it: the run directory (or the one a resumed checkpoint
//!    belongs to), `config.yaml`, `run.log`, the fit, `summary.json`, the report, and the
//!    loggers closed. It returns a [`Trained`]: the run directory, the summary, and the
//!    trainer's [`FitReport`](stoker::trainer::FitReport) with the per-epoch history.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let yaml = "
//! name: quick
//! environment: {seed: 0, device: cpu}
//! data: {name: SyntheticRegression, args: {n_samples: 512, n_features: 4, batch_size: 32}}
//! model: {name: MLP, args: {sizes: [4, 16, 1]}}
//! loss: mse
//! optimizer: {name: adam, args: {lr: 0.01}}
//! trainer: {name: Default_trainer, args: {max_epochs: 3}}
//! ";
//! let run = stoker_run::setup_from_yaml(yaml, &[])?;
//! let trained = run.train(&stoker_run::TrainOptions::default())?;
//! for (epoch, values) in trained.report.history.iter().enumerate() {
//!     println!("epoch {epoch}: val_loss {}", values["val_loss"]);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Plugin crates register their components when they are linked: a program that trains a
//! plugin's model names the plugin crate once (`use neural_operator as _;`).

// The framework's own component crates, linked so that their registrations reach every program
// that uses this crate.
use stoker_callbacks as _;
use stoker_data as _;
use stoker_loggers as _;
use stoker_losses as _;
use stoker_metrics as _;
use stoker_models as _;
use stoker_optim as _;

pub mod assemble;
pub mod close;
pub mod monitors;
pub mod normalization;
pub mod resume;
pub mod run_log;
pub mod schedule_change;
pub mod train;
pub mod tuner;

pub use assemble::{Assembled, panic_message};
pub use train::{RunError, TrainOptions, Trained};

use std::path::Path;
use std::time::Instant;

use stoker::config::ConfigError;

/// Loads the experiment file `config`, applies `sets` (`trainer.args.max_epochs=5`) and builds
/// it, ready to [`train`](Assembled::train).
pub fn setup(config: &Path, sets: &[String]) -> Result<Assembled, ConfigError> {
    run_log::capture();
    let started = Instant::now();
    let mut assembled = assemble::assemble(assemble::load(config, sets)?)?;
    assembled.built_seconds = started.elapsed().as_secs_f64();
    Ok(assembled)
}

/// [`setup`] from YAML text: `extends:` paths are relative to the working directory and the
/// run is named by the text's `name:` (else `experiment`).
pub fn setup_from_yaml(yaml: &str, sets: &[String]) -> Result<Assembled, ConfigError> {
    run_log::capture();
    let started = Instant::now();
    let mut assembled = assemble::assemble(assemble::load_yaml(yaml, sets)?)?;
    assembled.built_seconds = started.elapsed().as_secs_f64();
    Ok(assembled)
}
