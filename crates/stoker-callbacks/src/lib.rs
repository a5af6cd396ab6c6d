//! stoker's built-in callbacks, each registered by name:
//!
//! - `ModelCheckpoint`, `OnExceptionCheckpoint`: checkpoints on a schedule, the best k, on failure.
//! - `EarlyStopping`: stop when a metric stops improving.
//! - `LearningRateMonitor`, `GradientMonitor`, `Timer`, `MemoryProfiler`, `MetricsTracker`:
//!   what is worth watching while training.
//! - `ModelPruning`: L1 magnitude pruning.
//! - `SamplePredictions`: a few predictions next to their targets.

pub mod early_stopping;
pub mod gradient_monitor;
pub mod lr_monitor;
pub mod memory_profiler;
pub mod metrics_tracker;
pub mod model_checkpoint;
pub mod model_pruning;
pub mod on_exception_checkpoint;
pub mod sample_predictions;
pub mod template;
pub mod timer;
