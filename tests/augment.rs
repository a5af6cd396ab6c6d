//! Augmentations end to end: they change training batches only, and a resumed run augments
//! exactly as the uninterrupted one.

mod common;

use std::path::Path;

use common::{Run, SMALL, Scratch, csv_rows, train_ok};

fn with(augmentations: &str, extra: &str) -> String {
    format!("{SMALL}{extra}augmentations: {augmentations}\n")
}

/// Resumes `scratch`'s `exp.yaml` from `checkpoint` (with `extra` arguments) and returns the run's
/// `metrics.csv` afterwards.
fn resume(scratch: &Scratch, run_dir: &Path, checkpoint: &Path, extra: &[&str]) -> String {
    let config = scratch.path("exp.yaml");
    let mut args = vec!["train", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend(["--resume", checkpoint.to_str().unwrap()]);
    scratch.stoker(&args).expect_code(0);
    std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap()
}

/// `stoker check` on `config`, which must refuse it (exit 2) and name `augmentations`.
fn refused(scratch: &Scratch, config: &Path) -> Run {
    let check = scratch.stoker(&["check", config.to_str().unwrap()]);
    assert_eq!(check.code, 2, "{}", check.stdout);
    assert!(check.stderr.contains("augmentations"), "{}", check.stderr);
    check
}

#[test]
fn augmentations_change_training_batches_only() {
    // With a learning rate of 1e-30 no float32 weight changes: validation must not notice the
    // noise, training must.
    let frozen = ["optimizer.args.lr=1.0e-30"];
    let plain_dir = Scratch::new("augment-plain");
    let (plain, _) = train_ok(&plain_dir, &with("[]", ""), &frozen);
    let noisy_dir = Scratch::new("augment-noisy");
    let (noisy, run) = train_ok(
        &noisy_dir,
        &with("[{name: gaussian_noise, args: {std: 3.0}}]", ""),
        &frozen,
    );
    let config = std::fs::read_to_string(noisy.join("config.yaml")).unwrap();
    assert!(config.contains("gaussian_noise"), "{config}");
    let epoch_rows = |dir| {
        csv_rows(dir)
            .into_iter()
            .filter(|r| r.contains_key("val_loss"))
            .collect::<Vec<_>>()
    };
    let (a, b) = (epoch_rows(&plain), epoch_rows(&noisy));
    assert_eq!(a.len(), 3, "{}", run.stdout);
    for (p, n) in a.iter().zip(&b) {
        assert_eq!(p["val_loss"], n["val_loss"]);
        assert_ne!(p["train_loss"], n["train_loss"]);
    }
}

#[test]
fn a_resumed_run_augments_like_the_uninterrupted_one() {
    let scratch = Scratch::new("augment-resume");
    let text = with(
        "[{name: time_shift, args: {max_shift: 2}}, {name: amplitude_scale}, {name: gaussian_noise, args: {std: 0.1}}, \
          {name: rand_augment, args: {n: 2, magnitude: 0.8, patch_size: 2}}, {name: patch_shuffle, args: {patch_size: 2}}]",
        "callbacks: [{name: ModelCheckpoint, args: {every_n_train_steps: 5, save_top_k: -1}}]\n",
    );
    let (run_dir, _) = train_ok(&scratch, &text, &[]);
    let uninterrupted = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    let checkpoint = run_dir.join("checkpoints/epoch=1-step=20.safetensors");
    assert!(checkpoint.is_file());
    let resumed = resume(&scratch, &run_dir, &checkpoint, &[]);
    assert_eq!(resumed, uninterrupted);
}

#[test]
fn an_augmentation_of_a_missing_tensor_is_refused() {
    let scratch = Scratch::new("augment-bad");
    let config = scratch.write(
        "exp.yaml",
        &with(
            "[{name: time_masking, args: {tensor: z, max_width: 2}}]",
            "",
        ),
    );
    let check = refused(&scratch, &config);
    assert!(check.stderr.contains("no tensor `z`"), "{}", check.stderr);
}

#[test]
fn mixup_and_cutmix_train_a_classifier_and_resume_exactly() {
    // Labels become class probabilities on mixed batches: cross_entropy takes them, accuracy
    // scores the dominant class, validation sees plain labels.
    let scratch = Scratch::new("augment-mix");
    let text = "name: mix\nenvironment: {seed: 3, device: cpu, output_dir: out}\n\
         data: {name: SyntheticClassification, args: {n_samples: 900, n_classes: 3, batch_size: 50}}\n\
         model: {name: MLP, args: {sizes: [8, 32, 3]}}\nloss: cross_entropy\nmetrics: [accuracy]\n\
         optimizer: {name: adamw, args: {lr: 0.01}}\ntrainer: {name: Default_trainer, args: {max_epochs: 5}}\n\
         callbacks: [{name: ModelCheckpoint, args: {every_n_train_steps: 10, save_top_k: -1}}]\n\
         augmentations:\n\
         \x20 - {name: mixup, args: {classes: 3, alpha: 0.4, probability: 0.5}}\n\
         \x20 - {name: cutmix, args: {classes: 3, probability: 0.5}}\n";
    let (run_dir, run) = train_ok(&scratch, text, &[]);
    let rows = csv_rows(&run_dir);
    let last = rows
        .iter()
        .rev()
        .find(|r| r.contains_key("val_accuracy"))
        .unwrap();
    let accuracy: f64 = last["val_accuracy"].parse().unwrap();
    assert!(accuracy > 0.85, "val_accuracy {accuracy}\n{}", run.stdout);
    let uninterrupted = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    let checkpoint = run_dir.join("checkpoints/epoch=1-step=20.safetensors");
    assert!(checkpoint.is_file());
    let resumed = resume(&scratch, &run_dir, &checkpoint, &[]);
    assert_eq!(resumed, uninterrupted);
}

#[test]
fn mixup_refuses_a_regression_target() {
    let scratch = Scratch::new("augment-mix-bad");
    let config = scratch.write("exp.yaml", &with("[{name: mixup, args: {classes: 3}}]", ""));
    let check = refused(&scratch, &config);
    assert!(
        check.stderr.contains("one integer label per sample"),
        "{}",
        check.stderr
    );
}

#[test]
fn worker_threads_prepare_the_same_batches_as_the_loop() {
    // Two workers, each two batches ahead, take and augment the batches; the run must be the
    // same run, and a resume with another number of workers (no config change to allow: it
    // cannot change the run) must rejoin it exactly.
    let text = with(
        "[{name: time_shift, args: {max_shift: 2}}, {name: amplitude_scale}, {name: gaussian_noise, args: {std: 0.1}}, \
          {name: rand_augment, args: {n: 2, magnitude: 0.8, patch_size: 2}}, {name: patch_shuffle, args: {patch_size: 2}}]",
        "callbacks: [{name: ModelCheckpoint, args: {every_n_train_steps: 5, save_top_k: -1}}]\n",
    );
    let inline_dir = Scratch::new("workers-inline");
    let (inline, _) = train_ok(&inline_dir, &text, &[]);
    let scratch = Scratch::new("workers");
    let (run_dir, _) = train_ok(&scratch, &text, &["trainer.args.num_workers=2"]);
    let expected = std::fs::read_to_string(inline.join("metrics.csv")).unwrap();
    let with_workers = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    assert_eq!(with_workers, expected);
    let checkpoint = run_dir.join("checkpoints/epoch=1-step=20.safetensors");
    let resumed = resume(
        &scratch,
        &run_dir,
        &checkpoint,
        &[
            "--set",
            "trainer.args.num_workers=3",
            "--set",
            "trainer.args.prefetch_factor=1",
        ],
    );
    assert_eq!(resumed, expected);
}
