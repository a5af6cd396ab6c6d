//! The journal against Optuna's replay rules and kill -9.

use std::io::Write;

use stoker::sweep::{Distribution, TrialState};

use super::Journal;
use super::ops;

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("stoker-journal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("study.journal")
}

#[test]
fn trials_get_ids_in_creation_order_and_finished_trials_take_no_more_updates() {
    let path = temp("ids");
    let mut j = Journal::open(&path).unwrap();
    let lr = Distribution::Float {
        low: 1e-5,
        high: 0.1,
        log: true,
        step: None,
    };
    assert_eq!(
        j.append(vec![
            ops::create_study("demo", false),
            ops::create_study("demo", true)
        ])
        .unwrap(),
        vec![true, false]
    );
    j.append(vec![ops::create_trial(0, &[("lr", 0.003, &lr)], &[])])
        .unwrap();
    j.append(vec![
        ops::intermediate(0, 0, 0.9),
        ops::intermediate(0, 1, f64::NAN),
        ops::finish(0, TrialState::Complete, Some(0.25)),
    ])
    .unwrap();
    // Ignored, as Optuna ignores them: an update to a finished trial, one to an unknown trial.
    let late = j
        .append(vec![
            ops::intermediate(0, 2, 0.1),
            ops::intermediate(7, 0, 0.1),
        ])
        .unwrap();
    assert_eq!(late, vec![false, false]);
    j.append(vec![ops::create_trial(
        0,
        &[("lr", 0.05, &lr)],
        &[("grid_id".into(), serde_json::json!(1))],
    )])
    .unwrap();

    let reread = Journal::open(&path).unwrap();
    // (Debug text: a NaN is not equal to itself.)
    assert_eq!(format!("{:?}", reread.replay), format!("{:?}", j.replay));
    let t = &reread.replay.trials;
    assert_eq!(t.len(), 2);
    assert_eq!(
        (t[0].number, t[0].state, t[0].values.clone()),
        (0, TrialState::Complete, Some(vec![0.25]))
    );
    assert!(t[0].intermediate[&1].is_nan());
    assert_eq!(t[0].intermediate.len(), 2);
    assert_eq!((t[1].number, t[1].state), (1, TrialState::Running));
    assert_eq!(t[1].params["lr"].0, 0.05);
    assert_eq!(t[1].system_attrs["grid_id"], 1);
}

#[test]
fn a_line_torn_by_a_crash_is_cut_off_and_the_study_goes_on() {
    let path = temp("torn");
    let mut j = Journal::open(&path).unwrap();
    j.append(vec![ops::create_study("demo", false)]).unwrap();
    let good = std::fs::metadata(&path).unwrap().len();
    // A writer killed in the middle of a line.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(br#"{"op_code":4,"worker_id":"x","study_id":0,"datetime_st"#)
        .unwrap();
    drop(f);
    let mut j = Journal::open(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good);
    j.append(vec![ops::create_trial(0, &[], &[])]).unwrap();
    assert_eq!(Journal::open(&path).unwrap().replay.trials.len(), 1);

    // A torn line another writer appended to: one bad line, last: cut off too.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"{\"op_code\":7,\"tri{\"op_code\":7}\n")
        .unwrap();
    drop(f);
    Journal::open(&path).unwrap();
    // A bad line with lines after it is refused, naming the file.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"not json\n{\"op_code\":1,\"worker_id\":\"x\",\"study_id\":0}\n")
        .unwrap();
    drop(f);
    let error = Journal::open(&path).unwrap_err();
    assert!(
        error.contains("study.journal") && error.contains("not JSON"),
        "{error}"
    );
}

#[test]
fn distributions_are_optunas_json() {
    let int = Distribution::Int {
        low: 16,
        high: 256,
        log: false,
        step: 16,
    };
    let v: serde_json::Value = serde_json::from_str(&ops::distribution_json(&int)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"name": "IntDistribution", "attributes": {"log": false, "step": 16, "low": 16, "high": 256}})
    );
    let float = Distribution::Float {
        low: 1e-5,
        high: 0.1,
        log: true,
        step: None,
    };
    let v: serde_json::Value = serde_json::from_str(&ops::distribution_json(&float)).unwrap();
    assert_eq!(v["attributes"]["step"], serde_json::Value::Null);
}
