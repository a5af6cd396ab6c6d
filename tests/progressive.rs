//! `ProgressiveResizing_trainer` end to end: training batches are cut to the schedule's size
//! while validation sees the data's, fields resize inputs and targets together (the training
//! metrics see the resized pair), a resume across a change of size is exact, and a schedule the
//! data cannot follow is refused before training.

mod common;

use common::{Scratch, csv_rows, npz, train_ok};

/// A 1-D CNN on 64-step "signals" (the features of a synthetic classification).
const SIGNALS: &str = "\
name: signals
environment: {seed: 7, device: cpu, output_dir: out}
data: {name: SyntheticClassification, args: {n_samples: 600, n_features: 64, n_classes: 3, separation: 2.0, test_fraction: 0.2, batch_size: 50}}
model: {name: CNN1d, args: {channels: [8], kernels: [5], strides: [1], n_classes: 3}}
loss: cross_entropy
metrics: [accuracy]
optimizer: {name: adam, args: {lr: 0.01}}
callbacks: [{name: ModelCheckpoint, args: {every_n_train_steps: 5, save_top_k: -1}}]
";

fn progressive(schedule: &str, extra: &str) -> String {
    format!(
        "{SIGNALS}trainer: {{name: ProgressiveResizing_trainer, args: {{max_epochs: 3, schedule: {schedule}{extra}}}}}\n"
    )
}

/// The epoch rows (those with a validation loss) of a run.
fn epoch_rows(run: &std::path::Path) -> Vec<std::collections::BTreeMap<String, String>> {
    csv_rows(run)
        .into_iter()
        .filter(|r| r.contains_key("val_loss"))
        .collect()
}

#[test]
fn training_batches_are_cropped_by_the_schedule() {
    // With a learning rate of 1e-30 no weight changes, so the training losses show what the
    // model saw: 16-step crops in epochs 0 and 1 (another loss than the whole signals give),
    // the whole signals in epoch 2 (the same loss).
    let frozen = ["optimizer.args.lr=1.0e-30"];
    let fixed_dir = Scratch::new("progressive-fixed");
    let fixed_text =
        format!("{SIGNALS}trainer: {{name: Default_trainer, args: {{max_epochs: 3}}}}\n");
    let (fixed, _) = train_ok(&fixed_dir, &fixed_text, &frozen);
    let cropped_dir = Scratch::new("progressive-cropped");
    let (cropped, run) = train_ok(
        &cropped_dir,
        &progressive("[[0, 16], [2, 64]]", ""),
        &frozen,
    );
    assert!(
        run.stdout
            .contains("ProgressiveResizing_trainer: epoch 0: training at [16]")
            && run.stdout.contains("epoch 2: training at [64]"),
        "{}",
        run.stdout
    );
    let (a, b) = (epoch_rows(&fixed), epoch_rows(&cropped));
    assert_eq!(a.len(), 3);
    for (epoch, (f, c)) in a.iter().zip(&b).enumerate() {
        if epoch < 2 {
            assert_ne!(f["train_loss"], c["train_loss"], "epoch {epoch}");
        } else {
            assert_eq!(f["train_loss"], c["train_loss"], "epoch {epoch}");
        }
    }
    let sizes: Vec<String> = csv_rows(&cropped)
        .into_iter()
        .filter_map(|r| Some(format!("{}:{}", r.get("epoch")?, r.get("train_size")?)))
        .collect();
    assert!(sizes.contains(&"1:16".to_string()), "{sizes:?}");
    assert!(sizes.contains(&"2:64".to_string()), "{sizes:?}");
    assert!(!sizes.contains(&"2:16".to_string()), "{sizes:?}");
}

#[test]
fn a_resume_across_a_change_of_size_is_exact() {
    let scratch = Scratch::new("progressive-resume");
    let (run_dir, _) = train_ok(&scratch, &progressive("[[0, 32], [2, 64]]", ""), &[]);
    let uninterrupted = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    // 480 training samples in batches of 50: 10 steps an epoch; step 15 is in epoch 1.
    let checkpoint = run_dir.join("checkpoints/epoch=1-step=15.safetensors");
    assert!(checkpoint.is_file());
    let config = scratch.path("exp.yaml");
    scratch
        .stoker(&[
            "train",
            config.to_str().unwrap(),
            "--resume",
            checkpoint.to_str().unwrap(),
        ])
        .expect_code(0);
    let resumed = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    assert_eq!(resumed, uninterrupted);
}

