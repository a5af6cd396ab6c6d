//! stoker: a training framework on Burn whose components register themselves by name.
//!
//! Plugin crates depend on this crate (and `serde`), implement a spec trait on a struct with
//! `#[derive(Component)]`, and are picked up by `cargo xtask train|list|check`. See
//! `docs/writing-a-plugin.md`.
//!
//! ```ignore
//! use stoker::prelude::*;
//!
//! /// A model that predicts zero.
//! #[derive(Debug, Clone, Serialize, Deserialize, Component)]
//! #[serde(deny_unknown_fields)]
//! #[component(model, name = "Zero")]
//! pub struct ZeroSpec {}
//! ```
//!
//! - everything of `stoker-core` (the contracts, `stoker::prelude`);
//! - [`training`]: the training loop (`stoker-trainer`), for trainer plugins that replace the
//!   training step and reuse the rest ([`training::TrainingStep`], [`training::LoopArgs`]).
//! - [`native`]: LibTorch fast paths (`stoker-native`): drop-in layers in [`native::nn`], and
//!   the LibTorch devices.
//! - [`dataset`]: what data modules are made of (`stoker-dataset`): file readers, splits held on
//!   the device with seeded batches, normalization.

pub use stoker_core::*;

/// LibTorch fast paths and devices (the `stoker-native` crate).
pub use stoker_native as native;

/// The building blocks of data modules (the `stoker-dataset` crate).
pub use stoker_dataset as dataset;

/// The training loop, reusable by trainer plugins (the `stoker-trainer` crate).
pub use stoker_trainer as training;
