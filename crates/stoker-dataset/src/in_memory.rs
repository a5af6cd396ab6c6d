//! A data module whose splits live on the training device as whole tensors; a batch is a row
//! selection (shuffled training order) or a slice (evaluation order).

use stoker::batch::Batch;
use stoker::burn::tensor::kind::BridgeTensor;
use stoker::burn::tensor::{Device, Int, Tensor, TensorData};
use stoker::data::{DataInfo, DataModule, EpochBatches, Order, Shard, Split, TensorInfo};
use stoker::error::{Result, StokerError};
use stoker::rng::{Rng, derive_seed};
use stoker_native::pinned;

use crate::host::{HostData, HostTensor};
use crate::shard::{evaluation_rows, training_rows};

/// How a split is cut into batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchOptions {
    /// Samples per batch.
    pub batch_size: usize,
    /// Shuffle the training split each epoch.
    pub shuffle: bool,
    /// Drop the last, smaller, training batch.
    pub drop_last: bool,
    /// The seed of the shuffling.
    pub seed: u64,
    /// Samples per validation and test batch (`None`: `batch_size`).
    pub eval_batch_size: Option<usize>,
}

impl BatchOptions {
    /// The batch size of `split`: `eval_batch_size` for validation and test, when given.
    pub fn batch_size_of(&self, split: Split) -> usize {
        match split {
            Split::Train => self.batch_size,
            _ => self.eval_batch_size.unwrap_or(self.batch_size),
        }
    }
}

/// The highest tensor rank (samples dimension included) a data tensor may have.
pub const MAX_RANK: usize = 6;

/// Runs `$body` with the const `$r` set to `$rank` (1 to [`MAX_RANK`]), else `$otherwise`: a
/// tensor rank known at run time, as Burn's const-generic rank.
#[macro_export]
macro_rules! by_rank {
    ($rank:expr, $r:ident => $body:expr, $otherwise:expr) => {
        match $rank {
            1 => {
                const $r: usize = 1;
                $body
            }
            2 => {
                const $r: usize = 2;
                $body
            }
            3 => {
                const $r: usize = 3;
                $body
            }
            4 => {
                const $r: usize = 4;
                $body
            }
            5 => {
                const $r: usize = 5;
                $body
            }
            6 => {
                const $r: usize = 6;
                $body
            }
            _ => $otherwise,
        }
    };
}

/// A host tensor on `device`; on a CUDA device through pinned memory, copied asynchronously
/// (`stoker_native::pinned`).
pub(crate) fn upload(tensor: HostTensor, device: &Device) -> Result<BridgeTensor> {
    let HostTensor { name, shape, data } = tensor;
    by_rank!(shape.len(), R => {
        let dims: [usize; R] = shape.clone().try_into().expect("rank R");
        Ok(match data {
            HostData::F32(values) => match pinned::upload_f32(&values, dims, device) {
                Some(t) => t.into_bridge(),
                None => Tensor::<R>::from_data(TensorData::new(values, shape), device).into_bridge(),
            },
            HostData::I64(values) => match pinned::upload_i64(&values, dims, device) {
                Some(t) => t.into_bridge(),
                None => Tensor::<R, Int>::from_data(TensorData::new(values, shape), device).into_bridge(),
            },
        })
    }, Err(StokerError::msg(format!(
        "tensor `{name}` has rank {} (samples included); at most {MAX_RANK} is supported",
        shape.len()
    ))))
}

fn select_rows(tensor: &BridgeTensor, rows: &Tensor<1, Int>) -> BridgeTensor {
    let int = tensor.is_int();
    by_rank!(tensor.rank(), R => if int {
        Tensor::<R, Int>::from_bridge(tensor.clone()).select(0, rows.clone()).into_bridge()
    } else {
        Tensor::<R>::from_bridge(tensor.clone()).select(0, rows.clone()).into_bridge()
    }, unreachable!("uploaded tensors have a supported rank"))
}

fn slice_rows(tensor: &BridgeTensor, start: usize, len: usize) -> BridgeTensor {
    let int = tensor.is_int();
    by_rank!(tensor.rank(), R => if int {
        Tensor::<R, Int>::from_bridge(tensor.clone()).narrow(0, start, len).into_bridge()
    } else {
        Tensor::<R>::from_bridge(tensor.clone()).narrow(0, start, len).into_bridge()
    }, unreachable!("uploaded tensors have a supported rank"))
}

struct SplitTensors {
    samples: usize,
    tensors: Vec<(String, BridgeTensor)>,
}

/// Splits held on the device.
pub struct InMemoryData {
    info: DataInfo,
    splits: [SplitTensors; 3],
    options: BatchOptions,
    device: Device,
}

