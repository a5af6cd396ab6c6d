//! Augmentations: random transformations of training batches (validation, test and predictions
//! are never augmented).

use crate::batch::Batch;
use crate::error::Result;

/// A built augmentation. The loop calls [`apply`](Augmentation::apply) on every training batch
/// with a seed derived from the run's seed, the epoch and the batch index, so that a resumed run
/// augments each batch exactly as the uninterrupted run did. Draw every random number from that
/// seed, never from the device's generator: with `num_workers` batches are augmented on worker
/// threads, while the training step runs.
pub trait Augmentation: Send + Sync {
    /// The augmented batch.
    fn apply(&self, batch: Batch, seed: u64) -> Result<Batch>;
}
