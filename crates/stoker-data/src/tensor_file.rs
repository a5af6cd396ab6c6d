//! `TensorFile`: tensors chosen by name from NPZ or safetensors files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use stoker::Component;
use stoker::data::DataModule;
use stoker::dataset::normalize::{Method, Normalized, Stats};
use stoker::error::BuildError;
use stoker::spec::{BuildContext, DataSpec};

use stoker::dataset::files::{names_in, read};
use stoker::dataset::finite::check_finite;
use stoker::dataset::host::{HostData, HostTensor};
use stoker::dataset::in_memory::{BatchOptions, InMemoryData, split_indices};

use crate::named_sets::WithNamedSets;

/// The validation or test data: one file (the split), or named files (sets logged by name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SplitFiles {
    /// One file: the split.
    File(PathBuf),
    /// Named files, in order: `{16: a.npz, 32: b.npz}`.
    Named(serde_yaml::Mapping),
}

impl SplitFiles {
    /// The named files of argument `split` (`val` or `test`) as `(name, path)`, checked: names
    /// of letters, digits, `-` and `_`; none for a single file.
    pub(crate) fn named(
        files: Option<&SplitFiles>,
        split: &str,
    ) -> Result<Vec<(String, PathBuf)>, BuildError> {
        let Some(SplitFiles::Named(mapping)) = files else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(String, PathBuf)> = Vec::new();
        for (key, value) in mapping {
            let name = match key {
                serde_yaml::Value::String(s) => s.clone(),
                serde_yaml::Value::Number(n) => n.to_string(),
                other => format!("{other:?}"),
            };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(BuildError::at(
                    split,
                    format!("`{name}` cannot name a {split} set"),
                )
                .hint(format!("use letters, digits, `-` and `_`: the set is logged as {split}_<name>_<metric>")));
            }
            let Some(path) = value.as_str() else {
                return Err(BuildError::at(
                    format!("{split}.{name}"),
                    "must be the path of a file",
                ));
            };
            if out.iter().any(|(n, _)| *n == name) {
                return Err(BuildError::at(split, format!("`{name}` is named twice")));
            }
            out.push((name, PathBuf::from(path)));
        }
        if out.is_empty() {
            return Err(BuildError::at(split, format!("names no {split} file")));
        }
        Ok(out)
    }

    /// The single file, if that is what was given.
    pub(crate) fn file(files: Option<&SplitFiles>) -> Option<&Path> {
        match files {
            Some(SplitFiles::File(path)) => Some(path),
            _ => None,
        }
    }
}

/// Tensors from .npz or .safetensors files, chosen by name; val and test from their own files or held out of train by fraction.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(data, name = "TensorFile")]
pub struct TensorFileSpec {
    /// The training file (.npz or .safetensors), relative to the current directory.
    pub train: PathBuf,
    /// The validation file, or named validation files (`{near: near.npz, far: far.npz}`: each validation logs every set as val_<name>_<metric>, and val_<metric> over all of them together); without one, `val_fraction` of the training file is held out.
    #[serde(default)]
    pub val: Option<SplitFiles>,
    /// The test file, or named test files (`{16: darcy_test_16.npz, 32: darcy_test_32.npz}`, each evaluated by test_after_fit and logged as test_<name>_<metric>); without one, `test_fraction` of the training file is held out.
    #[serde(default)]
    pub test: Option<SplitFiles>,
    /// Names of the input tensors in the files.
    pub inputs: Vec<String>,
    /// Names of the target tensors in the files.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Fraction of the training file held out for validation (when `val` is not given).
    #[serde(default)]
    pub val_fraction: f64,
    /// Fraction of the training file held out for testing (when `test` is not given).
    #[serde(default)]
    pub test_fraction: f64,
    /// Samples per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Samples per validation and test batch (default: batch_size); evaluation keeps no gradients, so it can take larger batches.
    #[serde(default)]
    pub eval_batch_size: Option<usize>,
    /// Shuffle the training split every epoch (seeded by `environment.seed`).
    #[serde(default = "default_true")]
    pub shuffle: bool,
    /// Drop the last training batch when it is smaller than `batch_size`.
    #[serde(default)]
    pub drop_last: bool,
    /// Normalize tensors with statistics fitted on the training split: `{x: gaussian, y: gaussian}` (gaussian: one mean and std over every value; gaussian_pixel; gaussian_channel; min_max). Metrics and predictions see normalized targets and outputs decoded back to physical units; the statistics are saved as normalization.safetensors in the run directory.
    #[serde(default)]
    pub normalize: std::collections::BTreeMap<String, Method>,
    /// Which model output each normalized target decodes (default: `pred` with the first target, when that target is normalized).
    #[serde(default)]
    pub decode_outputs: std::collections::BTreeMap<String, String>,
    /// Tensors made by stacking [samples] tensors of the file, such as the columns of a CSV file: `{features: [rpm, rms, kurtosis]}` gives `features` [samples, 3] (float).
    #[serde(default)]
    pub columns: std::collections::BTreeMap<String, Vec<String>>,
    /// Accept NaN and infinite values in the files; by default loading refuses them, naming the file, tensor, sample and position.
    #[serde(default)]
    pub allow_non_finite: bool,
    /// Where the splits are held: true (on the training device, read whole at the start), false (read in place from the files, batch by batch: uncompressed .npz or .safetensors files, or folders of them as shards) or auto (in memory when the splits take under half the memory available; the run log says which).
    #[serde(default)]
    pub in_memory: InMemory,
}

