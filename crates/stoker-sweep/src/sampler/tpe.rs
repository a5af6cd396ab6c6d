//! `tpe`: Optuna 5.0's Tree-structured Parzen Estimator (`TPESampler` with its defaults:
//! multivariate, constant liar, gamma `min(ceil(0.1 n), 25)`, 24 candidates).
//!
//! Until `n_startup_trials` trials are complete or pruned it samples at random. Then it splits
//! the trials in two: "below", the best `gamma(n)` complete trials (filled up with the pruned
//! ones that got furthest, then best, when there are fewer), and "above", the rest with the
//! running trials (the constant liar: a running trial counts as a bad one, so parallel trials
//! spread out). It fits a [`Mixture`] to each, draws `n_ei_candidates` candidates from "below"
//! and keeps the one with the highest `log l(x) - log g(x)`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stoker::rng::Rng;
use stoker::spec::SamplerSpec;
use stoker::sweep::{Direction, Distribution, Proposal, Sampler, Study, Trial, TrialState};
use stoker::{BuildError, Component};

use super::parzen::Mixture;
use super::random::random_proposal;

fn ten() -> usize {
    10
}
fn twenty_four() -> usize {
    24
}
fn yes() -> bool {
    true
}

/// Bayesian optimisation as Optuna's TPESampler (5.0 defaults): random for the first n_startup_trials, then each trial's parameters maximise l(x)/g(x) among n_ei_candidates drawn from the Parzen estimator of the best trials; running trials count as bad ones (constant liar) so that parallel trials spread out.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(sampler, name = "tpe")]
pub struct TpeSpec {
    /// The seed of its draws (a sweep run again with the same seed and history proposes the same).
    #[serde(default)]
    pub seed: u64,
    /// Trials sampled at random before the estimator takes over (complete or pruned ones count).
    #[serde(default = "ten")]
    pub n_startup_trials: usize,
    /// Candidates drawn per trial.
    #[serde(default = "twenty_four")]
    pub n_ei_candidates: usize,
    /// One estimator over all parameters (true) or one per parameter.
    #[serde(default = "yes")]
    pub multivariate: bool,
    /// Count running trials as bad ones while sampling (for --jobs above 1).
    #[serde(default = "yes")]
    pub constant_liar: bool,
}

impl SamplerSpec for TpeSpec {
    fn build(&self) -> Result<Box<dyn Sampler>, BuildError> {
        if self.n_ei_candidates == 0 {
            return Err(BuildError::at("n_ei_candidates", "must be at least 1"));
        }
        Ok(Box::new(Tpe {
            n_startup_trials: self.n_startup_trials,
            n_ei_candidates: self.n_ei_candidates,
            multivariate: self.multivariate,
            constant_liar: self.constant_liar,
        }))
    }

    fn seed(&self) -> u64 {
        self.seed
    }
}

/// The TPE sampler.
#[derive(Debug, Clone)]
pub struct Tpe {
    /// Random trials first.
    pub n_startup_trials: usize,
    /// Candidates per trial.
    pub n_ei_candidates: usize,
    /// One joint estimator.
    pub multivariate: bool,
    /// Running trials go to "above".
    pub constant_liar: bool,
}

/// Optuna's `default_gamma`: how many trials are "below".
pub fn gamma(n: usize) -> usize {
    (n.div_ceil(10)).min(25)
}

/// The sort key of a pruned trial: further first, then better last value; NaN last.
fn pruned_key(trial: &Trial, direction: Direction) -> (i64, f64) {
    match trial.intermediate.iter().next_back() {
        None => (1, 0.0),
        Some((step, value)) if value.is_nan() => (-step, f64::INFINITY),
        Some((step, value)) => match direction {
            Direction::Minimize => (-step, *value),
            Direction::Maximize => (-step, -value),
        },
    }
}

