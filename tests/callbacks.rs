//! Every built-in callback, configured from YAML, with a test of what it does.

mod common;

use common::{Scratch, csv_rows, npz, summary, summary_f64, tensor_f32, tensor_names, train_ok};

/// 410 train samples (13 batches of 32), 102 val samples.
const BASE: &str = "\
name: cb
environment: {seed: 13, device: cpu, output_dir: out}
data: {name: SyntheticRegression, args: {n_samples: 512, n_features: 4, batch_size: 32}}
model: {name: MLP, args: {sizes: [4, 32, 1]}}
loss: mse
optimizer: {name: adam, args: {lr: 0.01}}
trainer: {name: Default_trainer, args: {max_epochs: 5}}
";

fn with_callbacks(callbacks: &str) -> String {
    format!("{BASE}callbacks: {callbacks}\n")
}

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn column(dir: &std::path::Path, name: &str) -> Vec<f64> {
    csv_rows(dir)
        .iter()
        .filter_map(|r| r.get(name).map(|v| v.parse().unwrap()))
        .collect()
}

#[test]
fn model_checkpoint_keeps_the_best_k_with_a_template_and_last() {
    let scratch = Scratch::new("mc-topk");
    let (dir, _) = train_ok(
        &scratch,
        &with_callbacks(
            "[{name: ModelCheckpoint, args: {filename: 'ep{epoch:02d}-vl{val_loss:.4f}', monitor: val_loss, save_top_k: 2, save_last: true}}]",
        ),
        &[],
    );
    let val = column(&dir, "val_loss");
    let mut ranked: Vec<(usize, f64)> = val.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut expected: Vec<String> = ranked[..2]
        .iter()
        .map(|(e, v)| format!("ep{e:02}-vl{v:.4}.safetensors"))
        .collect();
    expected.push("last.safetensors".into());
    expected.sort();
    assert_eq!(files(&dir), expected);
    assert!(
        summary(&dir)["best_checkpoint"]
            .as_str()
            .unwrap()
            .ends_with(&format!(
                "ep{:02}-vl{:.4}.safetensors",
                ranked[0].0, ranked[0].1
            ))
    );
    assert_eq!(summary(&dir)["monitor"], "val_loss");

    // mode max keeps the worst val_loss instead.
    let (dir, _) = train_ok(
        &scratch,
        &with_callbacks(
            "[{name: ModelCheckpoint, args: {filename: 'e{epoch}', monitor: val_loss, mode: max}}]",
        ),
        &[],
    );
    let worst = val
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap()
        .0;
    assert_eq!(files(&dir), [format!("e{worst}.safetensors")]);
}

#[test]
fn model_checkpoint_schedules_and_weights_only() {
    let scratch = Scratch::new("mc-schedule");
    let (dir, _) = train_ok(
        &scratch,
        &with_callbacks("[{name: ModelCheckpoint, args: {every_n_epochs: 2, save_top_k: -1}}]"),
        &[],
    );
    assert_eq!(
        files(&dir),
        ["epoch=1-step=26.safetensors", "epoch=3-step=52.safetensors"]
    );
    let (dir, _) = train_ok(
        &scratch,
        &with_callbacks(
            "[{name: ModelCheckpoint, args: {every_n_train_steps: 20, save_top_k: -1}}]",
        ),
        &[],
    );
    assert_eq!(
        files(&dir),
        [
            "epoch=1-step=20.safetensors",
            "epoch=3-step=40.safetensors",
            "epoch=4-step=60.safetensors"
        ]
    );
    let (dir, _) = train_ok(
        &scratch,
        &with_callbacks("[{name: ModelCheckpoint, args: {save_weights_only: true, filename: w}}]"),
        &[],
    );
    let file = dir.join("checkpoints/w.safetensors");
    assert!(
        !tensor_names(&file)
            .iter()
            .any(|n| n.starts_with("__stoker")),
        "{:?}",
        tensor_names(&file)
    );
    assert_eq!(tensor_f32(&file, "layers.0.weight").len(), 4 * 32);
}

#[test]
fn early_stopping_patience_and_min_delta() {
    let scratch = Scratch::new("es-patience");
    // An improvement must beat the best by 1e9: only the first check counts as one.
    let (dir, run) = train_ok(
        &scratch,
        &with_callbacks("[{name: EarlyStopping, args: {patience: 2, min_delta: 1.0e9}}]"),
        &["trainer.args.max_epochs=20"],
    );
    assert_eq!(summary(&dir)["epochs"], 3, "{}", run.stdout);
    assert!(
        summary(&dir)["stopped_early"]
            .as_str()
            .unwrap()
            .contains("did not improve for 2 checks")
    );
    // Without min_delta the loss keeps improving through 5 epochs.
    let (dir, _) = train_ok(
        &scratch,
        &with_callbacks("[{name: EarlyStopping, args: {patience: 2}}]"),
        &[],
    );
    assert_eq!(summary(&dir)["epochs"], 5);
}

