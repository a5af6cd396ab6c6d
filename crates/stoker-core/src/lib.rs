//! stoker's core: the contracts every other crate implements or uses.
//!
//! - [`registry`]: components register themselves by name (`#[derive(Component)]`).
//! - [`spec`]: one spec trait per kind; a spec is the parsed `args` and builds the runtime object.
//! - [`config`] and [`experiment`]: experiment files, `extends:`, `--set`, resolution and errors.
//! - [`batch`], [`data`], [`model`], [`loss`], [`metric`], [`schedule`], [`logger`],
//!   [`trainer`], [`strategy`], [`precision`]: the runtime contracts.
//! - [`prelude`]: what a component crate usually needs, in one `use`.
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
pub mod precision;
pub mod registry;
pub mod rng;
pub mod run;
pub mod schedule;
pub mod spec;
pub mod spellings;
pub mod strategy;
pub mod sweep;
pub mod targets;
pub mod trainer;
pub mod transform;
pub mod tuning;

pub use burn;
pub use error::{BatchError, BuildError, Result, StokerError};
pub use stoker_derive::{Args, Component};

/// What a component crate usually needs, in one `use stoker::prelude::*;`.
pub mod prelude {
    pub use crate::augment::Augmentation;
    pub use crate::batch::{Batch, Output, TensorMap};
    pub use crate::burn;
    pub use crate::burn::module::Module;
    pub use crate::burn::tensor::{Device, Int, Tensor, TensorData};
    pub use crate::callback::{Callback, Control, HookContext, Position};
    pub use crate::data::{
        DataInfo, DataModule, ElementKind, EpochBatches, Order, Shard, Split, TensorInfo,
    };
    pub use crate::error::{BatchError, BuildError, Result, StokerError};
    pub use crate::logger::{LogRow, Logger, RunInfo};
    pub use crate::loss::{Loss, LossValue, PhysicsTerm};
    pub use crate::metric::{Metric, Mode, Reducer, StepView};
    pub use crate::model::{DynModel, Model, ModelHandle, boxed};
    pub use crate::precision::Precision;
    pub use crate::schedule::{Horizon, LrScheduler};
    pub use crate::spec::*;
    pub use crate::strategy::Strategy;
    pub use crate::transform::SignalTransform;
    pub use serde::{Deserialize, Serialize};
    pub use stoker_derive::{Args, Component};
}

/// What `#[derive(Component)]`'s expansion names.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use serde_yaml;
}
