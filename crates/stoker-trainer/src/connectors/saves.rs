//! Checkpoints asked for and not yet written, and which checkpoint is the best so far.
//!
//! A callback never writes a checkpoint itself: it asks for one, and the loop writes every
//! pending request at the next point where the whole training state is consistent (after the
//! current optimizer step and any validation it triggers).

use std::collections::BTreeMap;
use std::path::PathBuf;

use stoker::callback::{BestCheckpoint, SaveRequest};

/// Pending checkpoint requests, and the run's best and last checkpoints.
pub struct SaveQueue {
    /// Whether checkpoints are written (not in a fast dev run, and only on the global rank 0).
    pub writing: bool,
    /// Checkpoints to write.
    pub saves: Vec<SaveRequest>,
    /// Checkpoint files to delete once the saves are written.
    pub deletes: Vec<PathBuf>,
    /// The last full checkpoint written.
    pub last: Option<PathBuf>,
    /// The best checkpoint so far.
    pub best: Option<BestCheckpoint>,
    /// The logged values when the best checkpoint was written.
    pub best_metrics: BTreeMap<String, f64>,
    /// The epoch of the best checkpoint.
    pub best_epoch: Option<usize>,
}

impl SaveQueue {
    /// An empty queue; without `writing`, requests are dropped.
    pub fn new(writing: bool) -> Self {
        SaveQueue {
            writing,
            saves: Vec::new(),
            deletes: Vec::new(),
            last: None,
            best: None,
            best_metrics: BTreeMap::new(),
            best_epoch: None,
        }
    }

    /// Takes in requests.
    pub fn request(&mut self, saves: Vec<SaveRequest>, deletes: Vec<PathBuf>) {
        self.saves.extend(saves);
        self.deletes.extend(deletes);
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.saves.is_empty() && self.deletes.is_empty()
    }

    /// Notes `best` as the best checkpoint when it is a new one, with the values logged then.
    pub fn update_best(
        &mut self,
        best: Option<BestCheckpoint>,
        latest: &BTreeMap<String, f64>,
        epoch: usize,
    ) {
        if let Some(best) = best
            && self.best.as_ref().map(|b| &b.path) != Some(&best.path)
        {
            self.best_metrics = latest.clone();
            self.best_epoch = Some(epoch);
            self.best = Some(best);
        }
    }
}