#[test]
fn early_stopping_thresholds_and_strictness() {
    let scratch = Scratch::new("es-thresholds");
    let (dir, _) = train_ok(
        &scratch,
        &with_callbacks("[{name: EarlyStopping, args: {divergence_threshold: 1.0e-12}}]"),
        &[],
    );
    assert_eq!(summary(&dir)["epochs"], 1);
    assert!(
        summary(&dir)["stopped_early"]
            .as_str()
            .unwrap()
            .contains("divergence_threshold")
    );
    let (dir, _) = train_ok(
        &scratch,
        &with_callbacks(
            "[{name: EarlyStopping, args: {monitor: train_loss, stopping_threshold: 0.05}}]",
        ),
        &["trainer.args.max_epochs=50"],
    );
    let train = column(&dir, "train_loss");
    assert!(
        *train.last().unwrap() < 0.05 && train[..train.len() - 1].iter().all(|v| *v >= 0.05),
        "{train:?}"
    );

    let config = scratch.write(
        "strict.yaml",
        &with_callbacks("[{name: EarlyStopping, args: {monitor: val_acc}}]"),
    );
    // strict (the default): a monitor nothing logs is refused before training.
    let run = scratch.stoker(&["train", config.to_str().unwrap()]);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("`val_acc` is monitored, but no configured metric or loss produces it"),
        "{}",
        run.stderr
    );
    let (dir, _) = train_ok(
        &scratch,
        &with_callbacks("[{name: EarlyStopping, args: {monitor: val_acc, strict: false}}]"),
        &[],
    );
    assert_eq!(summary(&dir)["epochs"], 5);
}

#[test]
fn early_stopping_check_finite_stops_on_nan() {
    let scratch = Scratch::new("es-finite");
    npz(
        &scratch,
        "d",
        "x = rng.normal(size=(256, 4)).astype(np.float32)\ny = x.sum(1, keepdims=True)\narrays['x'] = x\narrays['y'] = y",
    );
    npz(
        &scratch,
        "v",
        "x = rng.normal(size=(64, 4)).astype(np.float32)\ny = x.sum(1, keepdims=True)\ny[5] = np.nan\narrays['x'] = x\narrays['y'] = y",
    );
    let config = with_callbacks("[{name: EarlyStopping, args: {patience: 10}}]").replace(
        "{name: SyntheticRegression, args: {n_samples: 512, n_features: 4, batch_size: 32}}",
        "{name: TensorFile, args: {train: d.npz, val: v.npz, inputs: [x], targets: [y], allow_non_finite: true}}",
    );
    let (dir, _) = train_ok(
        &scratch,
        &config,
        &["trainer.args.enable_checkpointing=false"],
    );
    assert_eq!(summary(&dir)["epochs"], 1);
    assert!(
        summary(&dir)["stopped_early"]
            .as_str()
            .unwrap()
            .contains("is not finite")
    );
}

#[test]
fn early_stopping_restores_the_best_weights() {
    let scratch = Scratch::new("es-restore");
    // Too high a learning rate makes val_loss bounce; the test split measures the restored weights.
    let config =
        with_callbacks("[{name: EarlyStopping, args: {patience: 3, restore_best_weights: true}}]")
            .replace("lr: 0.01", "lr: 0.08")
            .replace("batch_size: 32}", "batch_size: 32, test_fraction: 0.2}");
    let sets = [
        "trainer.args.max_epochs=12",
        "trainer.args.enable_checkpointing=false",
        "trainer.args.test_after_fit=true",
    ];
    let (dir, run) = train_ok(&scratch, &config, &sets);
    assert!(
        run.stdout
            .contains("EarlyStopping: restored the weights of the best check"),
        "{}",
        run.stdout
    );
    let best = dir.join("checkpoints/early_stopping_best.safetensors");
    let eval = scratch.stoker(&[
        "eval",
        scratch.path("exp.yaml").to_str().unwrap(),
        "--ckpt",
        best.to_str().unwrap(),
        "--split",
        "test",
        "--json",
    ]);
    eval.expect_code(0);
    let metrics: serde_json::Value = serde_json::from_str(eval.stdout.trim()).unwrap();
    assert_eq!(
        metrics["test_loss"].as_f64().unwrap(),
        summary_f64(&dir, &["test_metrics", "test_loss"])
    );
    // ... and they are the weights of the lowest val_loss.
    let val = column(&dir, "val_loss");
    let best_val = val.iter().copied().fold(f64::INFINITY, f64::min);
    let eval = scratch.stoker(&[
        "eval",
        scratch.path("exp.yaml").to_str().unwrap(),
        "--ckpt",
        best.to_str().unwrap(),
        "--json",
    ]);
    let metrics: serde_json::Value = serde_json::from_str(eval.stdout.trim()).unwrap();
    assert!((metrics["val_loss"].as_f64().unwrap() - best_val).abs() < 1e-9 * best_val);
}

