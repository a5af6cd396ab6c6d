//! The state of a journal: its lines applied in order with Optuna's rules
//! (`JournalStorageReplayResult` of optuna 5.0): ids are counted over accepted creations, a
//! study name is created once, and an operation on an unknown or finished trial is ignored.

use std::collections::BTreeMap;

use serde_json::Value;
use stoker::sweep::TrialState;

use super::pyjson::as_float;

/// One study of a journal.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStudy {
    /// Its name.
    pub name: String,
    /// Its directions (Optuna's codes: 1 minimize, 2 maximize).
    pub directions: Vec<i64>,
    /// Attributes set by users.
    pub user_attrs: BTreeMap<String, Value>,
    /// Attributes set by samplers and tools.
    pub system_attrs: BTreeMap<String, Value>,
    /// Deleted.
    pub deleted: bool,
}

/// One trial of a journal.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTrial {
    /// Its study's id.
    pub study_id: usize,
    /// Its number within the study.
    pub number: usize,
    /// Its state.
    pub state: TrialState,
    /// Its values, once finished.
    pub values: Option<Vec<f64>>,
    /// Each parameter's internal value and distribution (the JSON text).
    pub params: BTreeMap<String, (f64, String)>,
    /// Reported values by step.
    pub intermediate: BTreeMap<i64, f64>,
    /// Attributes set by users.
    pub user_attrs: BTreeMap<String, Value>,
    /// Attributes set by samplers, pruners and tools.
    pub system_attrs: BTreeMap<String, Value>,
    /// When it started.
    pub datetime_start: Option<String>,
    /// When it finished.
    pub datetime_complete: Option<String>,
}

/// Every study and trial of a journal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replay {
    /// Studies by id.
    pub studies: Vec<StoredStudy>,
    /// Trials by id (global over studies).
    pub trials: Vec<StoredTrial>,
}

/// Optuna's state code.
pub fn state_from_code(code: i64) -> Option<TrialState> {
    Some(match code {
        0 => TrialState::Running,
        1 => TrialState::Complete,
        2 => TrialState::Pruned,
        3 => TrialState::Fail,
        4 => TrialState::Waiting,
        _ => return None,
    })
}

/// Optuna's code of a state.
pub fn state_code(state: TrialState) -> i64 {
    match state {
        TrialState::Running => 0,
        TrialState::Complete => 1,
        TrialState::Pruned => 2,
        TrialState::Fail => 3,
        TrialState::Waiting => 4,
    }
}

fn one_entry(value: &Value) -> Option<(String, Value)> {
    let map = value.as_object()?;
    (map.len() == 1).then(|| {
        let (k, v) = map.iter().next().expect("one entry");
        (k.clone(), v.clone())
    })
}

