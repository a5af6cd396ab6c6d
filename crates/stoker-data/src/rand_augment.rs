//! `rand_augment`: RandAugment (Cubuk et al. 2020) for signals. Each training batch draws `n`
//! operations, uniformly and with replacement, from a pool of stoker's augmentations, and
//! applies them in turn at one shared magnitude `M` in [0, 1]. The draws come from the seed the
//! loop gives the batch, so a resumed run augments each batch as the uninterrupted one did.

use serde::{Deserialize, Serialize};
use stoker::Component;
use stoker::augment::Augmentation;
use stoker::batch::Batch;
use stoker::error::{BuildError, Result};
use stoker::rng::{Rng, derive_seed};
use stoker::spec::{AugmentationSpec, BuildContext};

use crate::augment::{
    AmplitudeScaleSpec, GaussianNoiseSpec, TimeMaskingSpec, TimeShiftSpec, check_tensor,
};
use crate::patch::{CutoutSpec, Layout, PatchDropoutSpec, PatchJitterSpec};

/// The operations that cut the signal into patches: they need a `patch_size`.
const PATCH_OPERATIONS: [&str; 3] = ["patch_dropout", "cutout", "patch_jitter"];

/// The operations of the pool, and what magnitude M (in [0, 1]) means for each.
pub const OPERATIONS: [&str; 7] = [
    "gaussian_noise",  // std M x noise_std
    "amplitude_scale", // a factor in [1 - M/2, 1 + M/2]
    "time_shift",      // up to M x length / 4 steps
    "time_masking",    // a window of up to M x length / 4 steps
    "patch_dropout",   // each patch dropped with probability M / 2 (needs patch_size)
    "cutout",          // a block of up to M x patches / 4 patches (needs patch_size)
    "patch_jitter",    // patches moved by up to M x patch_size / 2 steps (needs patch_size)
];

fn two() -> usize {
    2
}
fn half() -> f64 {
    0.5
}

/// RandAugment: each training batch draws n operations (uniformly, with replacement) from `ops` and applies them at the shared magnitude M in [0, 1]: gaussian_noise (std M x noise_std), amplitude_scale (factors in [1 - M/2, 1 + M/2]), time_shift (up to M x length/4 steps), time_masking (a window of up to M x length/4), and with patch_size patch_dropout (rate M/2), cutout (up to M x patches/4) and patch_jitter (up to M x patch_size/2 steps). M = 0 changes nothing.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(augmentation, name = "rand_augment")]
pub struct RandAugmentSpec {
    /// The batch tensor changed.
    #[serde(default = "stoker::names::input")]
    pub tensor: String,
    /// Operations per batch (RandAugment's N).
    #[serde(default = "two")]
    pub n: usize,
    /// The shared magnitude in [0, 1] (RandAugment's M, over its full range).
    #[serde(default = "half")]
    pub magnitude: f64,
    /// The pool (default: the four signal operations, and the three patch ones with patch_size).
    #[serde(default)]
    pub ops: Option<Vec<String>>,
    /// The noise's standard deviation at magnitude 1.
    #[serde(default = "half")]
    pub noise_std: f64,
    /// Steps per patch for the patch operations.
    #[serde(default)]
    pub patch_size: Option<usize>,
}

