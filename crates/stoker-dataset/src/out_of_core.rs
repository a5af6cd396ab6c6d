//! A data module whose splits stay in their (memory-mapped) files: a batch's rows are read,
//! normalized and uploaded when the batch is asked for, on the data workers' threads when
//! `num_workers` is set. The epoch order is [`InMemoryData`](crate::in_memory::InMemoryData)'s,
//! so the same data trains the same run either way.

use stoker::batch::Batch;
use stoker::burn::tensor::Device;
use stoker::burn::tensor::Tensor;
use stoker::burn::tensor::kind::BridgeTensor;
use stoker::data::{
    DataInfo, DataModule, ElementKind, EpochBatches, Order, Shard, Split, TensorInfo,
};
use stoker::error::{Result, StokerError};
use stoker_native::filled::filled_f32;

use crate::host::{HostData, HostTensor};
use crate::in_memory::{BatchOptions, check_split, epoch_plan, upload};
use crate::mapped::Sharded;
use crate::normalize::Stats;

/// One split: tensors over mapped files, and which of their samples belong to the split.
#[derive(Debug, Clone)]
pub struct MappedSplit {
    /// The tensors (every one with the same number of samples).
    pub tensors: Vec<Sharded>,
    /// The split's samples among the files' (a fraction of the training file), in order; `None`:
    /// every sample.
    pub rows: Option<Vec<usize>>,
}

impl MappedSplit {
    /// A split of every sample of `tensors`.
    pub fn whole(tensors: Vec<Sharded>) -> MappedSplit {
        MappedSplit {
            tensors,
            rows: None,
        }
    }

    /// The split's number of samples.
    pub fn samples(&self) -> usize {
        match &self.rows {
            Some(rows) => rows.len(),
            None => self.tensors.first().map_or(0, Sharded::samples),
        }
    }

    /// The file rows of the split's samples at `positions`.
    fn file_rows(&self, positions: impl Iterator<Item = usize>) -> Vec<usize> {
        match &self.rows {
            Some(rows) => positions.map(|p| rows[p]).collect(),
            None => positions.collect(),
        }
    }

    /// Tensor `index`'s samples at positions `start..end` of the split, in order.
    pub fn read(&self, index: usize, start: usize, end: usize) -> Result<HostTensor> {
        self.tensors[index]
            .gather(&self.file_rows(start..end))
            .map_err(StokerError::msg)
    }
}

/// Fits `method` on tensor `index` of a training split read in pieces of about `chunk_bytes`:
/// exactly the statistics of the tensor read whole.
pub fn fit_streaming(
    method: crate::normalize::Method,
    split: &MappedSplit,
    index: usize,
    chunk_bytes: usize,
) -> std::result::Result<Stats, String> {
    let tensor = &split.tensors[index];
    if tensor.kind() != stoker::data::ElementKind::Float {
        return Err(format!(
            "`{}` holds integers; only floats are normalized",
            tensor.name()
        ));
    }
    let width: usize = tensor.sample_shape().iter().product::<usize>().max(1);
    let rows_per_chunk = (chunk_bytes / (4 * width)).max(1);
    let samples = split.samples();
    let mut failed = None;
    let stats = Stats::fit_passes(method, tensor.name(), tensor.sample_shape(), &mut |visit| {
        let mut start = 0;
        while start < samples && failed.is_none() {
            let end = (start + rows_per_chunk).min(samples);
            match split.read(index, start, end) {
                Ok(HostTensor {
                    data: HostData::F32(values),
                    ..
                }) => visit(&values),
                Ok(_) => {}
                Err(e) => failed = Some(e.to_string()),
            }
            start = end;
        }
    });
    match failed {
        Some(e) => Err(e),
        None => stats,
    }
}

/// Splits read from mapped files.
pub struct MappedData {
    info: DataInfo,
    splits: [MappedSplit; 3],
    options: BatchOptions,
    device: Device,
    stats: Vec<Stats>,
    check_finite: bool,
}

impl MappedData {
    /// What it holds.
    pub fn splits(&self) -> &[MappedSplit; 3] {
        &self.splits
    }