impl InMemoryData {
    /// Uploads the train, val and test tensors to `device`. Every split must have the same
    /// tensor names, kinds and sample ranks (an empty split may have no tensors); val and test
    /// may differ from train in the size of each sample axis (another resolution).
    pub fn new(
        splits: [Vec<HostTensor>; 3],
        options: BatchOptions,
        device: &Device,
    ) -> Result<Self> {
        let reference = &splits[0];
        let describe = |split: &[HostTensor]| -> Vec<(TensorInfo, usize)> {
            split.iter().map(|t| (t.info(), t.samples())).collect()
        };
        let tensors: Vec<TensorInfo> = describe(reference).into_iter().map(|(t, _)| t).collect();
        let mut uploaded = Vec::new();
        let mut sizes = [0; 3];
        for (i, split) in splits.into_iter().enumerate() {
            let samples = check_split(Split::ALL[i], &describe(&split), &tensors)?;
            sizes[i] = if split.is_empty() { 0 } else { samples };
            let mut on_device = Vec::new();
            if sizes[i] > 0 {
                for t in split {
                    on_device.push((t.name.clone(), upload(t, device)?));
                }
            }
            uploaded.push(SplitTensors {
                samples: sizes[i],
                tensors: on_device,
            });
        }
        let [train, val, test]: [SplitTensors; 3] = uploaded
            .try_into()
            .map_err(|_| StokerError::msg("three splits"))?;
        Ok(InMemoryData {
            info: DataInfo {
                tensors,
                split_sizes: sizes,
                batch_size: options.batch_size,
            },
            splits: [train, val, test],
            options,
            device: device.clone(),
        })
    }

    /// Splits already on `device`, as `info` describes them: each split's tensors by name, all
    /// with that split's number of samples (`info.split_sizes`).
    pub fn from_uploaded(
        info: DataInfo,
        splits: [Vec<(String, BridgeTensor)>; 3],
        options: BatchOptions,
        device: &Device,
    ) -> Self {
        let sizes = info.split_sizes;
        let [train, val, test] = splits;
        let split = |i: usize, tensors| SplitTensors {
            samples: sizes[i],
            tensors,
        };
        InMemoryData {
            info,
            splits: [split(0, train), split(1, val), split(2, test)],
            options,
            device: device.clone(),
        }
    }
}

/// The order of an epoch's samples.
enum Rows {
    /// As stored: a batch is a slice.
    Stored,
    /// Shuffled, not yet on the device (an epoch asked only for its length uploads nothing).
    Shuffled(Vec<usize>, Device),
    /// Shuffled and uploaded, once per epoch: a batch narrows it.
    Uploaded(Tensor<1, Int>),
}

impl Rows {
    /// The rows `start..end` on the device, `None` for the stored order.
    fn range(&mut self, start: usize, end: usize) -> Option<Tensor<1, Int>> {
        if let Rows::Shuffled(order, device) = self {
            let rows: Vec<i64> = order.iter().map(|&i| i as i64).collect();
            let n = rows.len();
            *self = Rows::Uploaded(Tensor::from_data(TensorData::new(rows, [n]), &*device));
        }
        match self {
            Rows::Stored => None,
            Rows::Uploaded(order) => Some(order.clone().narrow(0, start, end - start)),
            Rows::Shuffled(..) => unreachable!("uploaded above"),
        }
    }
}

struct InMemoryEpoch<'a> {
    split: &'a SplitTensors,
    /// The epoch's sample order.
    order: Rows,
    /// How many rows the epoch has (this process's share of the split).
    rows: usize,
    batch_size: usize,
    batches: usize,
}

impl EpochBatches for InMemoryEpoch<'_> {
    fn len(&self) -> usize {
        self.batches
    }

    fn batch(&mut self, index: usize) -> Result<Batch> {
        if index >= self.batches {
            return Err(StokerError::msg(format!(
                "batch {index} asked of an epoch of {} batches",
                self.batches
            )));
        }
        let start = index * self.batch_size;
        let end = (start + self.batch_size).min(self.rows);
        let mut batch = Batch::batch();
        match self.order.range(start, end) {
            Some(rows) => {
                for (name, tensor) in &self.split.tensors {
                    batch.insert_bridge(name.clone(), select_rows(tensor, &rows));
                }
            }
            None => {
                for (name, tensor) in &self.split.tensors {
                    batch.insert_bridge(name.clone(), slice_rows(tensor, start, end - start));
                }
            }
        }
        Ok(batch)
    }
}

impl DataModule for InMemoryData {
    fn info(&self) -> &DataInfo {
        &self.info
    }

