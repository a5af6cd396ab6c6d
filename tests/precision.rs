//! `trainer.args.precision`: bf16-mixed and 16-mixed train close to float32, keep float32
//! weights, skip an overflowing step together with its schedule step, and resume exactly; the
//! seeds' spellings (`precision: 16`, `mixed_precision: true`) and bad input.

mod common;

use std::path::Path;

use common::{Scratch, csv_rows, summary_f64, train_ok, workspace};

/// The dtype of every model tensor of a checkpoint, by name.
fn dtypes(checkpoint: &Path) -> Vec<(String, String)> {
    let bytes = std::fs::read(checkpoint).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("__stoker"))
        .map(|(name, view)| (name, format!("{:?}", view.dtype())))
        .collect()
}

/// The `train_loss` column of a run's metrics.csv.
fn train_losses(run_dir: &Path) -> Vec<String> {
    csv_rows(run_dir)
        .into_iter()
        .filter_map(|row| row.get("train_loss").cloned())
        .collect()
}

/// Trains a shipped config with `precision` and `sets`; returns the run directory.
fn train_shipped(
    scratch: &Scratch,
    config: &str,
    precision: &str,
    sets: &[&str],
) -> std::path::PathBuf {
    let config = workspace().join("configs").join(config);
    let mut args = vec!["train".to_string(), config.to_str().unwrap().to_string()];
    let precision = format!("trainer.args.precision={precision}");
    let output = format!(
        "environment.output_dir={}",
        scratch.dir.join(precision.replace('=', "_")).display()
    );
    for set in [
        precision.as_str(),
        output.as_str(),
        "environment.device=cpu",
    ]
    .iter()
    .chain(sets)
    {
        args.extend(["--set".to_string(), set.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = scratch.stoker(&args);
    run.expect_code(0);
    run.run_dir(&scratch.dir)
}

/// Trains `config` in 32-true, bf16-mixed and 16-mixed and checks that each mixed run ends
/// within `tolerance` (relative) of float32 on `metric`, computed differently (its losses are
/// not float32's to the last digit), with float32 weights in its checkpoints.
fn close_to_float32(name: &str, config: &str, metric: &[&str], tolerance: f64, sets: &[&str]) {
    let scratch = Scratch::new(name);
    let full = train_shipped(&scratch, config, "32-true", sets);
    let reference = summary_f64(&full, metric);
    for precision in ["bf16-mixed", "16-mixed"] {
        let run = train_shipped(&scratch, config, precision, sets);
        let value = summary_f64(&run, metric);
        assert!(
            (value - reference).abs() <= tolerance * reference,
            "{precision}: {metric:?} {value} against float32's {reference}"
        );
        assert_ne!(
            train_losses(&run),
            train_losses(&full),
            "{precision}: computed in another precision than float32"
        );
        let last = run.join("checkpoints/last.safetensors");
        for (tensor, dtype) in dtypes(&last) {
            assert_eq!(dtype, "F32", "{precision}: {tensor} is kept in float32");
        }
    }
}

#[test]
fn mixed_precisions_train_the_quickstart_close_to_float32() {
    // 8 epochs: val_mse falls from about 0.5 to 0.007; mixed ends within 15% of float32's.
    close_to_float32(
        "quickstart",
        "quickstart.yaml",
        &["final_metrics", "val_mse"],
        0.15,
        &[
            "trainer.args.max_epochs=8",
            "callbacks=[{name: ModelCheckpoint, args: {save_last: true}}]",
        ],
    );
}

/// `data.args.SPLIT=` the repository's FNO data file `file`.
fn data(split: &str, file: &str) -> String {
    let path = workspace().join("data/fno").join(file);
    format!("data.args.{split}={}", path.display())
}

#[test]
fn mixed_precisions_train_darcy_close_to_float32() {
    // 6 epochs of the FNO on Darcy flow: the test relative L2 error (about 0.15) within 5%.
    close_to_float32(
        "darcy",
        "darcy_fno.yaml",
        &["final_metrics", "test_rel_l2"],
        0.05,
        &[
            "trainer.args.max_epochs=6",
            &data("train", "darcy_train_16.npz"),
            &data("val", "darcy_test_16.npz"),
            &data("test", "darcy_test_16.npz"),
        ],
    );
}

#[test]
fn bf16_true_keeps_everything_in_bfloat16() {
    // Parameters, data and computation in bf16: its updates round at 8 bits of mantissa, so the
    // quickstart's val_mse (0.007 in float32 after 8 epochs) lands within 50% of float32's.
    let scratch = Scratch::new("bf16true");
    let sets = ["trainer.args.max_epochs=8"];
    let full = train_shipped(&scratch, "quickstart.yaml", "32-true", &sets);
    let run = train_shipped(&scratch, "quickstart.yaml", "bf16-true", &sets);
    let (value, reference) = (
        summary_f64(&run, &["final_metrics", "val_mse"]),
        summary_f64(&full, &["final_metrics", "val_mse"]),
    );
    assert!(
        (value - reference).abs() <= 0.5 * reference,
        "bf16-true val_mse {value} against float32's {reference}"
    );
    let best = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "safetensors"))
        .expect("a checkpoint");
    let kept = dtypes(&best);
    assert!(!kept.is_empty());
    for (tensor, dtype) in kept {
        assert_eq!(dtype, "BF16", "{tensor} is kept in bfloat16");
    }
}

const SCHEDULED: &str = "\
name: scaler
environment: {seed: 5, device: cpu, output_dir: out}
data: {name: SyntheticRegression, args: {n_samples: 1024, n_features: 4, batch_size: 32, val_fraction: 0.25}}
model: {name: MLP, args: {sizes: [4, 32, 1]}}
loss: mse
optimizer: {name: sgd, args: {lr: 0.1}}
scheduler: {name: step, args: {step_size: 1, gamma: 0.9, interval: step}}
trainer: {name: Default_trainer, args: {max_epochs: 3, log_every_n_steps: 1}}
";

#[test]
fn a_step_whose_gradients_overflow_is_skipped_and_so_is_its_schedule_step() {
    // A scale of 2^40 makes float16's gradients overflow (beyond 65504): those steps are
    // skipped and the scale halves until they fit. The learning rate of a skipped step stays
    // where it was: the schedule follows the steps taken, as with torch.amp.GradScaler.
    let scratch = Scratch::new("overflow");
    let (full, _) = train_ok(&scratch, SCHEDULED, &[]);
    let (mixed, _) = train_ok(
        &scratch,
        SCHEDULED,
        &["trainer.args.precision={name: 16-mixed, args: {init_scale: 1099511627776.0}}"],
    );
    let lrs = |dir: &Path| -> Vec<f64> {
        csv_rows(dir)
            .into_iter()
            .filter_map(|row| row.get("lr").map(|v| v.parse().unwrap()))
            .collect()
    };
    let (full, mixed) = (lrs(&full), lrs(&mixed));
    assert_eq!(full.len(), mixed.len(), "one row per optimizer step");
    let skipped = mixed.iter().take_while(|lr| **lr == full[0]).count() - 1;
    assert!(
        (20..=30).contains(&skipped),
        "from 2^40 the scale halves about 25 times before float16 holds the gradients: {skipped} skipped; lrs {mixed:?}"
    );
    assert_eq!(
        mixed[skipped..],
        full[..full.len() - skipped],
        "after the skipped steps the schedule starts where float32's did"
    );
}

#[test]
fn sixteen_mixed_resumes_exactly_with_its_loss_scale() {
    // The scale grows every 3 good steps and backs off on overflow, so it changes all along;
    // a mid-run resume must restore it to train on exactly as the uninterrupted run.
    let config = format!(
        "{SCHEDULED}callbacks: [{{name: ModelCheckpoint, args: {{every_n_train_steps: 5, save_top_k: -1, save_last: true}}}}]\n"
    );
    let precision = "trainer.args.precision={name: 16-mixed, args: {init_scale: 4096.0, growth_interval: 3, growth_factor: 4.0}}";
    let scratch = Scratch::new("resume16");
    let (run_dir, _) = train_ok(&scratch, &config, &[precision]);
    let reference = scratch.path("reference.safetensors");
    std::fs::copy(run_dir.join("checkpoints/last.safetensors"), &reference).unwrap();
    let rows = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    let config_path = scratch.path("exp.yaml");
    let resumed = scratch.stoker(&[
        "train",
        config_path.to_str().unwrap(),
        "--set",
        precision,
        "--resume",
        run_dir
            .join("checkpoints/epoch=1-step=30.safetensors")
            .to_str()
            .unwrap(),
    ]);
    resumed.expect_code(0);
    assert_eq!(
        std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap(),
        rows,
        "the resumed run logs what the uninterrupted one did"
    );
    assert_eq!(
        common::weights(&run_dir.join("checkpoints/last.safetensors")),
        common::weights(&reference),
        "final weights"
    );
}

#[test]
fn the_seeds_spellings_name_lightnings_precisions() {
    let scratch = Scratch::new("spellings");
    let (_, run) = train_ok(
        &scratch,
        common::SMALL,
        &["trainer.args.mixed_precision=true"],
    );
    assert!(
        run.stdout
            .contains("mixed_precision: true is `precision: bf16-mixed` on the CPU"),
        "{}",
        run.stdout
    );
    let (_, run) = train_ok(&scratch, common::SMALL, &["trainer.args.precision=16"]);
    assert!(
        run.stdout
            .contains("precision `16` is Lightning's old name of `16-mixed`"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("precision 16-mixed:"), "{}", run.stdout);
}

#[test]
fn precision_mistakes_are_refused_before_training() {
    let scratch = Scratch::new("mistakes");
    let config = scratch.write("exp.yaml", common::SMALL);
    let config = config.to_str().unwrap();
    let cases = [
        (
            vec![
                "trainer.args.precision=bf16-mixed",
                "environment.device=flex",
            ],
            "precision `bf16-mixed` runs on LibTorch devices",
        ),
        (
            vec!["trainer.args.precision={name: 16-mixed, args: {backoff_factor: 2.0}}"],
            "backoff_factor",
        ),
        (vec!["trainer.args.precision=16-true"], "16-true"),
        (
            vec![
                "trainer.args.precision=bf16-true",
                "trainer.args.mixed_precision=true",
            ],
            "`precision` is `bf16-true`, which is not mixed",
        ),
    ];
    for (sets, expected) in cases {
        let mut args = vec!["train", config];
        for set in &sets {
            args.extend(["--set", set]);
        }
        let run = scratch.stoker(&args);
        run.expect_code(2);
        assert!(run.stderr.contains(expected), "{sets:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("at: trainer.args.precision")
                || run.stderr.contains("at: trainer.args.mixed_precision"),
            "{sets:?} names where: {}",
            run.stderr
        );
    }
    assert!(!scratch.dir.join("out").exists(), "nothing written");
}

#[test]
fn a_trainer_plugin_takes_the_loops_precision_too() {
    // Every trainer that runs the loop reads its float type from the loop's arguments: the
    // quickstart under ProgressiveResizing_trainer (a schedule of the data's own size) with
    // bf16-true keeps its weights in bfloat16, as Default_trainer does.
    let scratch = Scratch::new("bf16true-plugin");
    let run = train_shipped(
        &scratch,
        "quickstart.yaml",
        "bf16-true",
        &[
            "trainer.name=ProgressiveResizing_trainer",
            "trainer.args.max_epochs=1",
            "trainer.args.schedule=[[0, 8]]",
        ],
    );
    let last = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "safetensors"))
        .expect("a checkpoint");
    let kept = dtypes(&last);
    assert!(!kept.is_empty());
    for (tensor, dtype) in kept {
        assert_eq!(dtype, "BF16", "{tensor} is kept in bfloat16");
    }
}