/// `in_memory`: `true`, `false` or `auto`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InMemory {
    /// `true` or `false`.
    Fixed(bool),
    /// `auto`.
    Auto(String),
}

impl Default for InMemory {
    fn default() -> Self {
        InMemory::Auto("auto".into())
    }
}

fn default_batch_size() -> usize {
    32
}

fn default_true() -> bool {
    true
}

/// Stacks the `[samples]` tensors `members` into a float tensor `[samples, members]`.
fn stack(name: &str, members: &[String], tensors: &[HostTensor]) -> Result<HostTensor, String> {
    let columns: Vec<Vec<f32>> = members
        .iter()
        .map(|m| {
            let t = tensors
                .iter()
                .find(|t| &t.name == m)
                .expect("read every member");
            if t.shape.len() != 1 {
                return Err(format!(
                    "`{m}` has shape {:?}; only [samples] tensors stack",
                    t.shape
                ));
            }
            Ok(match &t.data {
                HostData::F32(v) => v.clone(),
                HostData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            })
        })
        .collect::<Result<_, _>>()?;
    let rows = columns.first().map_or(0, Vec::len);
    let values = (0..rows)
        .flat_map(|r| columns.iter().map(move |c| c[r]))
        .collect();
    Ok(HostTensor::f32(name, vec![rows, members.len()], values))
}

