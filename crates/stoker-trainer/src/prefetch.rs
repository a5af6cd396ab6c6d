//! Where the training loop takes its batches: prepared in the loop between steps
//! (`num_workers: 0`), or by worker threads that take and augment the next batches while the
//! current step runs (DataLoader's `num_workers` and `prefetch_factor`). A batch and its
//! augmentations depend only on the run's seed, the epoch and the batch index, never on which
//! thread prepared it, so any number of workers trains the same run.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::Scope;

use stoker::augment::Augmentation;
use stoker::batch::Batch;
use stoker::data::EpochBatches;
use stoker::prelude::{Result, StokerError};
use stoker::rng::derive_seed;

/// The seed of everything random in training step `index` of `epoch`: augmentations and the
/// device's generator (dropout).
pub fn step_seed(seed: u64, epoch: usize, index: usize) -> u64 {
    derive_seed(&[seed, epoch as u64, index as u64])
}

/// What preparing a batch needs to know of the run.
#[derive(Clone, Copy)]
pub struct Plan<'a> {
    /// The augmentations, in config order.
    pub augmentations: &'a [Box<dyn Augmentation>],
    /// The run's seed.
    pub seed: u64,
    /// The epoch.
    pub epoch: usize,
}

impl Plan<'_> {
    /// Batch `index` of the epoch, augmented.
    fn prepare(&self, batches: &mut dyn EpochBatches, index: usize) -> Result<Batch> {
        let mut batch = batches.batch(index)?;
        let seed = step_seed(self.seed, self.epoch, index);
        for (i, augmentation) in self.augmentations.iter().enumerate() {
            batch = augmentation.apply(batch, derive_seed(&[seed, i as u64]))?;
        }
        Ok(batch)
    }
}

/// The batches of the rest of one training epoch, in index order.
pub enum Batches<'a> {
    /// Prepared by the loop when asked.
    Inline {
        /// The run.
        plan: Plan<'a>,
        /// The epoch's batches.
        batches: Box<dyn EpochBatches + 'a>,
    },
    /// Prepared ahead by workers: batch `first + k` comes from worker `k % workers`.
    Workers {
        /// One channel per worker, each bounded by the prefetch factor.
        receivers: Vec<Receiver<Result<Batch>>>,
        /// The first index the workers prepare.
        first: usize,
    },
}

impl<'a> Batches<'a> {
    /// The epoch's batches from `first` to `end` (exclusive), with `workers` threads spawned in
    /// `scope` preparing `prefetch` batches each ahead (none: the loop prepares them). `open`
    /// opens the epoch's batches (once for the loop, or once per worker).
    pub fn start<'scope>(
        scope: &'scope Scope<'scope, '_>,
        plan: Plan<'a>,
        mut open: impl FnMut() -> Result<Box<dyn EpochBatches + 'a>>,
        first: usize,
        end: usize,
        workers: usize,
        prefetch: usize,
    ) -> Result<Batches<'a>>
    where
        'a: 'scope,
    {
        if workers == 0 {
            let batches = open()?;
            return Ok(Batches::Inline { plan, batches });
        }
        let mut receivers = Vec::with_capacity(workers);
        for worker in 0..workers {
            let batches = open()?;
            let (sender, receiver) = sync_channel(prefetch);
            receivers.push(receiver);
            scope.spawn(move || work(plan, batches, first + worker, end, workers, sender));
        }
        Ok(Batches::Workers { receivers, first })
    }

    /// Batch `index` (asked in increasing order, from `first` on).
    pub fn next(&mut self, index: usize) -> Result<Batch> {
        match self {
            Batches::Inline { plan, batches } => plan.prepare(batches.as_mut(), index),
            Batches::Workers { receivers, first } => {
                let n = receivers.len();
                receivers[(index - *first) % n].recv().map_err(|_| {
                    StokerError::msg("a data worker stopped before preparing its batch")
                })?
            }
        }
    }
}

/// A worker: batches `start`, `start + step`, ... before `end`, sent in order until the loop
/// stops listening.
fn work(
    plan: Plan<'_>,
    mut batches: Box<dyn EpochBatches + '_>,
    start: usize,
    end: usize,
    step: usize,
    sender: SyncSender<Result<Batch>>,
) {
    single_threaded_kernels();
    for index in (start..end).step_by(step) {
        // A panic inside a kernel (out of memory, say) becomes this batch's error, so the loop
        // fails the run as it fails any step.
        let batch = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            plan.prepare(batches.as_mut(), index)
        }))
        .unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            Err(StokerError::msg(format!(
                "a data worker panicked: {message}"
            )))
        });
        let failed = batch.is_err();
        if sender.send(batch).is_err() || failed {
            return;
        }
    }
}

/// Makes LibTorch's CPU kernels called from this thread run on this thread alone. LibTorch
/// parallelizes with OpenMP, whose thread count is per calling thread: left as it is, a worker's
/// small batch operations would start a second team of OpenMP threads that spin beside the
/// training step's team, and the step would slow down (measured: a bearing_cnn step went from
/// 11.2 ms to 26.5 ms with two workers). A no-op where OpenMP is not loaded.
fn single_threaded_kernels() {
    // SAFETY: dlsym with RTLD_DEFAULT looks a symbol up in the loaded objects; the names are
    // NUL-terminated literals. omp_set_num_threads(int) is OpenMP's standard C entry point and
    // only sets the calling thread's team size; `int at::get_num_threads()` takes no arguments
    // and returns an int, which the C calling convention passes as declared.
    unsafe {
        // at::get_num_threads() first: it runs LibTorch's once-per-thread set-up, which would
        // otherwise reset the thread's team size at the first parallel kernel.
        let lazy_init = libc::dlsym(libc::RTLD_DEFAULT, c"_ZN2at15get_num_threadsEv".as_ptr());
        if !lazy_init.is_null() {
            let get: extern "C" fn() -> libc::c_int = std::mem::transmute(lazy_init);
            get();
        }
        let symbol = libc::dlsym(libc::RTLD_DEFAULT, c"omp_set_num_threads".as_ptr());
        if !symbol.is_null() {
            let set: extern "C" fn(libc::c_int) = std::mem::transmute(symbol);
            set(1);
        }
    }
}
