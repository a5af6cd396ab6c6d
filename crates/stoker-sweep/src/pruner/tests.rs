//! The pruners against Optuna's decisions on recorded learning curves
//! (`fixtures/pruner_decisions.json`, written by `fixtures/make_pruner_decisions.py` with optuna
//! 5.0.0), and the hand-worked cases of Optuna's rules.

use std::collections::BTreeMap;

use stoker::registry::parse_nested;
use stoker::spec::PrunerSpec;
use stoker::sweep::{Direction, Pruner, Study, Trial, TrialState};

use super::percentile::nan_percentile;

fn pruner(name: &str, args: serde_json::Value) -> Box<dyn Pruner> {
    let args: serde_yaml::Value = serde_yaml::to_value(&args).unwrap();
    let parsed = parse_nested(stoker::registry::Kind::Pruner, name, Some(args), "pruner").unwrap();
    let spec: Box<dyn PrunerSpec> = stoker::registry::SpecKind::from_any(parsed.spec).unwrap();
    spec.build().unwrap()
}

/// Runs `curves` one trial after the other through `pruner`; the epoch each was pruned at.
fn replay(
    pruner: &mut dyn Pruner,
    direction: Direction,
    curves: &[Vec<Option<f64>>],
) -> Vec<Option<i64>> {
    let space = Vec::new();
    let mut trials: Vec<Trial> = Vec::new();
    let mut outcomes = Vec::new();
    for (number, curve) in curves.iter().enumerate() {
        trials.push(Trial {
            number,
            state: TrialState::Running,
            value: None,
            params: BTreeMap::new(),
            intermediate: BTreeMap::new(),
            system_attrs: BTreeMap::new(),
        });
        let mut pruned_at = None;
        for (epoch, value) in curve.iter().enumerate() {
            let Some(value) = value else { continue };
            trials[number].intermediate.insert(epoch as i64, *value);
            let trial = trials[number].clone();
            let decision = pruner.prune(
                &Study {
                    direction,
                    space: &space,
                    trials: &trials,
                },
                &trial,
            );
            for (key, value) in decision.system_attrs {
                trials[number].system_attrs.insert(key, value);
            }
            if decision.prune {
                pruned_at = Some(epoch as i64);
                break;
            }
        }
        let t = &mut trials[number];
        match pruned_at {
            Some(_) => t.state = TrialState::Pruned,
            None => {
                t.state = TrialState::Complete;
                t.value = curve.iter().rev().find_map(|v| *v);
            }
        }
        outcomes.push(pruned_at);
    }
    outcomes
}

#[test]
fn decide_as_optunas_pruners_on_recorded_curves() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../../fixtures/pruner_decisions.json")).unwrap();
    assert_eq!(fixture["optuna"], "5.0.0");
    let curves: Vec<Vec<Option<f64>>> = fixture["curves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c.as_array()
                .unwrap()
                .iter()
                .map(|v| match v {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) if s == "nan" => Some(f64::NAN),
                    v => Some(v.as_f64().unwrap()),
                })
                .collect()
        })
        .collect();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 11);
    for case in cases {
        let direction = match case["direction"].as_str().unwrap() {
            "minimize" => Direction::Minimize,
            _ => Direction::Maximize,
        };
        // Optuna's steps are stoker's epochs.
        let args = case["args"]
            .to_string()
            .replace("n_warmup_steps", "n_warmup_epochs")
            .replace("interval_steps", "interval_epochs");
        let mut pruner = pruner(
            case["pruner"].as_str().unwrap(),
            serde_json::from_str(&args).unwrap(),
        );
        let expected: Vec<Option<i64>> = case["pruned_at"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64())
            .collect();
        assert_eq!(
            replay(pruner.as_mut(), direction, &curves),
            expected,
            "{} {} {}",
            case["pruner"],
            case["args"],
            case["direction"]
        );
    }
}

#[test]
fn the_percentile_is_numpys_linear_one_with_its_rounding() {
    // numpy.percentile([0.6, 0.7], 50) is 0.6499999999999999: the value is taken from the nearer
    // end, so a best value of 0.65 is worse than this median.
    assert_eq!(nan_percentile(&[0.6, 0.7], 50.0), Some(0.6499999999999999));
    assert_eq!(nan_percentile(&[1.0, f64::NAN, 3.0, 2.0], 25.0), Some(1.5));
    assert_eq!(nan_percentile(&[f64::NAN], 50.0), None);
    assert_eq!(nan_percentile(&[4.0], 90.0), Some(4.0));
}

#[test]
fn hand_worked_median_cases() {
    // Complete A = (1.0, 0.8, 0.6) and B = (1.2, 1.0, 0.7); Median(n_startup 2, warm-up 1).
    let curves = |last: Vec<Option<f64>>| {
        vec![
            vec![Some(1.0), Some(0.8), Some(0.6)],
            vec![Some(1.2), Some(1.0), Some(0.7)],
            last,
        ]
    };
    let median = || {
        pruner(
            "median",
            serde_json::json!({"n_startup_trials": 2, "n_warmup_epochs": 1}),
        )
    };
    // 0.95 > median(0.8, 1.0) = 0.9 at epoch 1.
    let out = replay(
        median().as_mut(),
        Direction::Minimize,
        &curves(vec![Some(2.0), Some(0.95)]),
    );
    assert_eq!(out, vec![None, None, Some(1)]);
    // 0.85 stays, then 0.65 > 0.6499999999999999 at epoch 2.
    let out = replay(
        median().as_mut(),
        Direction::Minimize,
        &curves(vec![Some(2.0), Some(0.85), Some(0.65)]),
    );
    assert_eq!(out, vec![None, None, Some(2)]);
}