/// Optuna's `_split_trials` for one objective: (below, above), each in trial order.
pub fn split<'a>(
    trials: &[&'a Trial],
    direction: Direction,
    n_below: usize,
) -> (Vec<&'a Trial>, Vec<&'a Trial>) {
    let mut complete: Vec<&Trial> = Vec::new();
    let mut pruned: Vec<&Trial> = Vec::new();
    let mut above: Vec<&Trial> = Vec::new();
    for &t in trials {
        match t.state {
            TrialState::Complete => complete.push(t),
            TrialState::Pruned => pruned.push(t),
            _ => above.push(t),
        }
    }
    complete.sort_by(|a, b| {
        let (a, b) = (a.value.unwrap_or(f64::NAN), b.value.unwrap_or(f64::NAN));
        match direction {
            Direction::Minimize => a.total_cmp(&b),
            Direction::Maximize => b.total_cmp(&a),
        }
    });
    let from_complete = n_below.min(complete.len());
    let mut below: Vec<&Trial> = complete.drain(..from_complete).collect();
    pruned.sort_by(|a, b| {
        let (ka, kb) = (pruned_key(a, direction), pruned_key(b, direction));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    });
    let from_pruned = (n_below - from_complete).min(pruned.len());
    below.extend(pruned.drain(..from_pruned));
    above.extend(complete);
    above.extend(pruned);
    below.sort_by_key(|t| t.number);
    above.sort_by_key(|t| t.number);
    (below, above)
}

impl Tpe {
    /// The best of `n_ei_candidates` draws from "below" for the parameters `dims` (indices
    /// into the space).
    fn best_candidate(
        &self,
        space: &[&Distribution],
        below: &[Vec<f64>],
        above: &[Vec<f64>],
        rng: &mut Rng,
    ) -> Vec<f64> {
        let l = Mixture::new(space, below, 1.0);
        let g = Mixture::new(space, above, 1.0);
        let mut best: Option<(f64, Vec<f64>)> = None;
        for _ in 0..self.n_ei_candidates {
            let x = l.sample(rng);
            let score = l.log_pdf(&x) - g.log_pdf(&x);
            // The first of equal scores wins, as numpy's argmax.
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, x));
            }
        }
        best.map(|(_, x)| x).unwrap_or_default()
    }
}

fn observations(trials: &[&Trial], names: &[&str]) -> Vec<Vec<f64>> {
    trials
        .iter()
        .map(|t| names.iter().map(|n| t.params[*n]).collect())
        .collect()
}

