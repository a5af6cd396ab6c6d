//! Augmentations: random transformations of training batches (validation, test and predictions
//! are never augmented).

use crate::batch::Batch;
use crate::error::Result;

/// A built augmentation. The loop calls [`apply`](Augmentation::apply) on every training batch
/// with a seed derived from the run's seed, the epoch and the batch index (the device's random
/// generator is seeded the same way just before), so that a resumed run augments each batch
/// exactly as the uninterrupted run did.
pub trait Augmentation: Send + Sync {
    /// The augmented batch.
    fn apply(&self, batch: Batch, seed: u64) -> Result<Batch>;
}
