//! Every `Default_trainer` argument, each with a test showing its effect.

mod common;

use common::{Scratch, csv_rows, npz, summary, summary_f64, tensor_f32, tensor_names, train_ok};

/// 512 samples: 410 train (13 batches of 32), 102 val (4 batches).
const BASE: &str = "\
name: args
environment: {seed: 11, device: cpu, output_dir: out}
data: {name: SyntheticRegression, args: {n_samples: 512, n_features: 4, batch_size: 32}}
model: {name: MLP, args: {sizes: [4, 16, 1]}}
loss: mse
optimizer: {name: adam, args: {lr: 0.01}}
trainer: {name: Default_trainer, args: {max_epochs: 3}}
";

fn count(rows: &[std::collections::BTreeMap<String, String>], column: &str) -> usize {
    rows.iter().filter(|r| r.contains_key(column)).count()
}

#[test]
fn max_epochs_min_epochs_and_early_stopping() {
    let scratch = Scratch::new("min-epochs");
    let stop_at_once = format!(
        "{BASE}callbacks: [{{name: EarlyStopping, args: {{stopping_threshold: 1.0e9}}}}]\n"
    )
    .replace("max_epochs: 3", "max_epochs: 10");
    let (dir, _) = train_ok(&scratch, &stop_at_once, &[]);
    assert_eq!(summary(&dir)["epochs"], 1);
    assert!(
        summary(&dir)["stopped_early"]
            .as_str()
            .unwrap()
            .contains("stopping_threshold")
    );
    let (dir, run) = train_ok(&scratch, &stop_at_once, &["trainer.args.min_epochs=3"]);
    assert_eq!(summary(&dir)["epochs"], 3, "{}", run.stdout);
    assert!(
        run.stdout.contains("but min_epochs is 3: training goes on"),
        "{}",
        run.stdout
    );
}

#[test]
fn max_steps_and_max_time_end_training() {
    let scratch = Scratch::new("max-steps");
    let (dir, _) = train_ok(
        &scratch,
        BASE,
        &["trainer.args.max_steps=20", "trainer.args.max_epochs=null"],
    );
    assert_eq!(summary(&dir)["global_step"], 20);
    assert_eq!(
        summary(&dir)["epochs"],
        2,
        "13 steps, then 7 of the second epoch"
    );
    assert!(
        summary(&dir)["stopped_early"].is_null(),
        "max_steps is the plan, not an early stop"
    );

    let started = std::time::Instant::now();
    let (dir, _) = train_ok(
        &scratch,
        BASE,
        &["trainer.args.max_time=1", "trainer.args.max_epochs=100000"],
    );
    assert!(started.elapsed().as_secs_f64() < 20.0);
    assert!(summary_f64(&dir, &["epochs"]) < 100000.0);
    assert!(
        summary(&dir)["stopped_early"]
            .as_str()
            .unwrap()
            .contains("max_time")
    );
}

#[test]
fn gradient_accumulation_steps_the_optimizer_and_schedule_per_accumulated_batch() {
    let scratch = Scratch::new("accumulate");
    // 13 batches in groups of 4: 4 optimizer steps per epoch (the last group has one batch).
    let config = format!(
        "{BASE}scheduler: {{name: cosine, args: {{interval: step}}}}\ncallbacks: [{{name: LearningRateMonitor, args: {{logging_interval: step}}}}]\n"
    );
    let (dir, _) = train_ok(
        &scratch,
        &config,
        &[
            "trainer.args.accumulate_grad_batches=4",
            "trainer.args.log_every_n_steps=1",
        ],
    );
    assert_eq!(summary(&dir)["global_step"], 12);
    let rows = csv_rows(&dir);
    // The rate logged at step s (as Lightning: the steps taken so far) is the one the next
    // optimizer step uses: cosine over 12 steps at t = s.
    for row in rows.iter().filter(|r| r.contains_key("lr-adam")) {
        let step: f64 = row["step"].parse().unwrap();
        let lr: f64 = row["lr-adam"].parse().unwrap();
        let expected = 0.01 * (1.0 + (std::f64::consts::PI * step / 12.0).cos()) / 2.0;
        assert!(
            (lr - expected).abs() < 1e-12,
            "step {step}: {lr} vs {expected}"
        );
    }
    assert_eq!(count(&rows, "lr-adam"), 12);

    // Two accumulated batches of 16 are one batch of 32: the same samples, the same gradient
    // up to float rounding (384 training samples: 12 batches of 32 or 24 of 16).
    let even = BASE.replace("n_samples: 512", "n_samples: 480");
    let (a, _) = train_ok(&scratch, &even, &[]);
    let (b, _) = train_ok(
        &scratch,
        &even,
        &[
            "data.args.batch_size=16",
            "trainer.args.accumulate_grad_batches=2",
        ],
    );
    assert_eq!(summary(&a)["global_step"], summary(&b)["global_step"]);
    let (la, lb) = (
        summary_f64(&a, &["final_metrics", "val_loss"]),
        summary_f64(&b, &["final_metrics", "val_loss"]),
    );
    assert!((la - lb).abs() <= 1e-4 * la, "{la} vs {lb}");
}