    fn epoch(
        &self,
        split: Split,
        epoch: usize,
        order: Order,
        shard: Shard,
    ) -> Result<Box<dyn EpochBatches + '_>> {
        let data = &self.splits[split as usize];
        let (positions, rows, batches) =
            epoch_plan(data.samples, &self.options, split, epoch, order, shard);
        let order = match positions {
            Some(positions) => Rows::Shuffled(positions, self.device.clone()),
            None => Rows::Stored,
        };
        let bs = self.options.batch_size_of(split);
        Ok(Box::new(InMemoryEpoch {
            split: data,
            order,
            rows,
            batch_size: bs,
            batches,
        }))
    }
}

/// Checks one split's tensors (info, samples) against the training split's `reference`: they
/// agree on the number of samples, and each has a training tensor's element type and sample
/// rank (val and test may hold another grid of the same rank: an operator evaluated at a
/// resolution it was not trained on). Returns the number of samples.
pub(crate) fn check_split(
    split: Split,
    tensors: &[(TensorInfo, usize)],
    reference: &[TensorInfo],
) -> Result<usize> {
    let samples = tensors.first().map_or(0, |(_, n)| *n);
    for (t, n) in tensors {
        if *n != samples {
            return Err(StokerError::msg(format!(
                "the {split} split's tensors disagree on the number of samples: `{}` has {n}, `{}` has {samples}",
                t.name, tensors[0].0.name
            )));
        }
        let expected = reference.iter().find(|e| e.name == t.name);
        if expected.is_none_or(|e| e.sample_shape.len() != t.sample_shape.len() || e.kind != t.kind)
        {
            return Err(StokerError::msg(format!(
                "tensor `{}` of the {split} split has sample shape {:?} ({:?}); the train split's is {:?}: the ranks and element types must agree",
                t.name,
                t.sample_shape,
                t.kind,
                expected.map(|e| (e.sample_shape.clone(), e.kind))
            )));
        }
    }
    Ok(samples)
}

/// One epoch of a split of `samples`: the positions of its samples in epoch order (`None`: the
/// stored order, whole), how many rows this process takes, and how many batches they make.
/// Training is shuffled from the seed, the split and the epoch; with several processes each
/// takes its share (`DistributedSampler`'s rules for training, every sample once for evaluation).
pub(crate) fn epoch_plan(
    samples: usize,
    options: &BatchOptions,
    split: Split,
    epoch: usize,
    order: Order,
    shard: Shard,
) -> (Option<Vec<usize>>, usize, usize) {
    let train = split == Split::Train;
    let shuffled = train && options.shuffle && order == Order::Configured;
    let order = shuffled.then(|| {
        Rng::new(derive_seed(&[options.seed, split as u64, epoch as u64])).permutation(samples)
    });
    let (positions, rows) = match (order, shard.is_whole()) {
        (Some(order), true) => (Some(order), samples),
        (None, true) => (None, samples),
        (order, false) => {
            let order = order.unwrap_or_else(|| (0..samples).collect());
            let own = if train {
                training_rows(&order, shard.rank, shard.world, false)
            } else {
                evaluation_rows(&order, shard.rank, shard.world)
            };
            let n = own.len();
            (Some(own), n)
        }
    };
    let bs = options.batch_size_of(split);
    let batches = if train && options.drop_last {
        rows / bs
    } else {
        rows.div_ceil(bs)
    };
    (positions, rows, batches)
}

