//! The batch-size finder (`trainer.args.auto_scale_batch_size`): trials at growing batch sizes
//! until the process's peak memory passes `max_memory_mb`, then training with the largest that
//! fitted, kept in config.yaml.

mod common;

use std::path::Path;

use common::{Scratch, summary_f64, train_ok};

/// Batches of a wide MLP: each sample's hidden layer holds 8192 values (32 KiB), kept with its
/// activation and gradients, so the step's memory grows by over 100 MiB per 1024 samples.
const WIDE: &str = "\
name: wide
environment: {seed: 1, device: cpu, output_dir: out}
data: {name: SyntheticRegression, args: {n_samples: 8192, n_features: 256, val_fraction: 0.25, batch_size: 32}}
model: {name: MLP, args: {sizes: [256, 8192, 1]}}
loss: mse
optimizer: {name: sgd, args: {lr: 0.01}}
trainer: {name: Default_trainer, args: {max_epochs: 1, limit_train_batches: 2, limit_val_batches: 1}}
";

/// Each trial's batch size and peak memory (MiB), and whether it ran, from batch_size_find.csv.
fn trials(run_dir: &Path) -> Vec<(usize, bool, f64)> {
    let text = std::fs::read_to_string(run_dir.join("batch_size_find.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            (
                cells[1].parse().unwrap(),
                cells[2] == "1",
                cells[3].parse().unwrap_or(f64::NAN),
            )
        })
        .collect()
}

fn scale(mode: &str, max_mb: f64) -> String {
    format!(
        "trainer.args.auto_scale_batch_size={{mode: {mode}, init_val: 256, steps_per_trial: 1, max_memory_mb: {max_mb}}}"
    )
}

#[test]
fn the_finder_keeps_the_largest_batch_under_the_memory_limit() {
    // Peaks that follow the memory in use (CI once measured 1024 and 2048 only 56 MiB apart).
    let scratch = Scratch::new("batch-size-find").with_memory_returned();
    // With room for everything, power doubles from 256 up to the training split (6144).
    let (free, _) = train_ok(&scratch, WIDE, &[&scale("power", 1.0e6)]);
    let all = trials(&free);
    let sizes: Vec<usize> = all.iter().map(|t| t.0).collect();
    assert_eq!(sizes, [256, 512, 1024, 2048, 4096, 6144]);
    assert!(all.iter().all(|t| t.1), "all ran: {all:?}");
    assert_eq!(summary_f64(&free, &["batch_size"]), 6144.0);
    let peak = |size: usize| all.iter().find(|t| t.0 == size).unwrap().2;
    let gap = peak(2048) - peak(1024);
    assert!(
        gap > 60.0,
        "a batch of 2048 needs more memory than one of 1024: {all:?}"
    );

    // A limit half way from 1024's peak to 2048's, the widest margin on both sides (peaks
    // move by about 20 MiB from run to run): power stops at 2048 and trains with 1024.
    let limit = peak(1024) + gap / 2.0;
    let (power, run) = train_ok(&scratch, WIDE, &[&scale("power", limit)]);
    let sizes: Vec<usize> = trials(&power).iter().map(|t| t.0).collect();
    assert_eq!(sizes, [256, 512, 1024, 2048], "{}", run.stdout);
    let resolved = std::fs::read_to_string(power.join("config.yaml")).unwrap();
    let saved: serde_yaml::Value = serde_yaml::from_str(&resolved).unwrap();
    assert_eq!(saved["data"]["args"]["batch_size"].as_u64(), Some(1024));
    assert!(saved["trainer"]["args"]["auto_scale_batch_size"].is_null());
    assert_eq!(summary_f64(&power, &["batch_size"]), 1024.0);

    // binsearch goes on between 1024 (fits) and 2048 (does not).
    let (bisected, _) = train_ok(&scratch, WIDE, &[&scale("binsearch", limit)]);
    let found = summary_f64(&bisected, &["batch_size"]) as usize;
    assert!((1024..2048).contains(&found), "binsearch found {found}");
    assert!(trials(&bisected).len() > 4, "it bisected");
}

#[test]
fn a_limit_below_the_first_trial_is_a_clear_error() {
    let scratch = Scratch::new("batch-size-too-small");
    let config = scratch.write("exp.yaml", WIDE);
    let run = scratch.stoker(&[
        "train",
        config.to_str().unwrap(),
        "--set",
        &scale("power", 1.0),
    ]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("already batch size 256 fails"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("max_memory_mb"), "{}", run.stderr);
}