impl RandAugmentSpec {
    /// The pool of operations, checked.
    fn pool(&self) -> std::result::Result<Vec<&'static str>, BuildError> {
        let patched = |op: &str| PATCH_OPERATIONS.contains(&op);
        let Some(ops) = &self.ops else {
            return Ok(OPERATIONS
                .into_iter()
                .filter(|op| self.patch_size.is_some() || !patched(op))
                .collect());
        };
        if ops.is_empty() {
            return Err(BuildError::at(
                "ops",
                "is empty: name at least one operation",
            ));
        }
        ops.iter()
            .enumerate()
            .map(|(i, op)| {
                let found = OPERATIONS
                    .into_iter()
                    .find(|known| known == op)
                    .ok_or_else(|| {
                        BuildError::at(
                            format!("ops[{i}]"),
                            format!(
                                "`{op}` is not an operation of rand_augment; it knows {}",
                                OPERATIONS.join(", ")
                            ),
                        )
                    })?;
                if patched(found) && self.patch_size.is_none() {
                    return Err(BuildError::at(
                        format!("ops[{i}]"),
                        format!(
                            "`{op}` cuts the signal into patches: give rand_augment a patch_size"
                        ),
                    ));
                }
                Ok(found)
            })
            .collect()
    }

    /// The operation `op` at this magnitude, for a last axis of `length` steps; `None` when it
    /// would change nothing (a cutout of no patch).
    fn operation(&self, op: &str, length: usize) -> Option<Box<dyn Augmentation>> {
        let m = self.magnitude;
        let tensor = self.tensor.clone();
        let steps = |fraction: f64| (m * fraction).round() as usize;
        let patch = self.patch_size.unwrap_or(1);
        Some(match op {
            "gaussian_noise" => Box::new(GaussianNoiseSpec {
                tensor,
                std: m * self.noise_std,
            }),
            "amplitude_scale" => Box::new(AmplitudeScaleSpec {
                tensor,
                low: 1.0 - m / 2.0,
                high: 1.0 + m / 2.0,
            }),
            "time_shift" => Box::new(TimeShiftSpec {
                tensor,
                max_shift: steps(length as f64 / 4.0),
            }),
            "time_masking" => Box::new(TimeMaskingSpec {
                tensor,
                max_width: steps(length as f64 / 4.0),
                masks: 1,
            }),
            "patch_dropout" => Box::new(PatchDropoutSpec {
                tensor,
                patch_size: Some(patch),
                tokens: false,
                rate: m / 2.0,
            }),
            "cutout" => {
                let max_patches = steps((length / patch) as f64 / 4.0);
                if max_patches == 0 {
                    return None;
                }
                Box::new(CutoutSpec {
                    tensor,
                    patch_size: Some(patch),
                    tokens: false,
                    max_patches,
                    max_channels: None,
                    holes: 1,
                })
            }
            "patch_jitter" => Box::new(PatchJitterSpec {
                tensor,
                patch_size: Some(patch),
                tokens: false,
                max_jitter: steps(patch as f64 / 2.0),
            }),
            other => unreachable!("the pool holds known operations, not {other}"),
        })
    }
}

/// A built RandAugment: the spec and its pool.
struct RandAugment {
    spec: RandAugmentSpec,
    pool: Vec<&'static str>,
}

impl RandAugment {
    /// The operations drawn for the batch of `seed`.
    fn draw(&self, seed: u64) -> Vec<&'static str> {
        let mut rng = Rng::new(derive_seed(&[seed, 0x7261_6e64]));
        (0..self.spec.n)
            .map(|_| self.pool[rng.below(self.pool.len() as u64) as usize])
            .collect()
    }
}

impl Augmentation for RandAugment {
    fn apply(&self, mut batch: Batch, seed: u64) -> Result<Batch> {
        if self.spec.magnitude == 0.0 {
            return Ok(batch);
        }
        let length = *batch
            .shape(&self.spec.tensor)?
            .last()
            .expect("a batch tensor has a batch axis");
        for (i, op) in self.draw(seed).into_iter().enumerate() {
            if let Some(operation) = self.spec.operation(op, length) {
                batch = operation.apply(batch, derive_seed(&[seed, i as u64 + 1]))?;
            }
        }
        Ok(batch)
    }
}

