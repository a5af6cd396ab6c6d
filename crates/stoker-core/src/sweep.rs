//! The contracts of a hyper-parameter search (`cargo xtask sweep`): the distributions a sweep
//! file's `space:` declares, the trials of a study as samplers and pruners see them, and the
//! [`Sampler`] and [`Pruner`] traits the registered samplers (`grid`, `random`, `tpe`) and pruners
//! (`none`, `median`, `percentile`, `successive_halving`) implement.
//!
//! The model is Optuna's, so that a study is stored in Optuna's journal format and Optuna reads
//! it back: a parameter has an *internal* value, a float (the value itself for a float or an
//! integer, the index of the choice for a categorical), and each trial reports one value per
//! epoch (its intermediate values, the `step` being the epoch).

use std::collections::BTreeMap;

use crate::rng::Rng;

/// Whether the objective is minimized or maximized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Lower is better.
    Minimize,
    /// Higher is better.
    Maximize,
}

impl Direction {
    /// Whether `a` is better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::Minimize => a < b,
            Direction::Maximize => a > b,
        }
    }
}

/// The range or the choices of one parameter, as Optuna's distributions.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    /// A float in `[low, high]`, on a log scale if `log`, on a grid of `step` if given.
    Float {
        /// The lowest value.
        low: f64,
        /// The highest value.
        high: f64,
        /// Sampled uniformly in `ln`.
        log: bool,
        /// The grid spacing from `low`, if any.
        step: Option<f64>,
    },
    /// An integer in `low..=high` on a grid of `step` (1: every integer), on a log scale if `log`.
    Int {
        /// The lowest value.
        low: i64,
        /// The highest value.
        high: i64,
        /// Sampled uniformly in `ln`.
        log: bool,
        /// The grid spacing from `low`.
        step: i64,
    },
    /// One of `choices` (JSON scalars: what Optuna stores); the internal value is the index.
    Categorical {
        /// The choices as Optuna stores them (a list choice is its compact JSON text).
        choices: Vec<serde_json::Value>,
    },
}

impl Distribution {
    /// The values a grid search visits, as internal values: every step of an integer or a
    /// stepped float, every choice; `None` for a continuous float.
    pub fn grid_points(&self) -> Option<Vec<f64>> {
        match self {
            Distribution::Float { step: None, .. } => None,
            Distribution::Float {
                low,
                high,
                step: Some(step),
                ..
            } => {
                let n = ((high - low) / step + 1e-9).floor() as usize;
                Some((0..=n).map(|k| low + k as f64 * step).collect())
            }
            Distribution::Int {
                low, high, step, ..
            } => Some(
                (0..=((high - low) / step))
                    .map(|k| (low + k * step) as f64)
                    .collect(),
            ),
            Distribution::Categorical { choices } => {
                Some((0..choices.len()).map(|i| i as f64).collect())
            }
        }
    }

    /// The value Optuna shows for an internal value: the number (an integer for `Int`), or the
    /// choice.
    pub fn external(&self, internal: f64) -> serde_json::Value {
        match self {
            Distribution::Float { .. } => serde_json::json!(internal),
            Distribution::Int { .. } => serde_json::json!(internal.round() as i64),
            Distribution::Categorical { choices } => choices
                .get(internal as usize)
                .cloned()
                .unwrap_or(serde_json::Value::Null),
        }
    }

    /// Whether `internal` is a value of this distribution.
    pub fn contains(&self, internal: f64) -> bool {
        match self {
            Distribution::Float { low, high, .. } => (*low..=*high).contains(&internal),
            Distribution::Int { low, high, .. } => {
                internal.fract() == 0.0 && (*low as f64..=*high as f64).contains(&internal)
            }
            Distribution::Categorical { choices } => {
                internal.fract() == 0.0 && internal >= 0.0 && (internal as usize) < choices.len()
            }
        }
    }

