//! The sweep's study in its journal: created or found, its trials as samplers and pruners see
//! them, and the trials a sweep that died left running.

use std::collections::BTreeMap;

use serde_json::Value;
use stoker::sweep::{Distribution, Trial, TrialState};

use crate::journal::replay::Replay;
use crate::journal::{Journal, ops};

/// Why a trial failed, when the sweep (not the trial) is the reason: such a trial is run again.
pub const FAIL_REASON: &str = "stoker:fail_reason";
/// Set on a trial that re-runs a failed one (Optuna's `RetryFailedTrialCallback` key).
pub const FAILED_TRIAL: &str = "failed_trial";
/// The reasons that make a failed trial run again.
pub const RETRIED: [&str; 2] = ["orphaned", "interrupted"];

/// Every trial of study `study_id`, with the parameters of `space`.
pub fn trials(replay: &Replay, study_id: usize, space: &[(String, Distribution)]) -> Vec<Trial> {
    replay
        .trials
        .iter()
        .filter(|t| t.study_id == study_id)
        .map(|t| Trial {
            number: t.number,
            state: t.state,
            value: t.values.as_ref().and_then(|v| v.first().copied()),
            params: t
                .params
                .iter()
                .filter(|(name, _)| space.iter().any(|(n, _)| n == *name))
                .map(|(name, (value, _))| (name.clone(), *value))
                .collect(),
            intermediate: t.intermediate.clone(),
            system_attrs: t.system_attrs.clone(),
        })
        .collect()
}

/// The global id of trial `number` of the study.
pub fn trial_id(replay: &Replay, study_id: usize, number: usize) -> Option<usize> {
    replay
        .trials
        .iter()
        .position(|t| t.study_id == study_id && t.number == number)
}

/// Whether a failed trial failed because of the sweep (and is to run again).
pub fn retried(trial: &Trial) -> bool {
    trial.state == TrialState::Fail
        && trial
            .system_attrs
            .get(FAIL_REASON)
            .and_then(Value::as_str)
            .is_some_and(|r| RETRIED.contains(&r))
}

/// The trials that count against the study's budget: all but those failed because of the sweep.
pub fn counted(trials: &[Trial]) -> usize {
    trials.iter().filter(|t| !retried(t)).count()
}

/// A trial to run again: the failed trial's number, its parameters and its sampler attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// The failed trial.
    pub failed: usize,
    /// Its parameters.
    pub params: BTreeMap<String, f64>,
    /// Its grid attributes (`grid_id`, `search_space`), if any.
    pub system_attrs: Vec<(String, Value)>,
}

/// Marks the study's running (or waiting) trials failed (`orphaned`: the sweep that ran them
/// died, which the coordinator lock proves), and returns every trial failed because of the
/// sweep that has not been run again yet.
pub fn recover(
    journal: &mut Journal,
    study_id: usize,
    space: &[(String, Distribution)],
) -> Result<Vec<Retry>, String> {
    let left: Vec<usize> = trials(&journal.replay, study_id, space)
        .iter()
        .filter(|t| matches!(t.state, TrialState::Running | TrialState::Waiting))
        .map(|t| t.number)
        .collect();
    for number in &left {
        let id = trial_id(&journal.replay, study_id, *number).expect("a trial of the study");
        journal.append(vec![
            ops::trial_system_attr(id, FAIL_REASON, Value::from("orphaned")),
            ops::finish(id, TrialState::Fail, None),
        ])?;
    }
    let all = trials(&journal.replay, study_id, space);
    let rerun: Vec<u64> = all
        .iter()
        .filter_map(|t| t.system_attrs.get(FAILED_TRIAL)?.as_u64())
        .collect();
    Ok(all
        .iter()
        .filter(|t| retried(t) && !rerun.contains(&(t.number as u64)))
        .filter(|t| space.iter().all(|(n, _)| t.params.contains_key(n)))
        .map(|t| Retry {
            failed: t.number,
            params: t.params.clone(),
            system_attrs: ["grid_id", "search_space"]
                .iter()
                .filter_map(|k| Some((k.to_string(), t.system_attrs.get(*k)?.clone())))
                .collect(),
        })
        .collect())
}

/// Refuses to continue a study whose trials were sampled from another space: a parameter of
/// the sweep file stored with another distribution.
pub fn check_space(
    replay: &Replay,
    study_id: usize,
    space: &[(String, Distribution)],
) -> Result<(), String> {
    for (name, dist) in space {
        let ours = ops::distribution_json(dist);
        let stored = replay
            .trials
            .iter()
            .filter(|t| t.study_id == study_id)
            .find_map(|t| t.params.get(name).map(|(_, d)| d.clone()));
        if let Some(stored) = stored
            && stored != ours
        {
            return Err(format!(
                "`{name}` was sampled from {stored} in this study and is now {ours}"
            ));
        }
    }
    Ok(())
}
