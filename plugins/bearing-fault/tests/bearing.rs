//! The bearing-fault plugin end to end: the repository's config trains a 1-D CNN on generated
//! vibration signals and is tested on a shaft speed it never saw; bad held-out values are refused.

use stoker_testing as common;

use common::{Scratch, summary_f64};

fn config() -> String {
    common::workspace()
        .join("configs/bearing_cnn.yaml")
        .display()
        .to_string()
}

fn run(scratch: &Scratch, command: &str, sets: &[&str]) -> common::Run {
    let out = format!("environment.output_dir={}", scratch.path("runs").display());
    let mut args = vec![command, "--set", &out, "--set", "environment.device=cpu"];
    let config = config();
    args.insert(1, &config);
    for set in sets {
        args.extend(["--set", set]);
    }
    scratch.stoker(&args)
}

#[test]
fn the_cnn_recognises_faults_at_an_unseen_speed() {
    let scratch = Scratch::new("bearing");
    let train = run(
        &scratch,
        "train",
        &["data.args.per_condition=6", "trainer.args.max_epochs=15"],
    );
    train.expect_code(0);
    assert!(train.stdout.contains("model CNN1d"), "{}", train.stdout);
    let run_dir = train.run_dir(&scratch.dir);
    // Four balanced classes: chance is 0.25.
    let accuracy = summary_f64(&run_dir, &["test_metrics", "test_accuracy"]);
    assert!(accuracy > 0.6, "test accuracy at 1797 rpm: {accuracy}");
    let matrix = std::fs::read_to_string(run_dir.join("confusion_matrix_test.csv")).unwrap();
    // 1797 rpm only: 4 loads x 3 severities x 6 signals per faulty class, as many healthy.
    let total: u64 = matrix
        .lines()
        .skip(1)
        .flat_map(|l| l.split(',').skip(1).map(|c| c.parse::<u64>().unwrap()))
        .sum();
    assert_eq!(total, 4 * 4 * 3 * 6, "{matrix}");
}

#[test]
fn a_held_out_speed_that_is_not_generated_is_refused() {
    let scratch = Scratch::new("bearing-bad");
    let check = run(&scratch, "check", &["data.args.test_speeds=[1800]"]);
    assert_eq!(check.code, 2, "{}", check.stdout);
    assert!(
        check.stderr.contains("data.args.test_speeds"),
        "{}",
        check.stderr
    );
    assert!(check.stderr.contains("1800"), "{}", check.stderr);
}

#[test]
fn the_spectrogram_model_trains_from_its_config() {
    let scratch = Scratch::new("bearing-spectrogram");
    let (config, train) = train_briefly(&scratch, "bearing_spectrogram.yaml");
    assert!(
        train.stdout.contains("model SpectrogramCNN"),
        "{}",
        train.stdout
    );
    let run_dir = train.run_dir(&scratch.dir);
    let accuracy = summary_f64(&run_dir, &["test_metrics", "test_accuracy"]);
    assert!((0.0..=1.0).contains(&accuracy));
    // An odd frame size is refused before anything runs.
    let check = scratch.stoker(&["check", &config, "--set", "model.args.n_fft=100"]);
    assert_eq!(check.code, 2, "{}", check.stdout);
    assert!(
        check.stderr.contains("model.args.n_fft"),
        "{}",
        check.stderr
    );
}

#[test]
fn the_frequency_consistency_term_is_trained_and_logged() {
    let scratch = Scratch::new("bearing-physics");
    let (_, train) = train_briefly(&scratch, "bearing_cnn_physics.yaml");
    let run_dir = train.run_dir(&scratch.dir);
    let rows = common::csv_rows(&run_dir);
    let epoch = rows
        .iter()
        .find(|r| r.contains_key("train_loss_consistency"))
        .expect("train_loss_consistency is logged");
    let consistency: f64 = epoch["train_loss_consistency"].parse().unwrap();
    let focal: f64 = epoch["train_loss_focal"].parse().unwrap();
    let total: f64 = epoch["train_loss"].parse().unwrap();
    // The penalty is a probability mass times a relative shortfall: in [0, 1].
    assert!((0.0..=1.0).contains(&consistency), "{consistency}");
    assert!((total - (focal + 0.5 * consistency)).abs() < 1e-4 * total.max(1e-3));
}

/// Trains `configs/<file>` for two epochs on few signals; returns the config's path and the run.
fn train_briefly(scratch: &Scratch, file: &str) -> (String, common::Run) {
    let config = common::workspace()
        .join("configs")
        .join(file)
        .display()
        .to_string();
    let out = format!("environment.output_dir={}", scratch.path("runs").display());
    let train = scratch.stoker(&[
        "train",
        &config,
        "--set",
        &out,
        "--set",
        "environment.device=cpu",
        "--set",
        "data.args.per_condition=2",
        "--set",
        "trainer.args.max_epochs=2",
    ]);
    train.expect_code(0);
    (config, train)
}

/// A CNN with batch norm, generated signals without augmentations, SGD: two processes of batch
/// 8 with `sync_batchnorm` against one process of batch 16.
const SYNC: &str = "\
name: sync
environment: {seed: 5, device: cpu, output_dir: out}
data:
  name: BearingSignals
  args: {speeds: [1730, 1750], severities: [1.0], loads: [0, 1], test_speeds: [], per_condition: 4, length: 512, noise: 0.3, batch_size: 8}
model: {name: CNN1d, args: {channels: [8, 16], kernels: [16, 3], strides: [4, 1], n_classes: 4}}
loss: cross_entropy
metrics: [accuracy]
optimizer: {name: sgd, args: {lr: 0.05}}
trainer: {name: Default_trainer, args: {max_steps: 2, num_sanity_val_steps: 0, enable_progress_bar: false}}
";

/// The largest difference between the tensors of two checkpoints, relative to the values.
fn largest_difference(a: &std::path::Path, b: &std::path::Path) -> f64 {
    let mut worst = 0.0f64;
    for name in common::tensor_names(a) {
        if name.starts_with("__stoker") {
            continue;
        }
        let (x, y) = (common::tensor_f32(a, &name), common::tensor_f32(b, &name));
        for (p, q) in x.iter().zip(&y) {
            let scale = f64::from(q.abs()).max(1e-2);
            worst = worst.max(f64::from((p - q).abs()) / scale);
        }
    }
    worst
}

#[test]
fn sync_batchnorm_makes_two_processes_of_batch_b_train_as_one_of_batch_2b() {
    let scratch = Scratch::new("bearing-syncbn");
    let config = scratch.write("sync.yaml", SYNC);
    let config = config.to_str().unwrap();
    let train = |args: &[&str]| {
        let mut all = vec!["train", config];
        all.extend(args);
        let run = scratch.stoker(&all);
        run.expect_code(0);
        run.run_dir(&scratch.dir)
            .join("checkpoints/last.safetensors")
    };
    let one = train(&["--set", "data.args.batch_size=16"]);
    let synced = train(&["--nproc", "2", "--set", "trainer.args.sync_batchnorm=true"]);
    let unsynced = train(&["--nproc", "2"]);
    // Weights and running statistics alike.
    let synced_gap = largest_difference(&synced, &one);
    assert!(synced_gap < 1e-4, "sync_batchnorm: {synced_gap}");
    // Each process's own batch statistics train another model.
    let unsynced_gap = largest_difference(&unsynced, &one);
    assert!(
        unsynced_gap > 1e-3,
        "without sync_batchnorm: {unsynced_gap}"
    );
}
