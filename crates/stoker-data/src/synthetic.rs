//! Synthetic datasets generated from the seed: for the quickstart, smoke tests and examples.

use serde::{Deserialize, Serialize};
use stoker::Component;
use stoker::data::DataModule;
use stoker::error::BuildError;
use stoker::rng::{Rng, derive_seed};
use stoker::spec::{BuildContext, DataSpec};

use stoker::dataset::host::HostTensor;
use stoker::dataset::in_memory::{BatchOptions, InMemoryData, split_indices};

fn default_samples() -> usize {
    2048
}
fn default_features() -> usize {
    8
}
fn default_one() -> usize {
    1
}
fn default_hidden() -> usize {
    16
}
fn default_noise() -> f64 {
    0.05
}
fn default_val_fraction() -> f64 {
    0.2
}
fn default_batch_size() -> usize {
    64
}
fn default_true() -> bool {
    true
}
fn default_classes() -> usize {
    3
}
fn default_separation() -> f64 {
    3.0
}

fn check_common(samples: usize, val: f64, test: f64, batch_size: usize) -> Result<(), BuildError> {
    if samples == 0 {
        return Err(BuildError::at("n_samples", "must be at least 1"));
    }
    if batch_size == 0 {
        return Err(BuildError::at("batch_size", "must be at least 1"));
    }
    if !(0.0..1.0).contains(&val) {
        return Err(BuildError::at(
            "val_fraction",
            format!("{val} is not a fraction in [0, 1)"),
        ));
    }
    if !(0.0..1.0).contains(&test) || val + test >= 1.0 {
        return Err(BuildError::at(
            "test_fraction",
            "val_fraction + test_fraction must leave training samples",
        ));
    }
    Ok(())
}

fn finish(
    tensors: Vec<HostTensor>,
    val_fraction: f64,
    test_fraction: f64,
    options: BatchOptions,
    ctx: &BuildContext,
) -> Result<Box<dyn DataModule>, BuildError> {
    let samples = tensors[0].samples();
    let rows = split_indices(samples, val_fraction, test_fraction, options.seed);
    let splits = rows.map(|r| {
        if r.is_empty() {
            Vec::new()
        } else {
            tensors.iter().map(|t| t.rows(&r)).collect()
        }
    });
    InMemoryData::new(splits, options, &ctx.device)
        .map(|d| Box::new(d) as Box<dyn DataModule>)
        .map_err(|e| BuildError::new(e.to_string()))
}

/// Synthetic regression: x ~ N(0, I), y = tanh(x A) b + noise, with A and b drawn from the seed.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(data, name = "SyntheticRegression")]
pub struct SyntheticRegressionSpec {
    /// Number of samples in all splits together.
    #[serde(default = "default_samples")]
    pub n_samples: usize,
    /// Features per sample (tensor `x`, shape [n_features]).
    #[serde(default = "default_features")]
    pub n_features: usize,
    /// Targets per sample (tensor `y`, shape [n_targets]).
    #[serde(default = "default_one")]
    pub n_targets: usize,
    /// Width of the hidden tanh layer of the generating function.
    #[serde(default = "default_hidden")]
    pub hidden: usize,
    /// Standard deviation of the Gaussian noise added to y.
    #[serde(default = "default_noise")]
    pub noise: f64,
    /// Fraction held out for validation.
    #[serde(default = "default_val_fraction")]
    pub val_fraction: f64,
    /// Fraction held out for testing.
    #[serde(default)]
    pub test_fraction: f64,
    /// Samples per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Shuffle the training split every epoch.
    #[serde(default = "default_true")]
    pub shuffle: bool,
    /// Seed of the generated data; `environment.seed` when not given.
    #[serde(default)]
    pub data_seed: Option<u64>,
}