impl AugmentationSpec for RandAugmentSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Augmentation>, BuildError> {
        if !(0.0..=1.0).contains(&self.magnitude) {
            return Err(BuildError::at(
                "magnitude",
                "must be in [0, 1] (RandAugment's M over its full range)",
            ));
        }
        if self.n == 0 {
            return Err(BuildError::at("n", "must be at least 1"));
        }
        if !(self.noise_std.is_finite() && self.noise_std >= 0.0) {
            return Err(BuildError::at("noise_std", "must be a non-negative number"));
        }
        if self.patch_size == Some(0) {
            return Err(BuildError::at("patch_size", "must be at least 1"));
        }
        let pool = self.pool()?;
        check_tensor(ctx, &self.tensor, 1)?;
        if let Some(p) = self.patch_size {
            Layout::Signal(p).check(ctx, &self.tensor)?;
        }
        Ok(Box::new(RandAugment {
            spec: self.clone(),
            pool,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stoker::burn::tensor::{Device, Tensor, TensorData};

    fn spec(n: usize, magnitude: f64, ops: Option<&[&str]>) -> RandAugment {
        let spec = RandAugmentSpec {
            tensor: "x".into(),
            n,
            magnitude,
            ops: ops.map(|o| o.iter().map(|s| s.to_string()).collect()),
            noise_std: 0.5,
            patch_size: Some(4),
        };
        let pool = spec.pool().unwrap();
        RandAugment { spec, pool }
    }

    fn batch(b: usize, l: usize) -> Batch {
        let values: Vec<f32> = (0..b * l).map(|v| 1.0 + v as f32).collect();
        let mut batch = Batch::batch();
        batch.insert_float(
            "x",
            Tensor::<2>::from_data(TensorData::new(values, [b, l]), &Device::flex()),
        );
        batch
    }

    fn values(batch: &Batch) -> Vec<f32> {
        batch
            .float::<2>("x")
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn each_batch_draws_n_operations_from_the_whole_pool_by_its_seed() {
        let aug = spec(2, 0.5, None);
        assert_eq!(aug.pool.len(), 7, "with patch_size, the whole pool");
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let drawn = aug.draw(seed);
            assert_eq!(drawn.len(), 2);
            assert_eq!(drawn, aug.draw(seed), "the seed decides");
            seen.extend(drawn);
        }
        assert_eq!(seen.len(), 7, "{seen:?}");
        // The same seed augments alike; another differently.
        let once = values(&aug.apply(batch(8, 64), 3).unwrap());
        assert_eq!(values(&aug.apply(batch(8, 64), 3).unwrap()), once);
        assert_ne!(values(&aug.apply(batch(8, 64), 4).unwrap()), once);
        assert_ne!(values(&batch(8, 64)), once);
    }

    #[test]
    fn the_magnitude_sets_each_operations_strength() {
        // Magnitude 0 changes nothing, whatever is drawn.
        let input = values(&batch(8, 64));
        for seed in 0..20 {
            assert_eq!(
                values(&spec(3, 0.0, None).apply(batch(8, 64), seed).unwrap()),
                input
            );
        }
        // amplitude_scale alone at M = 1: factors in [0.5, 1.5], reaching near both ends.
        let aug = spec(1, 1.0, Some(&["amplitude_scale"]));
        let out = values(&aug.apply(batch(400, 4), 7).unwrap());
        let factors: Vec<f32> = out
            .chunks(4)
            .zip(input.chunks(4).cycle())
            .map(|(o, _)| o[0])
            .collect();
        let firsts: Vec<f32> = (0..400).map(|s| 1.0 + (s * 4) as f32).collect();
        let ratios: Vec<f32> = factors.iter().zip(&firsts).map(|(o, i)| o / i).collect();
        let (low, high) = ratios
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), r| (a.min(*r), b.max(*r)));
        assert!(
            (0.5..0.53).contains(&low) && high > 1.47 && high <= 1.5,
            "{low} {high}"
        );
        // time_masking alone at M = 0.5 on 64 steps: windows of at most 8 steps, the widest drawn.
        let aug = spec(1, 0.5, Some(&["time_masking"]));
        let out = values(&aug.apply(batch(300, 64), 1).unwrap());
        let widest = out
            .chunks(64)
            .map(|row| row.iter().filter(|v| **v == 0.0).count())
            .max();
        assert_eq!(widest, Some(8));
    }

    #[test]
    fn a_pool_is_checked() {
        let bad = RandAugmentSpec {
            tensor: "x".into(),
            n: 1,
            magnitude: 0.5,
            ops: Some(vec!["time_shift".into(), "rotate".into()]),
            noise_std: 0.5,
            patch_size: None,
        };
        let e = bad.pool().unwrap_err();
        assert_eq!(e.arg.as_deref(), Some("ops[1]"));
        let unpatched = RandAugmentSpec {
            ops: Some(vec!["cutout".into()]),
            ..bad.clone()
        };
        assert!(unpatched.pool().unwrap_err().message.contains("patch_size"));
        let default = RandAugmentSpec { ops: None, ..bad };
        assert_eq!(
            default.pool().unwrap(),
            [
                "gaussian_noise",
                "amplitude_scale",
                "time_shift",
                "time_masking"
            ]
        );
    }
}
