//! `random`: each parameter drawn independently and uniformly (Optuna's `RandomSampler`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stoker::rng::Rng;
use stoker::spec::SamplerSpec;
use stoker::sweep::{Distribution, Proposal, Sampler, Study};
use stoker::{BuildError, Component};

/// Random search: each parameter drawn uniformly (in log scale for log ranges; rounded to the step), independently of earlier trials, as Optuna's RandomSampler.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(sampler, name = "random")]
pub struct RandomSpec {
    /// The seed of its draws.
    #[serde(default)]
    pub seed: u64,
}

impl SamplerSpec for RandomSpec {
    fn build(&self) -> Result<Box<dyn Sampler>, BuildError> {
        Ok(Box::new(Random))
    }

    fn seed(&self) -> u64 {
        self.seed
    }
}

/// The random sampler.
#[derive(Debug, Clone, Copy)]
pub struct Random;

/// One uniform draw of every parameter of `space`.
pub fn random_proposal(space: &[(String, Distribution)], rng: &mut Rng) -> Proposal {
    let params: BTreeMap<String, f64> = space
        .iter()
        .map(|(name, dist)| (name.clone(), dist.sample_uniform(rng)))
        .collect();
    Proposal {
        params,
        system_attrs: Vec::new(),
    }
}

impl Sampler for Random {
    fn propose(&mut self, study: &Study<'_>, _number: usize, rng: &mut Rng) -> Option<Proposal> {
        Some(random_proposal(study.space, rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_cover_each_range_uniformly() {
        let mut rng = Rng::new(1);
        let int = Distribution::Int {
            low: 16,
            high: 64,
            log: false,
            step: 16,
        };
        let mut counts = [0usize; 4];
        let log = Distribution::Float {
            low: 1e-4,
            high: 1e-2,
            log: true,
            step: None,
        };
        let mut below_1e3 = 0;
        let n = 40_000;
        for _ in 0..n {
            let v = int.sample_uniform(&mut rng);
            counts[((v - 16.0) / 16.0) as usize] += 1;
            let x = log.sample_uniform(&mut rng);
            assert!((1e-4..=1e-2).contains(&x));
            below_1e3 += usize::from(x < 1e-3);
        }
        for c in counts {
            assert!((c as f64 / n as f64 - 0.25).abs() < 0.01, "{counts:?}");
        }
        // Half of a log-uniform range lies below its geometric midpoint.
        assert!((below_1e3 as f64 / n as f64 - 0.5).abs() < 0.01);
    }
}
