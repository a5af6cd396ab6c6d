//! `TensorFile` with `in_memory: false` (or `auto` on data larger than half the available
//! memory): the splits stay in their files, memory-mapped, and each batch reads its rows
//! (stoker-dataset's `MappedData`). A folder of shard files is one split either way.

use std::path::Path;

use stoker::burn::tensor::kind::BridgeTensor;
use stoker::console;
use stoker::data::DataModule;
use stoker::data::Split;
use stoker::dataset::host::HostTensor;
use stoker::dataset::in_memory::{BatchOptions, InMemoryData, split_indices};
use stoker::dataset::mapped::{Sharded, mappable};
use stoker::dataset::normalize::{Normalized, Stats};
use stoker::dataset::out_of_core::{MappedData, MappedSplit, fit_streaming};
use stoker::dataset::upload::{Pieces, upload_rows};
use stoker::error::BuildError;
use stoker::spec::BuildContext;

use crate::named_sets::WithNamedSets;
use crate::tensor_file::{InMemory, SplitFiles, TensorFileSpec};

/// The bytes read at a time while fitting normalization statistics on mapped data.
const STATS_CHUNK_BYTES: usize = 16 << 20;

/// The memory the system can give without swapping (`MemAvailable` of /proc/meminfo), if known.
fn available_memory() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn gib(bytes: usize) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Every file of the splits, opened in place.
pub(crate) struct Sources {
    train: Vec<Sharded>,
    val: Option<Vec<Sharded>>,
    test: Option<Vec<Sharded>>,
    named_vals: Vec<(String, Vec<Sharded>)>,
    named_tests: Vec<(String, Vec<Sharded>)>,
}

impl Sources {
    /// What the splits take held in memory (f32 and i64 elements).
    fn held_bytes(&self) -> usize {
        let all = std::iter::once(&self.train)
            .chain(&self.val)
            .chain(&self.test)
            .chain(self.named_vals.iter().map(|(_, t)| t))
            .chain(self.named_tests.iter().map(|(_, t)| t));
        all.flatten().map(Sharded::held_bytes).sum()
    }
}

impl TensorFileSpec {
    /// Every file (or shard folder) the splits come from, with its argument.
    fn wanted_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for name in self.inputs.iter().chain(&self.targets) {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        names
    }

    /// Whether the splits are held in memory: `in_memory`, or for `auto` whether they can be
    /// read in place (`sources`) and take under half of the available memory (said in the run
    /// log either way).
    pub(crate) fn held_in_memory(&self, sources: Option<&Sources>) -> Result<bool, BuildError> {
        match &self.in_memory {
            InMemory::Fixed(held) => {
                if !held {
                    console::note(
                        "data: read in place from the files, batch by batch (in_memory: false)",
                    );
                }
                return Ok(*held);
            }
            InMemory::Auto(text) if text == "auto" => {}
            InMemory::Auto(text) => {
                return Err(BuildError::at(
                    "in_memory",
                    format!("`{text}`: true, false or auto"),
                ));
            }
        }
        // Not readable in place (a .csv, a compressed .npz, `columns`): loading reads it whole.
        let (Some(sources), Some(available)) = (sources, available_memory()) else {
            return Ok(true);
        };
        let bytes = sources.held_bytes();
        let held = bytes <= available / 2;
        console::note(if held {
            format!(
                "data: held in memory: the splits take {}, under half of the {} available (in_memory: auto)",
                gib(bytes),
                gib(available)
            )
        } else {
            format!(
                "data: read in place from the files, batch by batch: the splits take {}, over half of the {} available (in_memory: auto)",
                gib(bytes),
                gib(available)
            )
        });
        Ok(held)
    }

    /// The tensors of a folder of shards, read whole (for `in_memory: true`).
    pub(crate) fn load_shards(&self, arg: &str, dir: &Path) -> Result<Vec<HostTensor>, BuildError> {
        if !self.columns.is_empty() {
            return Err(BuildError::at(
                arg,
                "`columns` needs a .csv (or .npz/.safetensors) file, not a folder of shards",
            ));
        }
        let tensors =
            Sharded::open(dir, &self.wanted_names()).map_err(|e| BuildError::at(arg, e))?;
        Ok(tensors.iter().map(Sharded::read_all).collect())
    }

    fn open(&self, arg: &str, path: &Path) -> Result<Vec<Sharded>, BuildError> {
        if !path.exists() {
            return Err(BuildError::at(
                arg,
                format!("data file `{}` does not exist", path.display()),
            )
            .hint("paths are relative to the current directory"));
        }
        if !mappable(path) {
            return Err(BuildError::at(arg, format!("`{}` cannot be read in place", path.display()))
                .hint("use an uncompressed .npz (np.savez) or .safetensors file, or a folder of them; or set in_memory: true"));
        }
        Sharded::open(path, &self.wanted_names()).map_err(|e| BuildError::at(arg, e))
    }

    /// Every file of the splits opened in place, once (an error names the file that cannot be:
    /// missing, compressed, or `columns` asked for).
    pub(crate) fn open_sources(&self) -> Result<Sources, BuildError> {
        if !self.columns.is_empty() {
            return Err(BuildError::at(
                "in_memory",
                "`columns` stacks tensors in memory and cannot be read in place",
            )
            .hint("set in_memory: true, or store the stacked tensor in the file"));
        }
        let named = |split: &str, files: Option<&SplitFiles>| {
            SplitFiles::named(files, split)?
                .into_iter()
                .map(|(name, path)| {
                    let tensors = self.open(&format!("{split}.{name}"), &path)?;
                    Ok((name, tensors))
                })
                .collect::<Result<Vec<_>, BuildError>>()
        };
        let single = |split: &str, files: Option<&SplitFiles>| {
            SplitFiles::file(files)
                .map(|path| self.open(split, path))
                .transpose()
        };
        Ok(Sources {
            train: self.open("train", &self.train)?,
            val: single("val", self.val.as_ref())?,
            test: single("test", self.test.as_ref())?,
            named_vals: named("val", self.val.as_ref())?,
            named_tests: named("test", self.test.as_ref())?,
        })
    }

