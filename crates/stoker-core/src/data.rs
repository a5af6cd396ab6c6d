//! The data-module contract: splits, per-sample tensor shapes, and batches by index.

use std::fmt;

use crate::batch::{Batch, Output};
use crate::error::{BuildError, Result};

/// A split of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Split {
    /// The training split.
    Train,
    /// The validation split.
    Val,
    /// The test split.
    Test,
}

impl Split {
    /// All splits.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// The prefix of this split's metric names (`train`, `val`, `test`).
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The element type of a data tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementKind {
    /// Floating point (stored as f32).
    Float,
    /// Integer (stored as i64), e.g. class labels.
    Int,
}

impl ElementKind {
    /// `float` or `integer`, as messages say it.
    pub fn word(self) -> &'static str {
        match self {
            ElementKind::Float => "float",
            ElementKind::Int => "integer",
        }
    }
}

/// One tensor every batch carries.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// Its name in the batch.
    pub name: String,
    /// The shape of one sample (without the batch dimension).
    pub sample_shape: Vec<usize>,
    /// Its element type.
    pub kind: ElementKind,
}

impl TensorInfo {
    /// The number of values in one sample.
    pub fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }
}

/// What a data module holds, known once it is built (before any training).
#[derive(Debug, Clone, PartialEq)]
pub struct DataInfo {
    /// The tensors every batch carries.
    pub tensors: Vec<TensorInfo>,
    /// Samples in the train, val and test splits.
    pub split_sizes: [usize; 3],
    /// Samples per batch.
    pub batch_size: usize,
}

impl DataInfo {
    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The names of the tensors, comma-separated (for error messages).
    pub fn tensor_names(&self) -> String {
        self.tensors
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The tensor `name` a component's argument `arg` names, or the error that says the data
    /// has none and lists the tensors it has.
    pub fn require(&self, arg: &str, name: &str) -> std::result::Result<&TensorInfo, BuildError> {
        self.tensor(name).ok_or_else(|| {
            BuildError::at(arg, format!("the data has no tensor `{name}`"))
                .hint(format!("the data's tensors are: {}", self.tensor_names()))
        })
    }

    /// [`require`](Self::require), and the tensor holds `kind` values; `why` says why it must
    /// (`mse compares floats`).
    pub fn require_kind(
        &self,
        arg: &str,
        name: &str,
        kind: ElementKind,
        why: &str,
    ) -> std::result::Result<&TensorInfo, BuildError> {
        let tensor = self.require(arg, name)?;
        if tensor.kind != kind {
            let listing = self
                .tensors
                .iter()
                .map(|t| format!("{} ({} {:?})", t.name, t.kind.word(), t.sample_shape))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(BuildError::at(
                arg,
                format!("tensor `{name}` holds {} values; {why}", tensor.kind.word()),
            )
            .hint(format!(
                "point `{arg}` at a tensor of {} values; the data has: {listing}",
                kind.word()
            )));
        }
        Ok(tensor)
    }

    /// Samples in `split`.
    pub fn len(&self, split: Split) -> usize {
        self.split_sizes[split as usize]
    }

    /// Whether every split is empty.
    pub fn is_empty(&self) -> bool {
        self.split_sizes.iter().all(|&n| n == 0)
    }
}

/// A built data module: the splits, ready to be cut into batches on the training device.
pub trait DataModule: Send + Sync {
    /// The tensors, split sizes and batch size.
    fn info(&self) -> &DataInfo;

    /// The batches of `shard`'s share of one epoch of `split`. Their order depends only on the
    /// seed, the split, `epoch`, `order` and `shard`, so that batch `i` of epoch `e` is the
    /// same batch in any run of the same config: the property exact resume relies on.
    ///
    /// With several processes (`shard.world > 1`) the epoch's order is the same on every
    /// process and each takes its rows of it: for training, torch's `DistributedSampler` rules
    /// (every process as many rows, the order padded with its first rows); for evaluation,
    /// every row exactly once over the processes (the last shards may be one row shorter).
    fn epoch(
        &self,
        split: Split,
        epoch: usize,
        order: Order,
        shard: Shard,
    ) -> Result<Box<dyn EpochBatches + '_>>;

    /// Copies of a batch and of the model's output on it with every normalized tensor decoded
    /// back to physical units, for metrics and predictions (the loss stays on the normalized
    /// values). `None`, the default, when the data is not normalized.
    fn decode(&self, _batch: &Batch, _output: &Output) -> Result<Option<(Batch, Output)>> {
        Ok(None)
    }

    /// The normalization statistics, fitted on the training split, to keep with the run.
    fn normalization(&self) -> Option<NormalizationReport> {
        None
    }

    /// Named test sets beside the test split (`test: {16: ..., 32: ...}`): each a data module
    /// whose test split is that set, over the same tensors and normalized as this one.
    /// `test_after_fit` logs each as `test_<name>_<metric>`, and `eval --split test_<name>`
    /// evaluates one. None by default.
    fn named_tests(&self) -> Vec<(&str, &dyn DataModule)> {
        Vec::new()
    }

    /// Named validation sets in place of the validation split (`val: {near: ..., far: ...}`):
    /// each a data module whose validation split is that set, over the same tensors and
    /// normalized as this one. Each validation logs every set as `val_<name>_<metric>`, and
    /// `val_<metric>` over all of them together. None by default.
    fn named_vals(&self) -> Vec<(&str, &dyn DataModule)> {
        Vec::new()
    }
}

/// Whether `data` has anything to validate on: a validation split or named validation sets.
pub fn has_validation(data: &dyn DataModule) -> bool {
    data.info().len(Split::Val) > 0 || !data.named_vals().is_empty()
}

/// The named sets of `split` ([`DataModule::named_vals`] for validation,
/// [`DataModule::named_tests`] for test; none for training).
pub fn named_sets(data: &dyn DataModule, split: Split) -> Vec<(&str, &dyn DataModule)> {
    match split {
        Split::Train => Vec::new(),
        Split::Val => data.named_vals(),
        Split::Test => data.named_tests(),
    }
}

/// Normalization statistics as a data module reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalizationReport {
    /// The file written in the run directory (`normalization.safetensors`).
    pub file_name: String,
    /// Its float32 tensors: name, shape, little-endian bytes.
    pub tensors: Vec<(String, Vec<usize>, Vec<u8>)>,
    /// One readable line per normalized tensor.
    pub summary: String,
}

/// The order of an epoch's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// As the data module is configured (training data shuffled each epoch, if it shuffles).
    Configured,
    /// The stored order (`overfit_batches` trains on the same first batches every epoch).
    Sequential,
}

/// One process's share of the data in data-parallel training: rank `rank` of `world`
/// processes. [`Shard::WHOLE`] is all of it (one process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This process's rank, `0..world`.
    pub rank: usize,
    /// The number of processes sharing the data.
    pub world: usize,
}

impl Shard {
    /// The whole data: one process.
    pub const WHOLE: Shard = Shard { rank: 0, world: 1 };

    /// Whether this is the whole data.
    pub fn is_whole(self) -> bool {
        self.world == 1
    }
}

/// The batches of one epoch of one split, by index.
pub trait EpochBatches: Send {
    /// The number of batches.
    fn len(&self) -> usize;

    /// Whether there are no batches.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Batch `index` (`0..len()`).
    fn batch(&mut self, index: usize) -> Result<Batch>;
}