/// Weights of every step's checkpoint, in step order.
fn steps(dir: &std::path::Path, n: usize) -> Vec<Vec<f32>> {
    (1..=n)
        .map(|s| {
            let file = std::fs::read_dir(dir.join("checkpoints"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| {
                    p.file_name()
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .ends_with(&format!("step={s}.safetensors"))
                })
                .unwrap();
            let mut all = Vec::new();
            for name in tensor_names(&file).iter().filter(|n| !n.starts_with("__")) {
                all.extend(tensor_f32(&file, name));
            }
            all
        })
        .collect()
}

#[test]
fn gradient_clipping_by_norm_and_by_value_bounds_each_update() {
    let scratch = Scratch::new("clip");
    // Plain SGD with lr 1: an update is minus the (clipped) gradient.
    let config = format!(
        "{}callbacks: [{{name: ModelCheckpoint, args: {{every_n_train_steps: 1, save_top_k: -1}}}}]\n",
        BASE.replace(
            "{name: adam, args: {lr: 0.01}}",
            "{name: sgd, args: {lr: 1.0}}"
        )
    );
    let sets = [
        "trainer.args.max_steps=6",
        "trainer.args.gradient_clip_val=0.01",
    ];
    let (dir, _) = train_ok(&scratch, &config, &sets);
    let w = steps(&dir, 6);
    for pair in w.windows(2) {
        let norm: f64 = pair[0]
            .iter()
            .zip(&pair[1])
            .map(|(a, b)| ((b - a) as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(
            norm <= 0.01 * (1.0 + 1e-4),
            "update norm {norm} above the clip value"
        );
        assert!(
            norm > 0.009,
            "the gradient norm is far above 0.01, so updates are clipped to it: {norm}"
        );
    }
    let (dir, _) = train_ok(
        &scratch,
        &config,
        &[
            "trainer.args.max_steps=6",
            "trainer.args.gradient_clip_val=0.001",
            "trainer.args.gradient_clip_algorithm=value",
        ],
    );
    let w = steps(&dir, 6);
    for pair in w.windows(2) {
        let max = pair[0]
            .iter()
            .zip(&pair[1])
            .map(|(a, b)| (b - a).abs())
            .fold(0.0f32, f32::max);
        assert!(max <= 0.001 * (1.0 + 1e-4), "a value moved {max}");
    }
}

#[test]
fn validation_schedule_every_n_epochs_and_within_epochs() {
    let scratch = Scratch::new("val-schedule");
    let (dir, _) = train_ok(
        &scratch,
        BASE,
        &[
            "trainer.args.max_epochs=4",
            "trainer.args.check_val_every_n_epoch=2",
        ],
    );
    let epochs: Vec<String> = csv_rows(&dir)
        .into_iter()
        .filter(|r| r.contains_key("val_loss"))
        .map(|r| r["epoch"].clone())
        .collect();
    assert_eq!(epochs, ["1", "3"]);

    // 480 samples: 12 training batches; a quarter of an epoch is 3 batches.
    let even = BASE.replace("n_samples: 512", "n_samples: 480");
    let (dir, _) = train_ok(
        &scratch,
        &even,
        &[
            "trainer.args.max_epochs=2",
            "trainer.args.val_check_interval=0.25",
        ],
    );
    let steps: Vec<String> = csv_rows(&dir)
        .into_iter()
        .filter(|r| r.contains_key("val_loss"))
        .map(|r| r["step"].clone())
        .collect();
    assert_eq!(steps, ["3", "6", "9", "12", "15", "18", "21", "24"]);

    // Every 5 training batches across epochs, whatever the epoch.
    let (dir, _) = train_ok(
        &scratch,
        &even,
        &[
            "trainer.args.max_epochs=2",
            "trainer.args.val_check_interval=5",
            "trainer.args.check_val_every_n_epoch=null",
        ],
    );
    let steps: Vec<String> = csv_rows(&dir)
        .into_iter()
        .filter(|r| r.contains_key("val_loss"))
        .map(|r| r["step"].clone())
        .collect();
    assert_eq!(steps, ["5", "10", "15", "20"]);
}

#[test]
fn limit_train_batches_by_count_and_fraction() {
    let scratch = Scratch::new("limit-train");
    let (dir, _) = train_ok(&scratch, BASE, &["trainer.args.limit_train_batches=5"]);
    assert_eq!(summary(&dir)["global_step"], 15);
    let (dir, _) = train_ok(&scratch, BASE, &["trainer.args.limit_train_batches=0.5"]);
    assert_eq!(summary(&dir)["global_step"], 18, "half of 13 batches is 6");
}

/// Train targets are 0; val and test files hold 32 samples with target 0, then 96 with 100.
fn skewed(scratch: &Scratch) -> String {
    for name in ["train", "val", "test"] {
        let n = if name == "train" { 256 } else { 128 };
        npz(
            scratch,
            name,
            &format!(
                "x = rng.normal(size=({n}, 4)).astype(np.float32)\ny = np.zeros(({n}, 1), np.float32)\n\
                 if '{name}' != 'train': y[32:] = 100.0\narrays['x'] = x\narrays['y'] = y"
            ),
        );
    }
    BASE.replace(
        "{name: SyntheticRegression, args: {n_samples: 512, n_features: 4, batch_size: 32}}",
        "{name: TensorFile, args: {train: train.npz, val: val.npz, test: test.npz, inputs: [x], targets: [y], batch_size: 32}}",
    )
}

#[test]
fn limit_val_and_test_batches_and_test_after_fit() {
    let scratch = Scratch::new("limit-eval");
    let config = skewed(&scratch);
    let (dir, _) = train_ok(&scratch, &config, &["trainer.args.test_after_fit=true"]);
    let (full_val, full_test) = (
        summary_f64(&dir, &["final_metrics", "val_loss"]),
        summary_f64(&dir, &["test_metrics", "test_loss"]),
    );
    assert!(
        full_val > 1000.0 && full_test > 1000.0,
        "{full_val} {full_test}"
    );
    assert!(csv_rows(&dir).iter().any(|r| r.contains_key("test_loss")));

    let (dir, _) = train_ok(
        &scratch,
        &config,
        &[
            "trainer.args.test_after_fit=true",
            "trainer.args.limit_val_batches=1",
            "trainer.args.limit_test_batches=1",
        ],
    );
    let (val, test) = (
        summary_f64(&dir, &["final_metrics", "val_loss"]),
        summary_f64(&dir, &["test_metrics", "test_loss"]),
    );
    assert!(
        val < 1.0 && test < 1.0,
        "only the first batch (targets 0) counts: {val} {test}"
    );
}

#[test]
fn overfit_batches_trains_on_the_same_few_batches() {
    let scratch = Scratch::new("overfit");
    let (dir, _) = train_ok(
        &scratch,
        BASE,
        &[
            "trainer.args.overfit_batches=2",
            "trainer.args.max_epochs=60",
        ],
    );
    assert_eq!(summary(&dir)["global_step"], 120);
    let rows: Vec<f64> = csv_rows(&dir)
        .iter()
        .filter_map(|r| r.get("train_loss").map(|v| v.parse().unwrap()))
        .collect();
    assert!(
        rows[59] < 0.2 * rows[0],
        "the same two batches are learnt: {} -> {}",
        rows[0],
        rows[59]
    );
}

#[test]
fn fast_dev_run_runs_one_batch_and_writes_nothing() {
    let scratch = Scratch::new("fast-dev-run");
    let (dir, run) = train_ok(
        &scratch,
        BASE,
        &[
            "trainer.args.fast_dev_run=true",
            "trainer.args.test_after_fit=true",
            "data.args.test_fraction=0.1",
        ],
    );
    assert!(
        run.stdout.contains("fast_dev_run: 1 batch(es)"),
        "{}",
        run.stdout
    );
    assert_eq!(summary(&dir)["global_step"], 1);
    assert_eq!(summary(&dir)["epochs"], 1);
    assert!(!dir.join("metrics.csv").exists());
    assert!(
        !dir.join("checkpoints").exists()
            || std::fs::read_dir(dir.join("checkpoints"))
                .unwrap()
                .next()
                .is_none()
    );
}

#[test]
fn num_sanity_val_steps_validates_before_training() {
    let scratch = Scratch::new("sanity");
    let (_, run) = train_ok(&scratch, BASE, &[]);
    assert!(
        run.stdout
            .contains("sanity check passed (2 validation batches)"),
        "{}",
        run.stdout
    );
    let (_, run) = train_ok(&scratch, BASE, &["trainer.args.num_sanity_val_steps=-1"]);
    assert!(
        run.stdout
            .contains("sanity check passed (4 validation batches)"),
        "{}",
        run.stdout
    );
    let (_, run) = train_ok(&scratch, BASE, &["trainer.args.num_sanity_val_steps=0"]);
    assert!(!run.stdout.contains("sanity check"), "{}", run.stdout);
}

#[test]
fn log_every_n_steps_sets_the_step_rows() {
    let scratch = Scratch::new("log-every");
    let (dir, _) = train_ok(&scratch, BASE, &["trainer.args.log_every_n_steps=5"]);
    let steps: Vec<String> = csv_rows(&dir)
        .into_iter()
        .filter(|r| r.contains_key("train_loss_step"))
        .map(|r| r["step"].clone())
        .collect();
    assert_eq!(steps, ["5", "10", "15", "20", "25", "30", "35"]);
}

fn with_nan(scratch: &Scratch) -> String {
    npz(
        scratch,
        "nan",
        "x = rng.normal(size=(256, 4)).astype(np.float32)\nx[70, 2] = np.nan\narrays['x'] = x\narrays['y'] = x.sum(1, keepdims=True)",
    );
    BASE.replace(
        "{name: SyntheticRegression, args: {n_samples: 512, n_features: 4, batch_size: 32}}",
        "{name: TensorFile, args: {train: nan.npz, inputs: [x], targets: [y], batch_size: 32, shuffle: false, allow_non_finite: true}}",
    )
}

#[test]
fn detect_anomaly_stops_at_the_first_nan_and_names_where() {
    let scratch = Scratch::new("anomaly");
    let config = with_nan(&scratch);
    let path = scratch.write("exp.yaml", &config);
    let run = scratch.stoker(&[
        "train",
        path.to_str().unwrap(),
        "--set",
        "trainer.args.detect_anomaly=true",
    ]);
    run.expect_code(1);
    // Sample 70 is in batch 2 (unshuffled), the third optimizer step.
    assert!(
        run.stderr
            .contains("detect_anomaly: the loss is NaN at epoch 0, step 3, batch 2 of the epoch"),
        "{}",
        run.stderr
    );
    // Without it the loss is still watched (read at the epoch's end here, where the first row
    // is logged): the run stops with the steps it happened between.
    let run = scratch.stoker(&["train", path.to_str().unwrap()]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("the training loss became NaN or infinite between steps 1 and 8 (epoch 0)"),
        "{}",
        run.stderr
    );
}

#[test]
fn predict_writes_outputs_and_batch_tensors() {
    let scratch = Scratch::new("predict");
    let config_text = BASE.replace("batch_size: 32", "batch_size: 32, test_fraction: 0.25");
    let (dir, _) = train_ok(&scratch, &config_text, &[]);
    let config = scratch.path("exp.yaml");
    let last = dir.join("checkpoints/last.safetensors");
    let run = scratch.stoker(&[
        "predict",
        config.to_str().unwrap(),
        "--ckpt",
        last.to_str().unwrap(),
    ]);
    run.expect_code(0);
    let file = dir.join("predictions-test.safetensors");
    assert!(
        run.stdout.contains("128 test predictions"),
        "{}",
        run.stdout
    );
    assert_eq!(tensor_names(&file), ["batch.x", "batch.y", "pred"]);
    assert_eq!(tensor_f32(&file, "pred").len(), 128);
    let custom = scratch.path("val.safetensors");
    scratch
        .stoker(&[
            "predict",
            config.to_str().unwrap(),
            "--ckpt",
            last.to_str().unwrap(),
            "--split",
            "val",
            "--output",
            custom.to_str().unwrap(),
        ])
        .expect_code(0);
    assert_eq!(tensor_f32(&custom, "batch.y").len(), 102);
}

#[test]
fn enable_checkpointing_off_writes_no_checkpoint() {
    let scratch = Scratch::new("no-ckpt");
    let (dir, _) = train_ok(&scratch, BASE, &["trainer.args.enable_checkpointing=false"]);
    assert!(!dir.join("checkpoints").exists());
    assert!(summary(&dir)["last_checkpoint"].is_null());
}