    /// A uniform draw (Optuna's `RandomSampler`): uniform in the (log) range widened by half a
    /// step at each end, then rounded to the grid and clipped; a uniform choice.
    pub fn sample_uniform(&self, rng: &mut Rng) -> f64 {
        match self {
            Distribution::Float {
                low,
                high,
                log,
                step,
            } => match (step, log) {
                (None, false) => {
                    let x = low + rng.next_f64() * (high - low);
                    x.min(*high)
                }
                (None, true) => {
                    let x = (low.ln() + rng.next_f64() * (high.ln() - low.ln())).exp();
                    x.clamp(*low, *high)
                }
                (Some(step), _) => {
                    let x = (low - step / 2.0) + rng.next_f64() * (high - low + step);
                    (low + ((x - low) / step).round() * step).clamp(*low, *high)
                }
            },
            Distribution::Int {
                low,
                high,
                log,
                step,
            } => {
                let (low, high, step) = (*low as f64, *high as f64, *step as f64);
                let x = if *log {
                    let (a, b) = ((low - 0.5).ln(), (high + 0.5).ln());
                    (a + rng.next_f64() * (b - a)).exp().round()
                } else {
                    let x = (low - step / 2.0) + rng.next_f64() * (high - low + step);
                    ((x - low) / step + 0.5).floor() * step + low
                };
                x.clamp(low, high)
            }
            Distribution::Categorical { choices } => rng.below(choices.len() as u64) as f64,
        }
    }
}

/// Where a trial is, as Optuna's `TrialState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialState {
    /// Training.
    Running,
    /// Finished with a value.
    Complete,
    /// Stopped by the pruner.
    Pruned,
    /// Failed (an error, no value, or the sweep stopped while it ran).
    Fail,
    /// Queued, not started.
    Waiting,
}

impl TrialState {
    /// Whether the trial has ended.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TrialState::Complete | TrialState::Pruned | TrialState::Fail
        )
    }
}

/// One trial of a study.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// Its number in the study (0, 1, ...).
    pub number: usize,
    /// Where it is.
    pub state: TrialState,
    /// Its objective value, once complete (a pruned trial keeps its last reported value).
    pub value: Option<f64>,
    /// Its parameters' internal values, by name.
    pub params: BTreeMap<String, f64>,
    /// The value it reported at each step (epoch).
    pub intermediate: BTreeMap<i64, f64>,
    /// Values the sampler and the pruner keep on it (`grid_id`, `completed_rung_0`, ...).
    pub system_attrs: BTreeMap<String, serde_json::Value>,
}

impl Trial {
    /// The last step it reported.
    pub fn last_step(&self) -> Option<i64> {
        self.intermediate.keys().next_back().copied()
    }
}

/// A study as samplers and pruners see it.
#[derive(Debug, Clone, Copy)]
pub struct Study<'a> {
    /// The objective's direction.
    pub direction: Direction,
    /// The parameters, in the sweep file's order.
    pub space: &'a [(String, Distribution)],
    /// Every trial so far, by number.
    pub trials: &'a [Trial],
}

/// What a sampler proposes for a new trial.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// Internal values, by name: one for each parameter of the space.
    pub params: BTreeMap<String, f64>,
    /// Attributes stored on the new trial (a grid's `grid_id` and `search_space`).
    pub system_attrs: Vec<(String, serde_json::Value)>,
}

/// Proposes the parameters of the next trial.
pub trait Sampler: Send {
    /// The parameters of trial `number`, from the study so far (where `number` is not yet);
    /// `None` when there is nothing left to try (a grid that is done). `rng` is seeded from the
    /// sampler's seed and `number`, so a sweep run again proposes the same for the same history.
    fn propose(&mut self, study: &Study<'_>, number: usize, rng: &mut Rng) -> Option<Proposal>;

    /// How many trials it can propose at most, if bounded (a grid's size).
    fn capacity(&self, _space: &[(String, Distribution)]) -> Option<usize> {
        None
    }

    /// Refuses a space it cannot sample: the parameter at fault and why (a grid over a
    /// continuous range).
    fn check(&self, _space: &[(String, Distribution)]) -> Result<(), (String, String)> {
        Ok(())
    }
}

/// A pruner's decision on a trial that reported a value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pruning {
    /// Stop the trial now.
    pub prune: bool,
    /// Attributes to store on the trial, whatever the decision (successive halving's
    /// `completed_rung_N`).
    pub system_attrs: Vec<(String, serde_json::Value)>,
}

/// Decides whether a trial should stop, from what it and the others reported.
pub trait Pruner: Send {
    /// Called each time `trial` reports a value (it is already in `trial.intermediate`, and
    /// `trial` is also among `study.trials`).
    fn prune(&mut self, study: &Study<'_>, trial: &Trial) -> Pruning;
}
