//! `BearingSignals`: a data set of generated vibration signals over operating conditions, with
//! conditions held out for testing (generalization to unseen speeds or fault sizes).

use serde::{Deserialize, Serialize};
use stoker::Component;
use stoker::data::DataModule;
use stoker::dataset::host::HostTensor;
use stoker::dataset::in_memory::{BatchOptions, InMemoryData};
use stoker::error::BuildError;
use stoker::rng::{Rng, derive_seed};
use stoker::spec::{BuildContext, DataSpec};

use crate::geometry::Geometry;
use crate::signal::{Condition, Fault, SignalModel};

fn default_speeds() -> Vec<f64> {
    vec![1730.0, 1750.0, 1772.0, 1797.0]
}
fn default_severities() -> Vec<f64> {
    vec![0.5, 1.0, 1.5]
}
fn default_loads() -> Vec<f64> {
    vec![0.0, 1.0, 2.0, 3.0]
}
fn default_per_condition() -> usize {
    8
}
fn default_length() -> usize {
    2048
}
fn default_sample_rate() -> f64 {
    12_000.0
}
fn default_resonance() -> f64 {
    3_000.0
}
fn default_damping() -> f64 {
    0.05
}
fn default_noise() -> f64 {
    0.3
}
fn default_val_fraction() -> f64 {
    0.2
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

/// Vibration signals of a rolling bearing generated from its physics (fault frequencies from the geometry and shaft speed, strikes ringing a housing resonance, load-zone modulation, slip, noise): x [length] floats, y the class (0 normal, 1 outer race, 2 inner race, 3 ball), rpm, severity and load per sample. Test on speeds or severities held out of training.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(data, name = "BearingSignals")]
pub struct BearingSignalsSpec {
    /// Shaft speeds (rpm) generated.
    #[serde(default = "default_speeds")]
    pub speeds: Vec<f64>,
    /// Fault severities (strike amplitudes relative to the noise-free shaft vibration) generated for each faulty class.
    #[serde(default = "default_severities")]
    pub severities: Vec<f64>,
    /// Loads generated (each unit raises amplitudes by 20 %).
    #[serde(default = "default_loads")]
    pub loads: Vec<f64>,
    /// Speeds whose signals form the test split only (none: test_fraction of all conditions).
    #[serde(default)]
    pub test_speeds: Vec<f64>,
    /// Severities whose faulty signals form the test split only (with test_fraction of the healthy signals, so that every class is tested).
    #[serde(default)]
    pub test_severities: Vec<f64>,
    /// Signals per (class, speed, severity, load); healthy bearings get as many per speed and load as all severities of one faulty class together, so the classes balance.
    #[serde(default = "default_per_condition")]
    pub per_condition: usize,
    /// Samples per signal.
    #[serde(default = "default_length")]
    pub length: usize,
    /// Samples per second.
    #[serde(default = "default_sample_rate")]
    pub sample_rate: f64,
    /// The housing resonance the strikes excite, Hz.
    #[serde(default = "default_resonance")]
    pub resonance_hz: f64,
    /// Damping ratio of the resonance.
    #[serde(default = "default_damping")]
    pub damping: f64,
    /// Standard deviation of the additive noise.
    #[serde(default = "default_noise")]
    pub noise: f64,
    /// The bearing (default: the CWRU 6205 drive-end bearing).
    #[serde(default)]
    pub geometry: Geometry,
    /// Fraction of the training conditions' signals held out for validation.
    #[serde(default = "default_val_fraction")]
    pub val_fraction: f64,
    /// Fraction held out for testing when no speed or severity is held out.
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// Samples per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Shuffle the training split every epoch.
    #[serde(default = "yes")]
    pub shuffle: bool,
    /// Seed of the generated signals; `environment.seed` when not given.
    #[serde(default)]
    pub data_seed: Option<u64>,
}

/// One generated signal with its condition.
struct Sample {
    signal: Vec<f64>,
    condition: Condition,
}

impl BearingSignalsSpec {
    fn check(&self) -> Result<(), BuildError> {
        self.geometry
            .check()
            .map_err(|e| BuildError::at("geometry", e))?;
        for (name, values) in [
            ("speeds", &self.speeds),
            ("severities", &self.severities),
            ("loads", &self.loads),
        ] {
            if values.is_empty() {
                return Err(BuildError::at(name, "needs at least one value"));
            }
            if let Some(v) = values.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                return Err(BuildError::at(
                    name,
                    format!("{v} is not a non-negative number"),
                ));
            }
        }
        for (name, held, all) in [
            ("test_speeds", &self.test_speeds, &self.speeds),
            ("test_severities", &self.test_severities, &self.severities),
        ] {
            if let Some(v) = held.iter().find(|v| !all.contains(v)) {
                return Err(BuildError::at(
                    name,
                    format!("{v} is not among the generated values {all:?}"),
                )
                .hint("held-out values must also be listed in speeds / severities"));
            }
            if !held.is_empty() && held.len() == all.len() {
                return Err(BuildError::at(
                    name,
                    "holds out every value: nothing is left to train on",
                ));
            }
        }
        if self.per_condition == 0 || self.batch_size == 0 || self.length < 64 {
            return Err(BuildError::new(
                "per_condition and batch_size must be at least 1 and length at least 64",
            ));
        }
        if !(self.sample_rate > 2.0 * self.resonance_hz && self.resonance_hz > 0.0) {
            return Err(BuildError::at(
                "resonance_hz",
                format!(
                    "{} Hz must be positive and below the Nyquist frequency {} Hz",
                    self.resonance_hz,
                    self.sample_rate / 2.0
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.val_fraction) || !(0.0..1.0).contains(&self.test_fraction) {
            return Err(BuildError::new(
                "val_fraction and test_fraction must be fractions in [0, 1)",
            ));
        }
        Ok(())
    }

    /// Every condition generated, healthy ones repeated to balance the classes.
    fn conditions(&self) -> Vec<Condition> {
        let mut all = Vec::new();
        for &rpm in &self.speeds {
            for &load in &self.loads {
                for fault in Fault::ALL {
                    if fault == Fault::Normal {
                        for _ in &self.severities {
                            all.push(Condition {
                                fault,
                                rpm,
                                severity: 0.0,
                                load,
                            });
                        }
                    } else {
                        for &severity in &self.severities {
                            all.push(Condition {
                                fault,
                                rpm,
                                severity,
                                load,
                            });
                        }
                    }
                }
            }
        }
        all
    }

    fn held_out(&self, c: &Condition) -> bool {
        self.test_speeds.contains(&c.rpm)
            || (c.fault != Fault::Normal && self.test_severities.contains(&c.severity))
    }
}

fn tensors(samples: &[&Sample], length: usize) -> Vec<HostTensor> {
    let n = samples.len();
    vec![
        HostTensor::f32(
            "x",
            vec![n, length],
            samples
                .iter()
                .flat_map(|s| s.signal.iter().map(|&v| v as f32))
                .collect(),
        ),
        HostTensor::i64(
            "y",
            vec![n],
            samples.iter().map(|s| s.condition.fault as i64).collect(),
        ),
        HostTensor::f32(
            "rpm",
            vec![n, 1],
            samples.iter().map(|s| s.condition.rpm as f32).collect(),
        ),
        HostTensor::f32(
            "severity",
            vec![n, 1],
            samples
                .iter()
                .map(|s| s.condition.severity as f32)
                .collect(),
        ),
        HostTensor::f32(
            "load",
            vec![n, 1],
            samples.iter().map(|s| s.condition.load as f32).collect(),
        ),
    ]
}

impl DataSpec for BearingSignalsSpec {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn DataModule>, BuildError> {
        self.check()?;
        let model = SignalModel {
            geometry: self.geometry,
            sample_rate: self.sample_rate,
            length: self.length,
            resonance_hz: self.resonance_hz,
            damping: self.damping,
            noise: self.noise,
        };
        let seed = self.data_seed.unwrap_or(ctx.seed);
        let mut rng = Rng::new(derive_seed(&[seed, 0xBEA7]));
        let samples: Vec<Sample> = self
            .conditions()
            .into_iter()
            .flat_map(|c| std::iter::repeat_n(c, self.per_condition))
            .map(|condition| Sample {
                signal: model.generate(&condition, &mut rng),
                condition,
            })
            .collect();
        // Held-out conditions go to test; the rest is shuffled and split.
        let holding_out = !self.test_speeds.is_empty() || !self.test_severities.is_empty();
        let (mut test, rest): (Vec<&Sample>, Vec<&Sample>) = samples
            .iter()
            .partition(|s| holding_out && self.held_out(&s.condition));
        let mut rest = rest;
        Rng::new(derive_seed(&[seed, 0x5917])).shuffle(&mut rest);
        let fraction = |f: f64, n: usize| (f * n as f64).round() as usize;
        if !holding_out {
            let n_test = fraction(self.test_fraction, rest.len());
            test = rest.split_off(rest.len() - n_test);
        } else if self.test_speeds.is_empty() {
            // Severities held out: healthy bearings have none, so test_fraction of them joins
            // the test split, which then holds every class.
            let (normal, faulty): (Vec<&Sample>, Vec<&Sample>) = rest
                .into_iter()
                .partition(|s| s.condition.fault == Fault::Normal);
            let mut normal = normal;
            let n_test = fraction(self.test_fraction, normal.len());
            test.extend(normal.split_off(normal.len() - n_test));
            rest = faulty;
            rest.extend(normal);
            Rng::new(derive_seed(&[seed, 0x5918])).shuffle(&mut rest);
        }
        let n_val = fraction(self.val_fraction, rest.len());
        let val = rest.split_off(rest.len() - n_val);
        let train = rest;
        if train.is_empty() {
            return Err(BuildError::new("no signals are left for training"));
        }
        let split = |s: &[&Sample]| {
            if s.is_empty() {
                Vec::new()
            } else {
                tensors(s, self.length)
            }
        };
        let options = BatchOptions {
            batch_size: self.batch_size,
            shuffle: self.shuffle,
            drop_last: false,
            seed: ctx.seed,
            eval_batch_size: None,
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