#[test]
fn learning_rate_monitor_logs_each_epoch() {
    let scratch = Scratch::new("lr-monitor");
    let config = format!(
        "{}scheduler: {{name: cosine}}\n",
        with_callbacks("[LearningRateMonitor]")
    );
    let (dir, _) = train_ok(&scratch, &config, &[]);
    let lrs = column(&dir, "lr-adam");
    let expected: Vec<f64> = (0..5)
        .map(|e| 0.01 * (1.0 + (std::f64::consts::PI * e as f64 / 5.0).cos()) / 2.0)
        .collect();
    assert_eq!(lrs.len(), 5);
    for (got, want) in lrs.iter().zip(&expected) {
        assert!((got - want).abs() < 1e-12, "{lrs:?} vs {expected:?}");
    }
}

#[test]
fn gradient_monitor_logs_norms_and_flags_explosions() {
    let scratch = Scratch::new("grad-monitor");
    let (dir, run) = train_ok(
        &scratch,
        &with_callbacks(
            "[{name: GradientMonitor, args: {every_n_steps: 13, exploding_threshold: 1.0e-9, vanishing_threshold: 1.0e-12}}]",
        ),
        &[],
    );
    let total = column(&dir, "grad_norm_total");
    assert_eq!(total.len(), 5, "every 13 steps over 65");
    let w0 = column(&dir, "grad_norm/layers.0.weight");
    let parts: Vec<f64> = [
        "layers.0.weight",
        "layers.0.bias",
        "layers.1.weight",
        "layers.1.bias",
    ]
    .iter()
    .map(|p| column(&dir, &format!("grad_norm/{p}"))[0])
    .collect();
    let global = parts.iter().map(|p| p * p).sum::<f64>().sqrt();
    assert!(
        (global - total[0]).abs() < 1e-6 * total[0],
        "{global} vs {}",
        total[0]
    );
    assert!(w0.iter().all(|v| *v > 0.0));
    assert!(
        run.stdout
            .contains("GradientMonitor: exploding gradients at step 13"),
        "{}",
        run.stdout
    );
    assert_eq!(column(&dir, "grad_exploding").len(), 5);
}

#[test]
fn timer_logs_times_and_stops_at_its_budget() {
    let scratch = Scratch::new("timer");
    let (dir, _) = train_ok(
        &scratch,
        &with_callbacks("[{name: Timer, args: {duration: 1}}]"),
        &["trainer.args.max_epochs=100000"],
    );
    assert!(
        summary(&dir)["stopped_early"]
            .as_str()
            .unwrap()
            .contains("Timer: the time budget of 00:00:00:01 is spent")
    );
    let epochs = column(&dir, "time_epoch_s");
    assert!(!epochs.is_empty() && epochs.iter().all(|t| *t > 0.0));
    assert_eq!(column(&dir, "time_batch_ms").len(), epochs.len());
}

#[test]
fn memory_profiler_logs_host_memory() {
    let scratch = Scratch::new("memory");
    let (dir, _) = train_ok(
        &scratch,
        &with_callbacks("[{name: MemoryProfiler, args: {every_n_steps: 10}}]"),
        &[],
    );
    let peak = column(&dir, "memory_host_peak_mb");
    let rss = column(&dir, "memory_host_rss_mb");
    assert!(
        peak.len() >= 5 && peak.iter().zip(&rss).all(|(p, r)| p >= r && *r > 10.0),
        "{peak:?} {rss:?}"
    );
    assert!(
        column(&dir, "memory_cuda_used_mb").is_empty(),
        "no CUDA device here"
    );
}