/// Splits `n` samples into train, val and test index lists: a seeded shuffle, then the first
/// `round(n * val_fraction)` go to val, the next `round(n * test_fraction)` to test, the rest to
/// train (each list sorted, so the split does not reorder samples within it).
pub fn split_indices(
    n: usize,
    val_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> [Vec<usize>; 3] {
    let n_val = (n as f64 * val_fraction).round() as usize;
    let n_test = ((n as f64 * test_fraction).round() as usize).min(n - n_val.min(n));
    let order = Rng::new(derive_seed(&[seed, 0x5B117])).permutation(n);
    let mut val = order[..n_val.min(n)].to_vec();
    let mut test = order[n_val.min(n)..n_val.min(n) + n_test].to_vec();
    let mut train = order[n_val.min(n) + n_test..].to_vec();
    val.sort_unstable();
    test.sort_unstable();
    train.sort_unstable();
    [train, val, test]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(shuffle: bool, drop_last: bool) -> InMemoryData {
        data_in_batches(shuffle, drop_last, 4)
    }

    fn data_in_batches(shuffle: bool, drop_last: bool, batch_size: usize) -> InMemoryData {
        let x = HostTensor::f32("x", vec![10, 2], (0..20).map(|v| v as f32).collect());
        let y = HostTensor::i64("y", vec![10], (0..10).collect());
        let val = vec![
            HostTensor::f32("x", vec![3, 2], vec![0.0; 6]),
            HostTensor::i64("y", vec![3], vec![0; 3]),
        ];
        let options = BatchOptions {
            batch_size,
            shuffle,
            drop_last,
            seed: 1,
            eval_batch_size: None,
        };
        InMemoryData::new([vec![x, y], val, vec![]], options, &Device::flex()).unwrap()
    }

    fn labels(batch: &Batch) -> Vec<i64> {
        batch
            .int::<1>("y")
            .unwrap()
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap()
    }

    #[test]
    fn batches_cover_the_split_in_seeded_order() {
        let data = data(true, false);
        assert_eq!(data.info().split_sizes, [10, 3, 0]);
        let epoch_labels = |epoch| {
            let mut batches = data
                .epoch(Split::Train, epoch, Order::Configured, Shard::WHOLE)
                .unwrap();
            assert_eq!(batches.len(), 3);
            (0..3)
                .flat_map(|i| labels(&batches.batch(i).unwrap()))
                .collect::<Vec<_>>()
        };
        let first = epoch_labels(0);
        assert_eq!(first, epoch_labels(0), "same epoch, same order");
        assert_ne!(first, epoch_labels(1), "another epoch, another order");
        let mut sorted = first.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        // Rows stay together: x's first column is 2 * y.
        let batch = data
            .epoch(Split::Train, 0, Order::Configured, Shard::WHOLE)
            .unwrap()
            .batch(0)
            .unwrap();
        let x = batch
            .float::<2>("x")
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (row, label) in labels(&batch).iter().enumerate() {
            assert_eq!(x[row * 2], 2.0 * *label as f32);
        }
    }

    #[test]
    fn evaluation_order_is_sequential_and_drop_last_drops() {
        let data = data(true, true);
        assert_eq!(
            data.epoch(Split::Train, 0, Order::Configured, Shard::WHOLE)
                .unwrap()
                .len(),
            2
        );
        let mut val = data
            .epoch(Split::Val, 0, Order::Configured, Shard::WHOLE)
            .unwrap();
        assert_eq!(val.len(), 1);
        assert_eq!(val.batch(0).unwrap().batch_size(), 3);
        assert_eq!(
            data.epoch(Split::Test, 0, Order::Configured, Shard::WHOLE)
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn two_shards_of_batch_b_make_the_whole_epoch_of_batch_2b() {
        // One process with batch 4 against two with batch 2: batch i of the whole epoch is
        // batch i of rank 0 and batch i of rank 1 together (DistributedSampler's interleaving).
        let data = data(true, false);
        let halves = data_in_batches(true, false, 2);
        let whole: Vec<Vec<i64>> = {
            let mut b = data
                .epoch(Split::Train, 3, Order::Configured, Shard::WHOLE)
                .unwrap();
            (0..b.len()).map(|i| labels(&b.batch(i).unwrap())).collect()
        };
        let shard = |rank| {
            let shard = Shard { rank, world: 2 };
            let mut b = halves
                .epoch(Split::Train, 3, Order::Configured, shard)
                .unwrap();
            (0..b.len())
                .map(|i| labels(&b.batch(i).unwrap()))
                .collect::<Vec<_>>()
        };
        let (rank0, rank1) = (shard(0), shard(1));
        assert_eq!(
            (rank0.len(), rank1.len()),
            (3, 3),
            "5 rows each, in batches of 2"
        );
        for (i, batch) in whole.iter().enumerate() {
            let mut together: Vec<i64> = rank0[i].iter().chain(&rank1[i]).copied().collect();
            let mut batch = batch.clone();
            together.sort();
            batch.sort();
            assert_eq!(together, batch, "batch {i}");
        }
        // Evaluation: every sample once over the ranks, uneven shards (2 and 1 of 3).
        let val = |rank| {
            let mut b = data
                .epoch(Split::Val, 0, Order::Sequential, Shard { rank, world: 2 })
                .unwrap();
            (0..b.len())
                .map(|i| b.batch(i).unwrap().batch_size())
                .sum::<usize>()
        };
        assert_eq!((val(0), val(1)), (2, 1));
    }

    #[test]
    fn split_indices_partition_the_samples() {
        let [train, val, test] = split_indices(100, 0.2, 0.1, 3);
        assert_eq!((train.len(), val.len(), test.len()), (70, 20, 10));
        let mut all: Vec<usize> = train.iter().chain(&val).chain(&test).copied().collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(split_indices(100, 0.2, 0.1, 3), [train, val, test]);
    }
}