fn attrs(value: Option<&Value>) -> BTreeMap<String, Value> {
    value
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn text(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(str::to_string)
}

fn floats(value: Option<&Value>) -> Option<Vec<f64>> {
    value?.as_array()?.iter().map(as_float).collect()
}

impl Replay {
    /// The id of the live study named `name`.
    pub fn study_id(&self, name: &str) -> Option<usize> {
        self.studies
            .iter()
            .position(|s| s.name == name && !s.deleted)
    }

    fn live_trial(&mut self, op: &Value) -> Option<&mut StoredTrial> {
        let id = op.get("trial_id")?.as_u64()? as usize;
        self.trials.get_mut(id).filter(|t| !t.state.is_finished())
    }

    /// Applies one operation; whether it was accepted (an ignored one changes nothing).
    pub fn apply(&mut self, op: &Value) -> bool {
        let Some(code) = op.get("op_code").and_then(Value::as_i64) else {
            return false;
        };
        let study = |op: &Value| {
            op.get("study_id")
                .and_then(Value::as_u64)
                .map(|i| i as usize)
        };
        match code {
            0 => {
                let Some(name) = text(op.get("study_name")) else {
                    return false;
                };
                if self.studies.iter().any(|s| s.name == name && !s.deleted) {
                    return false;
                }
                let directions = op
                    .get("directions")
                    .and_then(Value::as_array)
                    .map(|d| d.iter().filter_map(Value::as_i64).collect())
                    .unwrap_or_default();
                self.studies.push(StoredStudy {
                    name,
                    directions,
                    user_attrs: BTreeMap::new(),
                    system_attrs: BTreeMap::new(),
                    deleted: false,
                });
                true
            }
            1 => match study(op).and_then(|id| self.studies.get_mut(id)) {
                Some(s) if !s.deleted => {
                    s.deleted = true;
                    true
                }
                _ => false,
            },
            2 | 3 => {
                let key = if code == 2 {
                    "user_attr"
                } else {
                    "system_attr"
                };
                let (Some(s), Some((k, v))) = (
                    study(op).and_then(|id| self.studies.get_mut(id)),
                    op.get(key).and_then(one_entry),
                ) else {
                    return false;
                };
                if code == 2 {
                    s.user_attrs.insert(k, v);
                } else {
                    s.system_attrs.insert(k, v);
                }
                true
            }
            4 => {
                let Some(study_id) =
                    study(op).filter(|id| self.studies.get(*id).is_some_and(|s| !s.deleted))
                else {
                    return false;
                };
                let number = self
                    .trials
                    .iter()
                    .filter(|t| t.study_id == study_id)
                    .count();
                let state = op
                    .get("state")
                    .and_then(Value::as_i64)
                    .and_then(state_from_code)
                    .unwrap_or(TrialState::Running);
                let values = floats(op.get("values"))
                    .or_else(|| op.get("value").and_then(as_float).map(|v| vec![v]));
                let distributions = attrs(op.get("distributions"));
                let params = attrs(op.get("params"))
                    .into_iter()
                    .filter_map(|(name, v)| {
                        let dist = distributions.get(&name)?.as_str()?.to_string();
                        Some((name, (as_float(&v)?, dist)))
                    })
                    .collect();
                let intermediate = attrs(op.get("intermediate_values"))
                    .into_iter()
                    .filter_map(|(step, v)| Some((step.parse().ok()?, as_float(&v)?)))
                    .collect();
                self.trials.push(StoredTrial {
                    study_id,
                    number,
                    state,
                    values,
                    params,
                    intermediate,
                    user_attrs: attrs(op.get("user_attrs")),
                    system_attrs: attrs(op.get("system_attrs")),
                    datetime_start: text(op.get("datetime_start")),
                    datetime_complete: text(op.get("datetime_complete")),
                });
                true
            }
            5 => {
                let (Some(name), Some(value), Some(dist)) = (
                    text(op.get("param_name")),
                    op.get("param_value_internal").and_then(as_float),
                    text(op.get("distribution")),
                ) else {
                    return false;
                };
                match self.live_trial(op) {
                    Some(t) => {
                        t.params.insert(name, (value, dist));
                        true
                    }
                    None => false,
                }
            }
            6 => {
                let Some(state) = op
                    .get("state")
                    .and_then(Value::as_i64)
                    .and_then(state_from_code)
                else {
                    return false;
                };
                let values = floats(op.get("values"));
                let Some(t) = self.live_trial(op) else {
                    return false;
                };
                if state == TrialState::Running {
                    if t.state == TrialState::Running {
                        return false;
                    }
                    t.datetime_start = text(op.get("datetime_start"));
                }
                if state.is_finished() {
                    t.datetime_complete = text(op.get("datetime_complete"));
                }
                t.state = state;
                if values.is_some() {
                    t.values = values;
                }
                true
            }
            7 => {
                let (Some(step), Some(value)) = (
                    op.get("step").and_then(Value::as_i64),
                    op.get("intermediate_value").and_then(as_float),
                ) else {
                    return false;
                };
                match self.live_trial(op) {
                    Some(t) => {
                        t.intermediate.insert(step, value);
                        true
                    }
                    None => false,
                }
            }
            8 | 9 => {
                let key = if code == 8 {
                    "user_attr"
                } else {
                    "system_attr"
                };
                let Some((k, v)) = op.get(key).and_then(one_entry) else {
                    return false;
                };
                match self.live_trial(op) {
                    Some(t) if code == 8 => {
                        t.user_attrs.insert(k, v);
                        true
                    }
                    Some(t) => {
                        t.system_attrs.insert(k, v);
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        }
    }
}