impl DataSpec for SyntheticRegressionSpec {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn DataModule>, BuildError> {
        check_common(
            self.n_samples,
            self.val_fraction,
            self.test_fraction,
            self.batch_size,
        )?;
        if self.n_features == 0 || self.n_targets == 0 || self.hidden == 0 {
            return Err(BuildError::new(
                "n_features, n_targets and hidden must be at least 1",
            ));
        }
        let seed = self.data_seed.unwrap_or(ctx.seed);
        let mut rng = Rng::new(derive_seed(&[seed, 0xDA7A]));
        let (n, f, h, t) = (self.n_samples, self.n_features, self.hidden, self.n_targets);
        let a: Vec<f64> = (0..f * h)
            .map(|_| rng.normal() / (f as f64).sqrt())
            .collect();
        let b: Vec<f64> = (0..h * t)
            .map(|_| rng.normal() / (h as f64).sqrt())
            .collect();
        let mut x = Vec::with_capacity(n * f);
        let mut y = Vec::with_capacity(n * t);
        for _ in 0..n {
            let row: Vec<f64> = (0..f).map(|_| rng.normal()).collect();
            let hidden: Vec<f64> = (0..h)
                .map(|j| (0..f).map(|i| row[i] * a[i * h + j]).sum::<f64>().tanh())
                .collect();
            for k in 0..t {
                let value: f64 = (0..h).map(|j| hidden[j] * b[j * t + k]).sum();
                y.push((value + self.noise * rng.normal()) as f32);
            }
            x.extend(row.iter().map(|&v| v as f32));
        }
        let tensors = vec![
            HostTensor::f32("x", vec![n, f], x),
            HostTensor::f32("y", vec![n, t], y),
        ];
        let options = BatchOptions {
            batch_size: self.batch_size,
            shuffle: self.shuffle,
            drop_last: false,
            seed: ctx.seed,
            eval_batch_size: None,
        };
        finish(tensors, self.val_fraction, self.test_fraction, options, ctx)
    }
}

/// Synthetic classification: Gaussian blobs around class centres drawn from the seed; x [n_features] floats, y integer labels.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(data, name = "SyntheticClassification")]
pub struct SyntheticClassificationSpec {
    /// Number of samples in all splits together.
    #[serde(default = "default_samples")]
    pub n_samples: usize,
    /// Features per sample (tensor `x`).
    #[serde(default = "default_features")]
    pub n_features: usize,
    /// Number of classes (labels `y` in 0..n_classes).
    #[serde(default = "default_classes")]
    pub n_classes: usize,
    /// Spread of the class centres in units of the within-class standard deviation.
    #[serde(default = "default_separation")]
    pub separation: f64,
    /// Fraction held out for validation.
    #[serde(default = "default_val_fraction")]
    pub val_fraction: f64,
    /// Fraction held out for testing.
    #[serde(default)]
    pub test_fraction: f64,
    /// Samples per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Shuffle the training split every epoch.
    #[serde(default = "default_true")]
    pub shuffle: bool,
    /// Seed of the generated data; `environment.seed` when not given.
    #[serde(default)]
    pub data_seed: Option<u64>,
}

impl DataSpec for SyntheticClassificationSpec {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn DataModule>, BuildError> {
        check_common(
            self.n_samples,
            self.val_fraction,
            self.test_fraction,
            self.batch_size,
        )?;
        if self.n_classes < 2 {
            return Err(BuildError::at("n_classes", "must be at least 2"));
        }
        if self.n_features == 0 {
            return Err(BuildError::at("n_features", "must be at least 1"));
        }
        let seed = self.data_seed.unwrap_or(ctx.seed);
        let mut rng = Rng::new(derive_seed(&[seed, 0xC1A55]));
        let (n, f, c) = (self.n_samples, self.n_features, self.n_classes);
        let scale = self.separation / (f as f64).sqrt();
        let centres: Vec<f64> = (0..c * f).map(|_| rng.normal() * scale).collect();
        let mut x = Vec::with_capacity(n * f);
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let class = i % c;
            y.push(class as i64);
            x.extend((0..f).map(|j| (centres[class * f + j] + rng.normal()) as f32));
        }
        let tensors = vec![
            HostTensor::f32("x", vec![n, f], x),
            HostTensor::i64("y", vec![n], y),
        ];
        let options = BatchOptions {
            batch_size: self.batch_size,
            shuffle: self.shuffle,
            drop_last: false,
            seed: ctx.seed,
            eval_batch_size: None,
        };
        finish(tensors, self.val_fraction, self.test_fraction, options, ctx)
    }
}