impl Sampler for Tpe {
    fn propose(&mut self, study: &Study<'_>, _number: usize, rng: &mut Rng) -> Option<Proposal> {
        let names: Vec<&str> = study.space.iter().map(|(n, _)| n.as_str()).collect();
        let finished = study
            .trials
            .iter()
            .filter(|t| matches!(t.state, TrialState::Complete | TrialState::Pruned))
            .count();
        if finished < self.n_startup_trials {
            return Some(random_proposal(study.space, rng));
        }
        let trials: Vec<&Trial> = study
            .trials
            .iter()
            .filter(|t| match t.state {
                TrialState::Complete | TrialState::Pruned => true,
                TrialState::Running => self.constant_liar,
                _ => false,
            })
            .filter(|t| names.iter().all(|n| t.params.contains_key(*n)))
            .collect();
        let n = trials
            .iter()
            .filter(|t| t.state != TrialState::Running)
            .count();
        let (below, above) = split(&trials, study.direction, gamma(n));
        let mut params = BTreeMap::new();
        let groups: Vec<Vec<usize>> = if self.multivariate {
            vec![(0..names.len()).collect()]
        } else {
            (0..names.len()).map(|d| vec![d]).collect()
        };
        for dims in groups {
            let group_names: Vec<&str> = dims.iter().map(|&d| names[d]).collect();
            let space: Vec<&Distribution> = dims.iter().map(|&d| &study.space[d].1).collect();
            let x = self.best_candidate(
                &space,
                &observations(&below, &group_names),
                &observations(&above, &group_names),
                rng,
            );
            for (name, value) in group_names.iter().zip(x) {
                params.insert(name.to_string(), value);
            }
        }
        Some(Proposal {
            params,
            system_attrs: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::random::Random;

    fn trial(number: usize, state: TrialState, value: Option<f64>, steps: &[(i64, f64)]) -> Trial {
        Trial {
            number,
            state,
            value,
            params: BTreeMap::new(),
            intermediate: steps.iter().copied().collect(),
            system_attrs: BTreeMap::new(),
        }
    }

    #[test]
    fn gamma_is_a_tenth_rounded_up_at_most_25() {
        assert_eq!(
            [1, 10, 11, 100, 250, 1000].map(gamma),
            [1, 1, 2, 10, 25, 25]
        );
    }

    #[test]
    fn split_fills_below_with_the_furthest_pruned_trials() {
        let trials = [
            trial(0, TrialState::Complete, Some(0.5), &[]),
            trial(1, TrialState::Pruned, Some(0.9), &[(0, 0.9)]),
            trial(2, TrialState::Pruned, Some(0.7), &[(0, 0.8), (1, 0.7)]),
            trial(3, TrialState::Running, None, &[(0, 0.1)]),
            trial(4, TrialState::Complete, Some(0.2), &[]),
            trial(5, TrialState::Pruned, Some(0.6), &[(0, 0.6)]),
        ];
        let refs: Vec<&Trial> = trials.iter().collect();
        let numbers = |v: &[&Trial]| v.iter().map(|t| t.number).collect::<Vec<_>>();
        let (below, above) = split(&refs, Direction::Minimize, 3);
        // Both complete trials, then trial 2 (step 1 beats step 0), not 5 nor 1.
        assert_eq!(numbers(&below), vec![0, 2, 4]);
        assert_eq!(numbers(&above), vec![1, 3, 5]);
        let (below, _) = split(&refs, Direction::Maximize, 1);
        assert_eq!(numbers(&below), vec![0]);
    }

    /// The Branin function, minimum 0.397887 at (-pi, 12.275), (pi, 2.275), (9.42478, 2.475).
    fn branin(x: f64, y: f64) -> f64 {
        use std::f64::consts::PI;
        let b = 5.1 / (4.0 * PI * PI);
        let c = 5.0 / PI;
        (y - b * x * x + c * x - 6.0).powi(2) + 10.0 * (1.0 - 1.0 / (8.0 * PI)) * x.cos() + 10.0
    }

    fn best_after(sampler: &mut dyn Sampler, budget: usize, seed: u64) -> f64 {
        let space = vec![
            (
                "x".to_string(),
                Distribution::Float {
                    low: -5.0,
                    high: 10.0,
                    log: false,
                    step: None,
                },
            ),
            (
                "y".to_string(),
                Distribution::Float {
                    low: 0.0,
                    high: 15.0,
                    log: false,
                    step: None,
                },
            ),
        ];
        let mut trials: Vec<Trial> = Vec::new();
        for number in 0..budget {
            let study = Study {
                direction: Direction::Minimize,
                space: &space,
                trials: &trials,
            };
            let mut rng = Rng::new(crate::sampler::trial_seed(seed, number));
            let p = sampler.propose(&study, number, &mut rng).unwrap().params;
            let value = branin(p["x"], p["y"]);
            trials.push(Trial {
                number,
                state: TrialState::Complete,
                value: Some(value),
                params: p,
                intermediate: BTreeMap::new(),
                system_attrs: BTreeMap::new(),
            });
        }
        trials
            .iter()
            .filter_map(|t| t.value)
            .fold(f64::INFINITY, f64::min)
    }

    #[test]
    fn tpe_beats_random_search_on_branin_at_equal_budget() {
        let (mut tpe_wins, mut tpe_total, mut random_total) = (0, 0.0, 0.0);
        for seed in 0..8 {
            let mut tpe = Tpe {
                n_startup_trials: 10,
                n_ei_candidates: 24,
                multivariate: true,
                constant_liar: true,
            };
            let t = best_after(&mut tpe, 60, seed);
            let r = best_after(&mut Random, 60, seed + 1000);
            tpe_wins += usize::from(t < r);
            tpe_total += t;
            random_total += r;
        }
        assert!(
            tpe_wins >= 6,
            "TPE beat random search on {tpe_wins} of 8 seeds"
        );
        assert!(
            tpe_total < 0.7 * random_total,
            "mean best {} vs {}",
            tpe_total / 8.0,
            random_total / 8.0
        );
    }

    #[test]
    fn the_same_seed_and_history_propose_the_same() {
        let run = |seed| {
            let mut tpe = Tpe {
                n_startup_trials: 5,
                n_ei_candidates: 24,
                multivariate: false,
                constant_liar: true,
            };
            best_after(&mut tpe, 20, seed)
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert_eq!(
            best_after(&mut Random, 20, 7),
            best_after(&mut Random, 20, 7)
        );
        assert_ne!(
            best_after(&mut Random, 20, 7),
            best_after(&mut Random, 20, 8)
        );
    }
}