#[test]
fn metrics_tracker_writes_history_and_summary() {
    let scratch = Scratch::new("tracker");
    let (dir, _) = train_ok(&scratch, &with_callbacks("[MetricsTracker]"), &[]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics_history.json")).unwrap())
            .unwrap();
    assert_eq!(report["history"].as_array().unwrap().len(), 5);
    let val = column(&dir, "val_loss");
    let best = val.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(
        report["summary"]["val_loss"]["best"].as_f64().unwrap(),
        best
    );
    assert_eq!(
        report["summary"]["val_loss"]["last"].as_f64().unwrap(),
        *val.last().unwrap()
    );
}

fn zeros(file: &std::path::Path, name: &str) -> (usize, usize) {
    let values = tensor_f32(file, name);
    (values.iter().filter(|v| **v == 0.0).count(), values.len())
}

#[test]
fn model_pruning_zeroes_weights_and_keeps_them_zero() {
    let scratch = Scratch::new("pruning");
    // Pruned at the start of epoch 1, then trained for three more epochs.
    let (dir, run) = train_ok(
        &scratch,
        &with_callbacks("[{name: ModelPruning, args: {amount: 0.5, epochs: [1]}}]"),
        &[],
    );
    assert!(
        run.stdout
            .contains("ModelPruning: epoch 1: 50.0% of the selected weights are zero"),
        "{}",
        run.stdout
    );
    let last = dir.join("checkpoints/last.safetensors");
    let (z0, n0) = zeros(&last, "layers.0.weight");
    let (z1, n1) = zeros(&last, "layers.1.weight");
    // Global ranking: half of all 160 weights, however they fall between the layers.
    assert_eq!(z0 + z1, (n0 + n1) / 2);
    assert_eq!(
        zeros(&last, "layers.0.bias").0,
        0,
        "biases are not selected"
    );

    let (dir, _) = train_ok(
        &scratch,
        &with_callbacks(
            "[{name: ModelPruning, args: {amount: 0.25, scope: layer, epochs: [0, 2]}}]",
        ),
        &[],
    );
    let last = dir.join("checkpoints/last.safetensors");
    // Twice 25% of what is left, per layer: 128 -> 96 -> 72 kept, 32 -> 24 -> 18 kept.
    assert_eq!(zeros(&last, "layers.0.weight"), (128 - 72, 128));
    assert_eq!(zeros(&last, "layers.1.weight"), (32 - 18, 32));
}

#[test]
fn sample_predictions_writes_predictions_next_to_targets() {
    let scratch = Scratch::new("samples");
    let (dir, _) = train_ok(
        &scratch,
        &with_callbacks("[{name: SamplePredictions, args: {every_n_epochs: 2, num_samples: 3}}]"),
        &[],
    );
    let written: Vec<String> = std::fs::read_dir(dir.join("samples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut written = written;
    written.sort();
    assert_eq!(written, ["epoch=001.json", "epoch=003.json"]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("samples/epoch=003.json")).unwrap())
            .unwrap();
    let samples = report["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 3);
    assert_eq!(samples[0]["pred"].as_array().unwrap().len(), 1);
    assert_eq!(samples[0]["target"].as_array().unwrap().len(), 1);
    assert_eq!(report["split"], "val");
}

#[test]
fn on_exception_checkpoint_saves_the_last_good_step() {
    let scratch = Scratch::new("on-exception");
    npz(
        &scratch,
        "nan",
        "x = rng.normal(size=(256, 4)).astype(np.float32)\nx[200, 1] = np.inf\narrays['x'] = x\narrays['y'] = np.ones((256, 1), np.float32)",
    );
    let config = with_callbacks("[OnExceptionCheckpoint]").replace(
        "{name: SyntheticRegression, args: {n_samples: 512, n_features: 4, batch_size: 32}}",
        "{name: TensorFile, args: {train: nan.npz, val_fraction: 0.25, inputs: [x], targets: [y], shuffle: false, allow_non_finite: true}}",
    );
    let path = scratch.write("exp.yaml", &config);
    let run = scratch.stoker(&[
        "train",
        path.to_str().unwrap(),
        "--set",
        "trainer.args.detect_anomaly=true",
    ]);
    run.expect_code(1);
    assert!(
        run.stdout.contains("OnExceptionCheckpoint: saving"),
        "{}",
        run.stdout
    );
    let ckpt = scratch.path("out/cb/version_0/checkpoints/on_exception.safetensors");
    scratch
        .stoker(&[
            "eval",
            path.to_str().unwrap(),
            "--ckpt",
            ckpt.to_str().unwrap(),
        ])
        .expect_code(0);
}