impl TensorFileSpec {
    fn wanted(&self) -> Vec<(String, &str)> {
        self.inputs
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("inputs[{i}]"), n.as_str()))
            .chain(
                self.targets
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (format!("targets[{i}]"), n.as_str())),
            )
            .collect()
    }

    /// Opens `path` (the file of argument `arg`), checks every wanted tensor is in it, reads them.
    fn load(&self, arg: &str, path: &Path) -> Result<Vec<HostTensor>, BuildError> {
        let here = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        if path.is_dir() {
            return self.load_shards(arg, path);
        }
        if !path.is_file() {
            return Err(BuildError::at(arg, format!("data file `{}` does not exist", path.display()))
                .hint(format!(
                    "paths are relative to the current directory ({here}); the FNO datasets are in data/fno/ of the repository"
                )));
        }
        let names = names_in(path)
            .map_err(|e| BuildError::at(arg, format!("cannot open `{}`: {e}", path.display())))?;
        for (group, members) in &self.columns {
            if let Some(missing) = members.iter().find(|m| !names.contains(m)) {
                return Err(BuildError::at(
                    format!("columns.{group}"),
                    format!("`{}` has no tensor or column `{missing}`", path.display()),
                )
                .hint(format!("the file has: {}", names.join(", "))));
            }
        }
        for (tensor_arg, name) in self.wanted() {
            if !names.iter().any(|n| n == name) && !self.columns.contains_key(name) {
                return Err(BuildError::at(
                    tensor_arg,
                    format!("`{}` has no tensor named `{name}`", path.display()),
                )
                .hint(format!("the file has: {}", names.join(", "))));
            }
        }
        let wanted: Vec<&str> = self.wanted().into_iter().map(|(_, n)| n).collect();
        let mut raw: Vec<&str> = Vec::new();
        for name in &wanted {
            match self.columns.get(*name) {
                Some(members) => raw.extend(members.iter().map(String::as_str)),
                None => raw.push(name),
            }
        }
        raw.dedup();
        // Read through a memory map where the file allows it (decoded straight from the page
        // cache, without a copy of the file's bytes first); else read whole.
        let tensors = match stoker::dataset::mapped::Sharded::open(path, &raw) {
            Ok(mapped) => mapped.iter().map(|t| t.read_all()).collect(),
            Err(_) => read(path, &raw).map_err(|e| {
                BuildError::at(arg, format!("cannot read `{}`: {e}", path.display()))
            })?,
        };
        if !self.allow_non_finite {
            check_finite(path, &tensors).map_err(|e| BuildError::at(arg, e).hint("fix or drop that sample in the file, or set allow_non_finite: true to train on non-finite values knowingly"))?;
        }
        let stacked = wanted
            .iter()
            .filter_map(|name| {
                let members = self.columns.get(*name)?;
                Some(
                    stack(name, members, &tensors)
                        .map_err(|e| BuildError::at(format!("columns.{name}"), e)),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Moved out, not copied: a tensor read is held once (a name both input and target,
        // an autoencoder's, once too).
        let mut once: Vec<&str> = Vec::new();
        for name in &wanted {
            if !once.contains(name) {
                once.push(name);
            }
        }
        let wanted = once;
        let mut tensors: Vec<Option<HostTensor>> = tensors.into_iter().map(Some).collect();
        let mut stacked: Vec<Option<HostTensor>> = stacked.into_iter().map(Some).collect();
        Ok(wanted
            .iter()
            .map(|name| {
                let source = if self.columns.contains_key(*name) {
                    &mut stacked
                } else {
                    &mut tensors
                };
                source
                    .iter_mut()
                    .find(|t| t.as_ref().is_some_and(|t| t.name == *name))
                    .and_then(Option::take)
                    .expect("read returns every name asked for")
            })
            .collect())
    }

    fn check_args(&self) -> Result<(), BuildError> {
        if self.inputs.is_empty() {
            return Err(BuildError::at("inputs", "no input tensors named")
                .hint("name at least one tensor of the file, e.g. `inputs: [x]`"));
        }
        if self.batch_size == 0 {
            return Err(BuildError::at("batch_size", "must be at least 1"));
        }
        if self.eval_batch_size == Some(0) {
            return Err(BuildError::at("eval_batch_size", "must be at least 1"));
        }
        for (arg, value, file) in [
            ("val_fraction", self.val_fraction, self.val.is_some()),
            ("test_fraction", self.test_fraction, self.test.is_some()),
        ] {
            if !(0.0..1.0).contains(&value) {
                return Err(BuildError::at(
                    arg,
                    format!("{value} is not a fraction in [0, 1)"),
                ));
            }
            if value > 0.0 && file {
                return Err(BuildError::at(
                    arg,
                    "a fraction and a file are both given for this split",
                )
                .hint("give either the file or the fraction"));
            }
        }
        if self.val_fraction + self.test_fraction >= 1.0 {
            return Err(BuildError::at(
                "val_fraction",
                "val_fraction + test_fraction leaves no training samples",
            ));
        }
        Ok(())
    }
}

impl DataSpec for TensorFileSpec {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn DataModule>, BuildError> {
        self.check_args()?;
        // Each file is opened once; data held in memory is then loaded from the maps piece by
        // piece too, and only files that cannot be mapped take the host path below.
        let sources = self.open_sources();
        match (self.held_in_memory(sources.as_ref().ok())?, sources) {
            (in_memory, Ok(sources)) => return self.build_mapped(sources, ctx, in_memory),
            (false, Err(error)) => return Err(error),
            (true, Err(_)) => {}
        }
        let train_file = self.load("train", &self.train)?;
        let samples = train_file.first().map_or(0, HostTensor::samples);
        let [train_rows, val_rows, test_rows] =
            split_indices(samples, self.val_fraction, self.test_fraction, ctx.seed);
        let take = |rows: &[usize]| -> Vec<HostTensor> {
            if rows.is_empty() {
                Vec::new()
            } else {
                train_file.iter().map(|t| t.rows(rows)).collect()
            }
        };
        let mut train = take(&train_rows);
        let named_vals = SplitFiles::named(self.val.as_ref(), "val")?;
        let named_tests = SplitFiles::named(self.test.as_ref(), "test")?;
        let mut val = match &self.val {
            Some(SplitFiles::File(path)) => self.load("val", path)?,
            Some(SplitFiles::Named(_)) => Vec::new(),
            None => take(&val_rows),
        };
        let mut test = match &self.test {
            Some(SplitFiles::File(path)) => self.load("test", path)?,
            Some(SplitFiles::Named(_)) => Vec::new(),
            None => take(&test_rows),
        };
        let stats = self.fit_normalization(&train)?;
        self.encode(&stats, "train", &mut train)?;
        self.encode(&stats, "val", &mut val)?;
        self.encode(&stats, "test", &mut test)?;
        // No training rows in a named set's module, but the tensors' shapes, which a module
        // describes itself by.
        let shapes = |tensors: &[HostTensor]| tensors.iter().map(|t| t.rows(&[])).collect();
        let mut sets = WithNamedSets {
            main: self.module([train, val, test], stats.clone(), ctx)?,
            vals: Vec::new(),
            tests: Vec::new(),
        };
        for (name, path) in named_vals {
            let at = format!("val.{name}");
            let mut tensors = self.load(&at, &path)?;
            self.encode(&stats, &at, &mut tensors)?;
            let module =
                self.module([shapes(&tensors), tensors, Vec::new()], stats.clone(), ctx)?;
            sets.vals.push((name, module));
        }
        for (name, path) in named_tests {
            let at = format!("test.{name}");
            let mut tensors = self.load(&at, &path)?;
            self.encode(&stats, &at, &mut tensors)?;
            let module =
                self.module([shapes(&tensors), Vec::new(), tensors], stats.clone(), ctx)?;
            sets.tests.push((name, module));
        }
        Ok(sets.into_module())
    }
}

impl TensorFileSpec {
    /// Encodes `tensors` (of `split`) with the statistics fitted on the training split.
    fn encode(
        &self,
        stats: &[Stats],
        split: &str,
        tensors: &mut [HostTensor],
    ) -> Result<(), BuildError> {
        for t in tensors.iter_mut() {
            if let Some(s) = stats.iter().find(|s| s.name == t.name) {
                s.encode(t, split)
                    .map_err(|e| BuildError::at(format!("normalize.{}", t.name), e))?;
            }
        }
        Ok(())
    }

    /// The splits on the device, normalized by `stats` when there are any.
    fn module(
        &self,
        splits: [Vec<HostTensor>; 3],
        stats: Vec<Stats>,
        ctx: &BuildContext,
    ) -> Result<Box<dyn DataModule>, BuildError> {
        let data = InMemoryData::new(splits, self.batch_options(ctx), &ctx.device).map_err(|e| {
            BuildError::new(e.to_string())
                .hint("all files must hold the same tensors, of the same element type and per-sample rank")
        })?;
        if stats.is_empty() {
            return Ok(Box::new(data));
        }
        Ok(Box::new(Normalized {
            inner: data,
            outputs: self.output_decoding(&stats)?,
            stats,
        }))
    }
}

impl TensorFileSpec {
    /// How the splits are cut into batches.
    pub(crate) fn batch_options(&self, ctx: &BuildContext) -> BatchOptions {
        BatchOptions {
            batch_size: self.batch_size,
            shuffle: self.shuffle,
            drop_last: self.drop_last,
            seed: ctx.seed,
            eval_batch_size: self.eval_batch_size,
        }
    }

    /// The statistics of every tensor named in `normalize`, fitted on the training split.
    fn fit_normalization(&self, train: &[HostTensor]) -> Result<Vec<Stats>, BuildError> {
        self.normalize
            .iter()
            .map(|(name, &method)| {
                let at = format!("normalize.{name}");
                let tensor = train.iter().find(|t| &t.name == name).ok_or_else(|| {
                    BuildError::at(&at, format!("`{name}` is not among the inputs and targets"))
                })?;
                Stats::fit(method, tensor).map_err(|e| BuildError::at(&at, e))
            })
            .collect()
    }

    /// Output name -> normalized target whose statistics decode it.
    pub(crate) fn output_decoding(
        &self,
        stats: &[Stats],
    ) -> Result<Vec<(String, String)>, BuildError> {
        let normalized = |name: &str| stats.iter().any(|s| s.name == name);
        if self.decode_outputs.is_empty() {
            return Ok(self
                .targets
                .first()
                .filter(|t| normalized(t))
                .map(|t| vec![("pred".to_string(), t.clone())])
                .unwrap_or_default());
        }
        self.decode_outputs
            .iter()
            .map(|(output, target)| {
                if normalized(target) {
                    Ok((output.clone(), target.clone()))
                } else {
                    Err(BuildError::at(
                        format!("decode_outputs.{output}"),
                        format!("`{target}` is not normalized"),
                    )
                    .hint("name a tensor listed under `normalize`"))
                }
            })
            .collect()
    }
}
