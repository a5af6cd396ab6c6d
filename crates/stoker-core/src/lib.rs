//! stoker's core: the contracts every other crate implements or uses.
//!
//! - [`registry`]: components register themselves by name (`#[derive(Component)]`).
//! - [`spec`]: one spec trait per kind; a spec is the parsed `args` and builds the runtime object.
//! - [`config`] and [`experiment`]: experiment files, `extends:`, `--set`, resolution and errors.
//! - [`batch`], [`data`], [`model`], [`loss`], [`metric`], [`schedule`], [`logger`],
//!   [`trainer`]: the runtime contracts.
//! - [`checkpoint`], [`run`], [`fs`], [`rng`], [`device`], [`console`]: the pieces around them.

pub mod augment;
pub mod batch;
pub mod callback;
pub mod checkpoint;
pub mod config;
pub mod console;
pub mod data;
pub mod device;
pub mod duration;
pub mod error;
pub mod experiment;
pub mod fs;
pub mod logger;
pub mod loss;
pub mod metric;
pub mod model;
pub mod names;
pub mod native;
pub mod registry;
pub mod rng;
pub mod run;
pub mod schedule;
pub mod spec;
pub mod trainer;

pub use burn;
pub use error::{BatchError, BuildError, Result, StokerError};
