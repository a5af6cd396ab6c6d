//! The loop in-process: gradient accumulation, the schedule's stepping, and when validation runs.

mod support;

use stoker_trainer::DefaultStep;
use support::{Ramp, Recorder, args, fit, run_info};

/// Ten samples in batches of one, three micro-batches per optimizer step: steps after batches
/// 3, 6, 9 and 10 of each epoch. Each micro-batch's loss is divided by 3, so a step moves the
/// weight by lr * sum(2 (w - 3) x^2) / 3 over its micro-batches, including the short last one.
#[test]
fn accumulation_divides_the_loss_and_steps_at_its_boundaries() {
    let run = run_info("accumulation");
    let data = Ramp::new(10, 1, 0);
    let xs: Vec<f64> = (0..10).map(|i| data.x(i)).collect();
    let (report, records) = fit(
        &run,
        &args("max_epochs: 2\naccumulate_grad_batches: 3\nenable_checkpointing: false"),
        data,
        0.5,
        DefaultStep,
        Recorder::default(),
        None,
    );
    assert_eq!(report.global_step, 8);
    assert_eq!(report.epochs, 2);
    let steps: Vec<(usize, usize)> = records.at("step");
    assert_eq!(
        steps,
        [
            (0, 3),
            (0, 6),
            (0, 9),
            (0, 10),
            (1, 3),
            (1, 6),
            (1, 9),
            (1, 10)
        ]
    );
    assert_eq!(records.at("micro_batch").len(), 12);
    // The schedule hears of every optimizer step and of every epoch's end.
    assert_eq!(*records.schedule.lock().unwrap(), (8, 2));

    let mut w = 0.5f64;
    let mut expected = Vec::new();
    for _epoch in 0..2 {
        for group in [0..3, 3..6, 6..9, 9..10] {
            let grad: f64 = xs[group]
                .iter()
                .map(|x| 2.0 * (w - 3.0) * x * x / 3.0)
                .sum();
            w -= 0.1 * grad;
            expected.push(w);
        }
    }
    let weights = records.weights.lock().unwrap().clone();
    assert_eq!(weights.len(), expected.len());
    for (got, want) in weights.iter().zip(&expected) {
        assert!((got - want).abs() < 1e-6, "{weights:?} vs {expected:?}");
    }
}

/// `check_val_every_n_epoch: 2` with `val_check_interval: 0.5` validates in the middle and at
/// the end of epochs 1 and 3 only.
#[test]
fn validation_runs_every_n_epochs_at_fractions_of_them() {
    let run = run_info("val-every-n");
    let (_, records) = fit(
        &run,
        &args(
            "max_epochs: 4\ncheck_val_every_n_epoch: 2\nval_check_interval: 0.5\nenable_checkpointing: false",
        ),
        Ramp::new(10, 1, 4),
        0.5,
        DefaultStep,
        Recorder::default(),
        None,
    );
    assert_eq!(records.at("validation"), [(1, 5), (1, 10), (3, 5), (3, 10)]);
    // Each validation is logged at its step; the epoch's end logs after its training metrics.
    let val: Vec<usize> = records.logged("val_loss").iter().map(|(s, _)| *s).collect();
    assert_eq!(val, [15, 20, 35, 40]);
}

/// With `check_val_every_n_epoch: null`, validation runs every `val_check_interval` training
/// batches counted across epochs, whatever the epoch.
#[test]
fn validation_runs_every_n_batches_across_epochs() {
    let run = run_info("val-interval");
    let (_, records) = fit(
        &run,
        &args(
            "max_epochs: 3\ncheck_val_every_n_epoch: null\nval_check_interval: 4\nenable_checkpointing: false",
        ),
        Ramp::new(10, 1, 4),
        0.5,
        DefaultStep,
        Recorder::default(),
        None,
    );
    assert_eq!(
        records.at("validation"),
        [(0, 4), (0, 8), (1, 2), (1, 6), (1, 10), (2, 4), (2, 8)]
    );
}
