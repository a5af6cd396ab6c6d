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

pub use stoker_core::*;
pub use stoker_derive::Component;

/// What a plugin usually needs, in one `use stoker::prelude::*;`.
pub mod prelude {
    pub use serde::{Deserialize, Serialize};
    pub use stoker_core::augment::Augmentation;
    pub use stoker_core::batch::{Batch, Output, TensorMap};
    pub use stoker_core::burn;
    pub use stoker_core::burn::module::Module;
    pub use stoker_core::burn::tensor::{Device, Int, Tensor, TensorData};
    pub use stoker_core::callback::{Callback, Control, HookContext, Position};
    pub use stoker_core::data::{
        DataInfo, DataModule, ElementKind, EpochBatches, Split, TensorInfo,
    };
    pub use stoker_core::error::{BatchError, BuildError, Result, StokerError};
    pub use stoker_core::logger::{LogRow, Logger, RunInfo};
    pub use stoker_core::loss::{Loss, LossValue, PhysicsTerm};
    pub use stoker_core::metric::{Metric, Mode, StepView};
    pub use stoker_core::model::{DynModel, Model, ModelHandle, boxed};
    pub use stoker_core::schedule::{Horizon, LrScheduler};
    pub use stoker_core::spec::{
        AugmentationSpec, BuildContext, CallbackSpec, DataSpec, LoggerSpec, LossSpec, MetricSpec,
        ModelSpec, OptimizerSpec, PhysicsSpec, SchedulerSpec, TrainerSpec,
    };
    pub use stoker_derive::Component;
}

#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use serde_yaml;
}
