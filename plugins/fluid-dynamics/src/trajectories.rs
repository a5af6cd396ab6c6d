//! `Trajectories`: a file of time evolutions as next-step pairs.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use stoker::Component;
use stoker::data::DataModule;
use stoker::dataset::files::{names_in, read};
use stoker::dataset::finite::check_finite;
use stoker::dataset::host::{HostData, HostTensor};
use stoker::dataset::in_memory::{BatchOptions, InMemoryData};
use stoker::error::BuildError;
use stoker::rng::{Rng, derive_seed};
use stoker::spec::{BuildContext, DataSpec};

fn default_tensor() -> String {
    "u".into()
}
fn default_val_fraction() -> f64 {
    0.1
}
fn default_test_fraction() -> f64 {
    0.2
}
fn default_batch_size() -> usize {
    32
}
fn yes() -> bool {
    true
}

/// Trajectories [samples, time, points] from a .npz or .safetensors file as next-step pairs: x = steps 0..T-1, y = steps 1..T (each [T-1, points]). The first train_samples trajectories are for training and validation, the rest for testing (the FNO Burgers protocol: 1000 and 200).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(data, name = "Trajectories")]
pub struct TrajectoriesSpec {
    /// The file, relative to the current directory.
    pub file: PathBuf,
    /// The tensor holding the trajectories, [samples, time, points].
    #[serde(default = "default_tensor")]
    pub tensor: String,
    /// Trajectories (from the start of the file) for training and validation; the rest are the test split. Without it, the last test_fraction of the file is the test split.
    #[serde(default)]
    pub train_samples: Option<usize>,
    /// Fraction of the test split when train_samples is not given.
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// Fraction of the training trajectories held out for validation (chosen by the seed).
    #[serde(default = "default_val_fraction")]
    pub val_fraction: f64,
    /// Use only the first N trajectories of each split (quick tests).
    #[serde(default)]
    pub max_samples: Option<usize>,
    /// Samples per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Samples per validation and test batch (the fluid seed's eval_batch_size; default: batch_size).
    #[serde(default)]
    pub eval_batch_size: Option<usize>,
    /// Shuffle the training split every epoch.
    #[serde(default = "yes")]
    pub shuffle: bool,
    /// Accept NaN and infinite values in the file; by default loading refuses them, naming the file, tensor, sample and position.
    #[serde(default)]
    pub allow_non_finite: bool,
}

/// `x` and `y` of the trajectories `rows` of `u` ([samples, time, points]).
fn pairs(u: &[f32], time: usize, points: usize, rows: &[usize]) -> Vec<HostTensor> {
    let steps = time - 1;
    let mut x = Vec::with_capacity(rows.len() * steps * points);
    let mut y = Vec::with_capacity(rows.len() * steps * points);
    for &r in rows {
        let trajectory = &u[r * time * points..(r + 1) * time * points];
        x.extend_from_slice(&trajectory[..steps * points]);
        y.extend_from_slice(&trajectory[points..]);
    }
    vec![
        HostTensor::f32("x", vec![rows.len(), steps, points], x),
        HostTensor::f32("y", vec![rows.len(), steps, points], y),
    ]
}

impl DataSpec for TrajectoriesSpec {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn DataModule>, BuildError> {
        if self.batch_size == 0 {
            return Err(BuildError::at("batch_size", "must be at least 1"));
        }
        if self.eval_batch_size == Some(0) {
            return Err(BuildError::at("eval_batch_size", "must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.val_fraction) || !(0.0..1.0).contains(&self.test_fraction) {
            return Err(BuildError::new(
                "val_fraction and test_fraction must be fractions in [0, 1)",
            ));
        }
        let path = &self.file;
        if !path.is_file() {
            let here = std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            return Err(BuildError::at(
                "file",
                format!("data file `{}` does not exist", path.display()),
            )
            .hint(format!(
                "paths are relative to the current directory ({here}); the Burgers data is data/fno/burgers_lowres.npz in the repository"
            )));
        }
        let names = names_in(path).map_err(|e| {
            BuildError::at("file", format!("cannot open `{}`: {e}", path.display()))
        })?;
        if !names.contains(&self.tensor) {
            return Err(BuildError::at(
                "tensor",
                format!("`{}` has no tensor named `{}`", path.display(), self.tensor),
            )
            .hint(format!("the file has: {}", names.join(", "))));
        }
        let tensor = read(path, &[&self.tensor])
            .map_err(|e| BuildError::at("file", format!("cannot read `{}`: {e}", path.display())))?
            .remove(0);
        if !self.allow_non_finite {
            check_finite(path, std::slice::from_ref(&tensor))
                .map_err(|e| BuildError::at("file", e).hint("fix or drop that sample in the file, or set allow_non_finite: true to train on non-finite values knowingly"))?;
        }
        let (samples, time, points) = match tensor.shape[..] {
            [s, t, p] if t >= 2 => (s, t, p),
            _ => {
                return Err(BuildError::at(
                    "tensor",
                    format!(
                        "`{}` has shape {:?}; trajectories are [samples, time >= 2, points]",
                        self.tensor, tensor.shape
                    ),
                ));
            }
        };
        let HostData::F32(u) = tensor.data else {
            return Err(BuildError::at(
                "tensor",
                format!("`{}` holds integers; trajectories are floats", self.tensor),
            ));
        };
        let train_samples = match self.train_samples {
            Some(n) if n == 0 || n >= samples => {
                return Err(BuildError::at(
                    "train_samples",
                    format!("{n} must leave test trajectories among the file's {samples}"),
                ));
            }
            Some(n) => n,
            None => samples - (self.test_fraction * samples as f64).round() as usize,
        };
        let mut train: Vec<usize> = (0..train_samples).collect();
        Rng::new(derive_seed(&[ctx.seed, 0x7EA1])).shuffle(&mut train);
        let n_val = (self.val_fraction * train.len() as f64).round() as usize;
        let mut val = train.split_off(train.len() - n_val);
        let mut test: Vec<usize> = (train_samples..samples).collect();
        if let Some(max) = self.max_samples {
            for split in [&mut train, &mut val, &mut test] {
                split.truncate(max);
            }
        }
        let split = |rows: &[usize]| {
            if rows.is_empty() {
                Vec::new()
            } else {
                pairs(&u, time, points, rows)
            }
        };
        let options = BatchOptions {
            batch_size: self.batch_size,
            shuffle: self.shuffle,
            drop_last: false,
            seed: ctx.seed,
            eval_batch_size: self.eval_batch_size,
        };
        InMemoryData::new(
            [split(&train), split(&val), split(&test)],
            options,
            &ctx.device,
        )
        .map(|d| Box::new(d) as Box<dyn DataModule>)
        .map_err(|e| BuildError::new(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_shift_each_trajectory_by_one_step() {
        // Two trajectories of 3 steps on 2 points: value = 100 * sample + 10 * step + point.
        let u: Vec<f32> = (0..2)
            .flat_map(|s| {
                (0..3).flat_map(move |t| (0..2).map(move |p| (100 * s + 10 * t + p) as f32))
            })
            .collect();
        let t = pairs(&u, 3, 2, &[1]);
        assert_eq!(t[0].shape, vec![1, 2, 2]);
        assert_eq!(t[0].data, HostData::F32(vec![100.0, 101.0, 110.0, 111.0]));
        assert_eq!(t[1].data, HostData::F32(vec![110.0, 111.0, 120.0, 121.0]));
    }
}
