//! The journal's operations as Optuna 5.0 writes them (`storages/journal/_storage.py`), and the
//! JSON text of a distribution (`distributions.distribution_to_json`).

use serde_json::{Value, json};
use stoker::sweep::{Distribution, TrialState};

use super::pyjson::{float, now};
use super::replay::state_code;

/// Optuna's `distribution_to_json`: `{"name": "FloatDistribution", "attributes": {...}}`.
pub fn distribution_json(dist: &Distribution) -> String {
    let value = match dist {
        Distribution::Float {
            low,
            high,
            log,
            step,
        } => {
            json!({"name": "FloatDistribution", "attributes": {"step": step, "low": low, "high": high, "log": log}})
        }
        Distribution::Int {
            low,
            high,
            log,
            step,
        } => {
            json!({"name": "IntDistribution", "attributes": {"log": log, "step": step, "low": low, "high": high}})
        }
        Distribution::Categorical { choices } => {
            json!({"name": "CategoricalDistribution", "attributes": {"choices": choices}})
        }
    };
    value.to_string()
}

/// Creates the study `name` (op 0); `maximize` picks the direction.
pub fn create_study(name: &str, maximize: bool) -> Value {
    json!({"op_code": 0, "study_name": name, "directions": [if maximize { 2 } else { 1 }]})
}

/// Sets a study's user attribute (op 2).
pub fn study_user_attr(study_id: usize, key: &str, value: Value) -> Value {
    json!({"op_code": 2, "study_id": study_id, "user_attr": {key: value}})
}

/// Sets a study's system attribute (op 3).
pub fn study_system_attr(study_id: usize, key: &str, value: Value) -> Value {
    json!({"op_code": 3, "study_id": study_id, "system_attr": {key: value}})
}

/// Creates a running trial with its parameters and system attributes in one line (op 4 with
/// Optuna's template keys), so that no trial exists without its parameters.
pub fn create_trial(
    study_id: usize,
    params: &[(&str, f64, &Distribution)],
    system_attrs: &[(String, Value)],
) -> Value {
    let distributions: serde_json::Map<String, Value> = params
        .iter()
        .map(|(name, _, dist)| (name.to_string(), Value::String(distribution_json(dist))))
        .collect();
    let values: serde_json::Map<String, Value> = params
        .iter()
        .map(|(name, value, _)| (name.to_string(), float(*value)))
        .collect();
    let attrs: serde_json::Map<String, Value> = system_attrs.iter().cloned().collect();
    json!({
        "op_code": 4,
        "study_id": study_id,
        "datetime_start": now(),
        "distributions": distributions,
        "params": values,
        "system_attrs": attrs,
    })
}

/// Reports a trial's value at a step (op 7).
pub fn intermediate(trial_id: usize, step: i64, value: f64) -> Value {
    json!({"op_code": 7, "trial_id": trial_id, "step": step, "intermediate_value": float(value)})
}

/// Sets a trial's user attribute (op 8).
pub fn trial_user_attr(trial_id: usize, key: &str, value: Value) -> Value {
    json!({"op_code": 8, "trial_id": trial_id, "user_attr": {key: value}})
}

/// Sets a trial's system attribute (op 9).
pub fn trial_system_attr(trial_id: usize, key: &str, value: Value) -> Value {
    json!({"op_code": 9, "trial_id": trial_id, "system_attr": {key: value}})
}

/// Ends a trial (op 6): `value` for a complete or pruned one, none for a failed one.
pub fn finish(trial_id: usize, state: TrialState, value: Option<f64>) -> Value {
    json!({
        "op_code": 6,
        "trial_id": trial_id,
        "state": state_code(state),
        "values": value.map(|v| vec![float(v)]),
        "datetime_complete": now(),
    })
}
