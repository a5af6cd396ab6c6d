//! The loop in-process: stop requests and the points where checkpoints are written.

mod support;

use stoker_core::checkpoint::{self, CheckpointState};
use stoker_trainer::DefaultStep;
use support::{Ramp, Recorder, args, fit, run_info};

/// A stop asked for at step 3 ends the epoch there; with `min_epochs: 2` training goes on to
/// the end of epoch 2 (the second) and stops before the third.
#[test]
fn a_stop_request_ends_training_once_min_epochs_are_done() {
    let run = run_info("stop");
    let stop_at_3 = || Recorder {
        stop_at_step: Some(3),
        ..Recorder::default()
    };
    let (report, records) = fit(
        &run,
        &args("max_epochs: 10\nenable_checkpointing: false"),
        Ramp::new(10, 1, 0),
        0.5,
        DefaultStep,
        stop_at_3(),
        None,
    );
    assert_eq!((report.epochs, report.global_step), (1, 3));
    assert_eq!(report.stopped_early.as_deref(), Some("the recorder asked"));
    assert_eq!(records.at("epoch_end"), [(0, 3)]);

    let (report, _) = fit(
        &run,
        &args("max_epochs: 10\nmin_epochs: 2\nenable_checkpointing: false"),
        Ramp::new(10, 1, 0),
        0.5,
        DefaultStep,
        stop_at_3(),
        None,
    );
    assert_eq!((report.epochs, report.global_step), (2, 20));
}

/// A checkpoint asked for after a micro-batch inside an accumulation group is written at the
/// next optimizer step, where the whole state is consistent: its position is that step's.
#[test]
fn a_checkpoint_asked_for_mid_accumulation_is_written_at_the_next_step() {
    let run = run_info("save-point");
    let path = run.dir.join("checkpoints").join("asked.safetensors");
    let (report, records) = fit(
        &run,
        &args("max_epochs: 1\naccumulate_grad_batches: 2\nenable_checkpointing: false"),
        Ramp::new(10, 1, 0),
        0.5,
        DefaultStep,
        Recorder {
            save_at: Some((0, 2, path.clone())),
            ..Recorder::default()
        },
        None,
    );
    assert_eq!(report.last_checkpoint.as_ref(), Some(&path));
    let loaded = checkpoint::load(&path).unwrap();
    let state = CheckpointState::from_checkpoint(&path, &loaded).unwrap();
    assert_eq!((state.epoch, state.batch, state.global_step), (0, 4, 2));
    // The weights are those after step 2, the second the recorder saw.
    let resume = state.resume.unwrap();
    let seen_then = records
        .events
        .lock()
        .unwrap()
        .iter()
        .position(|e| (e.0, e.2) == ("step", 4))
        .unwrap()
        + 1;
    assert_eq!(resume.callbacks[0].1, serde_json::json!(seen_then));
}

/// The implicit `ModelCheckpoint` (no configured callback writes checkpoints) keeps the best
/// epoch by `val_loss` and `last.safetensors`, at every epoch's end.
#[test]
fn the_implicit_checkpoint_is_added_when_none_is_configured() {
    let run = run_info("implicit");
    let (report, _) = fit(
        &run,
        &args("max_epochs: 2"),
        Ramp::new(10, 2, 4),
        0.5,
        DefaultStep,
        Recorder::default(),
        None,
    );
    let dir = run.dir.join("checkpoints");
    assert!(dir.join("last.safetensors").is_file());
    assert_eq!(report.monitor.as_deref(), Some("val_loss"));
    assert_eq!(
        report.best_checkpoint,
        Some(dir.join("epoch=1-step=10.safetensors")),
        "the loss falls as w approaches 3: the last epoch is the best"
    );
}

/// `max_time` is a `Timer` the loop adds: a budget already spent when the fit starts (a resumed
/// run that stopped on it) trains nothing more, and the reason is `max_time reached`.
#[test]
fn a_spent_time_budget_stops_before_the_first_step() {
    let run = run_info("max-time");
    let (report, records) = fit(
        &run,
        &args("max_epochs: 3\nmax_time: 0\nenable_checkpointing: false"),
        Ramp::new(10, 1, 0),
        0.5,
        DefaultStep,
        Recorder::default(),
        None,
    );
    assert_eq!((report.epochs, report.global_step), (0, 0));
    assert_eq!(report.stopped_early.as_deref(), Some("max_time reached"));
    assert!(records.at("step").is_empty());
}