/// An FNO (no batch norm) on 8x8 fields: y a smoothed copy of x.
const FIELDS: &str = "\
name: fields
environment: {seed: 3, device: cpu, output_dir: out}
data: {name: TensorFile, args: {train: fields.npz, val_fraction: 0.25, inputs: [x], targets: [y], batch_size: 20}}
model: {name: FNO2d, args: {modes: [2, 2], width: 8, layers: 2, projection: 16}}
loss: {name: relative_lp, args: {p: 2}}
metrics: [rel_l2]
optimizer: {name: adam, args: {lr: 0.01}}
";

fn fields(scratch: &Scratch, trainer: &str) -> String {
    npz(
        scratch,
        "fields",
        "x = rng.standard_normal((80, 8, 8)).astype(np.float32)\n\
         y = (x + np.roll(x, 1, 1) + np.roll(x, 1, 2)) / 3\n\
         arrays['x'] = x\narrays['y'] = y.astype(np.float32)\n",
    );
    format!("{FIELDS}trainer: {trainer}\n")
}

const RESIZED: &str = "{name: ProgressiveResizing_trainer, args: {max_epochs: 4, mode: resample, tensors: [x, y], schedule: [[0, [4, 4]], [2, [8, 8]]]}}";

#[test]
fn fields_resize_inputs_and_targets_together() {
    // An FNO trained at 4x4 (the grid's corners and points between, both fields resampled),
    // then 8x8. The training metrics compare the resized prediction with the resized target:
    // a target left at 8x8 would not match.
    let scratch = Scratch::new("progressive-fields");
    let (run_dir, _) = train_ok(&scratch, &fields(&scratch, RESIZED), &[]);
    let rows = epoch_rows(&run_dir);
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let train: f64 = row["train_rel_l2"].parse().unwrap();
        assert!(train.is_finite() && train > 0.0, "{row:?}");
    }
    // The operator learns: the last epoch is better than the first.
    let val = |r: &std::collections::BTreeMap<String, String>| -> f64 {
        r["val_rel_l2"].parse().unwrap()
    };
    assert!(val(&rows[3]) < val(&rows[0]), "{rows:?}");
}

#[test]
fn validation_sees_the_datas_own_size() {
    // Frozen weights (and no batch norm): validation is the same with and without resizing,
    // training is not while the size is smaller.
    let frozen = ["optimizer.args.lr=1.0e-30"];
    let fixed_dir = Scratch::new("progressive-fields-fixed");
    let fixed_text = fields(&fixed_dir, "{name: Default_trainer, args: {max_epochs: 4}}");
    let (fixed, _) = train_ok(&fixed_dir, &fixed_text, &frozen);
    let resized_dir = Scratch::new("progressive-fields-frozen");
    let (resized, _) = train_ok(&resized_dir, &fields(&resized_dir, RESIZED), &frozen);
    let (a, b) = (epoch_rows(&fixed), epoch_rows(&resized));
    assert_eq!(a.len(), 4);
    for (epoch, (f, r)) in a.iter().zip(&b).enumerate() {
        assert_eq!(f["val_loss"], r["val_loss"], "epoch {epoch}");
        if epoch < 2 {
            assert_ne!(f["train_loss"], r["train_loss"], "epoch {epoch}");
        }
    }
}

#[test]
fn a_schedule_the_data_cannot_follow_is_refused_before_training() {
    let scratch = Scratch::new("progressive-refused");
    for (schedule, extra, says) in [
        ("[[0, 32], [2, 128]]", "", "the data's axis has 64 points"),
        ("[[1, 32]]", "", "the first entry must be for epoch 0"),
        (
            "[[0, 48]]",
            ", mode: subsample",
            "must divide the axis' 64 points",
        ),
        ("[[0, [8, 8]]]", "", "fewer axes than the schedule's sizes"),
    ] {
        let config = scratch.write("exp.yaml", &progressive(schedule, extra));
        let check = scratch.stoker(&["check", config.to_str().unwrap()]);
        assert_eq!(check.code, 2, "{schedule}: {}", check.stdout);
        assert!(
            check.stderr.contains("trainer.args.") && check.stderr.contains(says),
            "{schedule}: {}",
            check.stderr
        );
    }
}
