//! stoker's built-in callbacks, each registered by name:
//!
//! - `OnExceptionCheckpoint`: a checkpoint on failure.
//! - `EarlyStopping`: stop when a metric stops improving.
//! - `LearningRateMonitor`, `GradientMonitor`, `MemoryProfiler`, `MetricsTracker`: what is
//!   worth watching while training.
//! - `ModelPruning`: L1 magnitude pruning.
//! - `SamplePredictions`: a few predictions next to their targets.
//!
//! `ModelCheckpoint` and `Timer` live with the loop (`stoker-trainer`), which adds them itself
//! when `enable_checkpointing` and `max_time` ask for them.

pub mod early_stopping;
pub mod gradient_monitor;
pub mod lr_monitor;
pub mod memory_profiler;
pub mod metrics_tracker;
pub mod model_pruning;
pub mod on_exception_checkpoint;
pub mod sample_predictions;