    /// The data module over mapped files: read in place batch by batch (`in_memory` false), or
    /// uploaded to the device piece by piece.
    pub(crate) fn build_mapped(
        &self,
        sources: Sources,
        ctx: &BuildContext,
        in_memory: bool,
    ) -> Result<Box<dyn DataModule>, BuildError> {
        let Sources {
            train: train_tensors,
            val,
            test,
            named_vals,
            named_tests,
        } = sources;
        let samples = train_tensors.first().map_or(0, Sharded::samples);
        let [train_rows, val_rows, test_rows] =
            split_indices(samples, self.val_fraction, self.test_fraction, ctx.seed);
        let part = |rows: Vec<usize>| MappedSplit {
            tensors: train_tensors.clone(),
            rows: Some(rows),
        };
        let train = if self.val_fraction == 0.0 && self.test_fraction == 0.0 {
            MappedSplit::whole(train_tensors.clone())
        } else {
            part(train_rows)
        };
        let val = match val {
            Some(tensors) => MappedSplit::whole(tensors),
            None if named_vals.is_empty() => part(val_rows),
            None => part(Vec::new()),
        };
        let test = match test {
            Some(tensors) => MappedSplit::whole(tensors),
            None if named_tests.is_empty() => part(test_rows),
            None => part(Vec::new()),
        };
        let stats = self
            .normalize
            .iter()
            .map(|(name, &method)| {
                let at = format!("normalize.{name}");
                let index = train
                    .tensors
                    .iter()
                    .position(|t| t.name() == name)
                    .ok_or_else(|| {
                        BuildError::at(&at, format!("`{name}` is not among the inputs and targets"))
                    })?;
                fit_streaming(method, &train, index, STATS_CHUNK_BYTES)
                    .map_err(|e| BuildError::at(&at, e))
            })
            .collect::<Result<Vec<Stats>, BuildError>>()?;
        let mut sets = WithNamedSets {
            main: self.mapped_module([train, val, test], &stats, ctx, in_memory)?,
            vals: Vec::new(),
            tests: Vec::new(),
        };
        // A named set's module: no training rows, but the tensors' shapes, which a module
        // describes itself by; the set as its validation or test split.
        let shapes = |tensors: &[Sharded]| MappedSplit {
            tensors: tensors.to_vec(),
            rows: Some(Vec::new()),
        };
        let none = || MappedSplit {
            tensors: Vec::new(),
            rows: None,
        };
        for (name, tensors) in named_vals {
            let splits = [shapes(&tensors), MappedSplit::whole(tensors), none()];
            let module = self.mapped_module(splits, &stats, ctx, in_memory)?;
            sets.vals.push((name, module));
        }
        for (name, tensors) in named_tests {
            let splits = [shapes(&tensors), none(), MappedSplit::whole(tensors)];
            let module = self.mapped_module(splits, &stats, ctx, in_memory)?;
            sets.tests.push((name, module));
        }
        Ok(sets.into_module())
    }

    fn mapped_module(
        &self,
        splits: [MappedSplit; 3],
        stats: &[Stats],
        ctx: &BuildContext,
        in_memory: bool,
    ) -> Result<Box<dyn DataModule>, BuildError> {
        let options = self.batch_options(ctx);
        let mapped = MappedData::new(splits, options, &ctx.device, stats.to_vec(), self.allow_non_finite)
            .map_err(|e| BuildError::new(e.to_string()).hint("all files must hold the same tensors, of the same element type and per-sample rank"))?;
        if in_memory {
            let data = self.uploaded(&mapped, stats, ctx, options)?;
            self.normalized(data, stats)
        } else {
            self.normalized(mapped, stats)
        }
    }

    /// `data`, decoding outputs and targets with `stats` when there are any.
    fn normalized<M: DataModule + 'static>(
        &self,
        data: M,
        stats: &[Stats],
    ) -> Result<Box<dyn DataModule>, BuildError> {
        if stats.is_empty() {
            return Ok(Box::new(data));
        }
        Ok(Box::new(Normalized {
            inner: data,
            outputs: self.output_decoding(stats)?,
            stats: stats.to_vec(),
        }))
    }

    /// The splits of `mapped` on the device, each tensor uploaded piece by piece.
    fn uploaded(
        &self,
        mapped: &MappedData,
        stats: &[Stats],
        ctx: &BuildContext,
        options: BatchOptions,
    ) -> Result<InMemoryData, BuildError> {
        let mut splits: [Vec<(String, BridgeTensor)>; 3] = Default::default();
        for (i, split) in mapped.splits().iter().enumerate() {
            if split.samples() == 0 {
                continue;
            }
            let name = Split::ALL[i].to_string();
            for tensor in &split.tensors {
                let pieces = Pieces {
                    stats: stats.iter().find(|s| s.name == tensor.name()),
                    check_finite: !self.allow_non_finite,
                    split: &name,
                };
                let uploaded = upload_rows(tensor, split.rows.as_deref(), pieces, &ctx.device)
                    .map_err(|e| BuildError::at(name.as_str(), e).hint("fix or drop that sample in the file, or set allow_non_finite: true to train on non-finite values knowingly"))?;
                splits[i].push((tensor.name().to_string(), uploaded));
            }
        }
        Ok(InMemoryData::from_uploaded(
            mapped.info().clone(),
            splits,
            options,
            &ctx.device,
        ))
    }
}