    /// The module over `splits`, encoding each batch with `stats` (fitted on the training split)
    /// and, unless `allow_non_finite`, refusing a batch holding a NaN or an infinity. Every split
    /// must hold the training split's tensors, of the same element type and sample rank.
    pub fn new(
        splits: [MappedSplit; 3],
        options: BatchOptions,
        device: &Device,
        stats: Vec<Stats>,
        allow_non_finite: bool,
    ) -> Result<MappedData> {
        let describe = |split: &MappedSplit| -> Vec<(TensorInfo, usize)> {
            split
                .tensors
                .iter()
                .map(|t| (t.info(), t.samples()))
                .collect()
        };
        let tensors: Vec<TensorInfo> = describe(&splits[0]).into_iter().map(|(t, _)| t).collect();
        let mut sizes = [0; 3];
        for (i, split) in splits.iter().enumerate() {
            check_split(Split::ALL[i], &describe(split), &tensors)?;
            sizes[i] = split.samples();
        }
        Ok(MappedData {
            info: DataInfo {
                tensors,
                split_sizes: sizes,
                batch_size: options.batch_size,
            },
            splits,
            options,
            device: device.clone(),
            stats,
            check_finite: !allow_non_finite,
        })
    }
}

struct MappedEpoch<'a> {
    data: &'a MappedData,
    split: Split,
    /// The split's positions in epoch order (`None`: stored order).
    positions: Option<Vec<usize>>,
    rows: usize,
    batches: usize,
}

impl EpochBatches for MappedEpoch<'_> {
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
        let bs = self.data.options.batch_size_of(self.split);
        let (start, end) = (index * bs, ((index + 1) * bs).min(self.rows));
        let split = &self.data.splits[self.split as usize];
        let rows = match &self.positions {
            Some(p) => split.file_rows(p[start..end].iter().copied()),
            None => split.file_rows(start..end),
        };
        let mut batch = Batch::batch();
        for tensor in &split.tensors {
            let values = match tensor.kind() {
                ElementKind::Float => self.read_floats(tensor, &rows)?,
                ElementKind::Int => {
                    let host = tensor.gather(&rows).map_err(StokerError::msg)?;
                    upload(host, &self.data.device)?
                }
            };
            batch.insert_bridge(tensor.name().to_string(), values);
        }
        Ok(batch)
    }
}

impl MappedEpoch<'_> {
    /// The float `tensor`'s `rows` on the device, checked and normalized: read straight into
    /// LibTorch's memory where the device is LibTorch's, else into a host tensor uploaded after.
    fn read_floats(&self, tensor: &Sharded, rows: &[usize]) -> Result<BridgeTensor> {
        let prepare = |values: &mut [f32]| -> std::result::Result<(), String> {
            if self.data.check_finite
                && let Some(message) = crate::upload::non_finite_value(tensor, rows, values)
            {
                return Err(format!(
                    "{message} (set allow_non_finite: true to train on non-finite values knowingly)"
                ));
            }
            match self.data.stats.iter().find(|s| s.name == tensor.name()) {
                Some(stats) => {
                    stats.encode_values(values, tensor.sample_shape(), &self.split.to_string())
                }
                None => Ok(()),
            }
        };
        let mut shape = vec![rows.len()];
        shape.extend_from_slice(tensor.sample_shape());
        let device = &self.data.device;
        let filled = crate::by_rank!(shape.len(), R => {
            let dims = <[usize; R]>::try_from(shape.as_slice()).expect("rank R");
            filled_f32(dims, device, |out| {
                let values = tensor.gather_f32_into(rows, out)?;
                prepare(values)?;
                Ok::<_, String>(values)
            })
            .map(|t| t.map(Tensor::into_bridge))
        }, None);
        match filled {
            Some(values) => values.map_err(StokerError::msg),
            None => {
                let mut host = tensor.gather(rows).map_err(StokerError::msg)?;
                if let HostData::F32(values) = &mut host.data {
                    prepare(values).map_err(StokerError::msg)?;
                }
                upload(host, device)
            }
        }
    }
}

impl DataModule for MappedData {
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
        let samples = self.splits[split as usize].samples();
        let (positions, rows, batches) =
            epoch_plan(samples, &self.options, split, epoch, order, shard);
        Ok(Box::new(MappedEpoch {
            data: self,
            split,
            positions,
            rows,
            batches,
        }))
    }
}

#[cfg(test)]
mod tests;
