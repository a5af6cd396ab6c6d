//! `PINN_trainer` through the `stoker` command: it trains the Darcy FNO with lambda logged at
//! every step, and resumes from the middle of an epoch exactly, lambda included.

use std::path::{Path, PathBuf};

use stoker_testing::{Scratch, csv_rows, summary, weights, workspace};

/// A small Darcy FNO (six batches of 20 per epoch, three epochs), lambda updated every two
/// steps, a checkpoint every four steps (mid-epoch) and at the end.
fn config(scratch: &Scratch) -> PathBuf {
    let data = |name: &str| workspace().join("data/fno").join(name);
    let text = format!(
        "\
name: pinn
environment: {{seed: 1, device: cpu, output_dir: out}}
data:
  name: TensorFile
  args: {{train: {train}, val: {test}, inputs: [x], targets: [y], batch_size: 20}}
model: {{name: FNO2d, args: {{modes: [4, 4], width: 8, layers: 2, projection: 16}}}}
loss: {{name: relative_lp, args: {{p: 2}}}}
metrics: [rel_l2]
optimizer: {{name: adam, args: {{lr: 1.0e-3}}}}
trainer:
  name: PINN_trainer
  args:
    max_epochs: 3
    limit_train_batches: 6
    limit_val_batches: 2
    log_every_n_steps: 1
    residual: {{name: darcy_residual, args: {{source: 1.0, coefficient: x}}}}
    lambda: 1.0e-4
    update_every: 2
callbacks:
  - {{name: ModelCheckpoint, args: {{every_n_train_steps: 4, save_top_k: -1, save_last: true}}}}
",
        train = data("darcy_train_16.npz").display(),
        test = data("darcy_test_16.npz").display(),
    );
    scratch.write("pinn.yaml", &text)
}

/// lambda per step, from metrics.csv.
fn lambdas(run_dir: &Path) -> Vec<(usize, f64)> {
    csv_rows(run_dir)
        .into_iter()
        .filter_map(|r| {
            let lambda = r.get("lambda_pde")?.parse().ok()?;
            Some((r["step"].parse().unwrap(), lambda))
        })
        .collect()
}

#[test]
fn lambda_is_logged_every_step_and_moves_only_at_updates() {
    let scratch = Scratch::new("pinn-lambda");
    let config = config(&scratch);
    let run = scratch.stoker(&["train", config.to_str().unwrap()]);
    run.expect_code(0);
    let dir = run.run_dir(&scratch.dir);
    let lambdas = lambdas(&dir);
    let steps: Vec<usize> = lambdas.iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, (1..=18).collect::<Vec<_>>());
    // Updated in the steps that start at 0, 2, 4, ...: logged at steps 1, 3, 5, ...; step 2
    // keeps step 1's value.
    for pair in lambdas.chunks(2) {
        assert_eq!(pair[0].1, pair[1].1, "{lambdas:?}");
    }
    assert!(
        lambdas[0].1 != 1.0e-4,
        "the first step updates lambda: {lambdas:?}"
    );
    assert!(lambdas.iter().all(|(_, l)| l.is_finite() && *l > 0.0));
    let s = summary(&dir);
    for key in [
        "train_loss_data",
        "train_loss_pde",
        "val_loss_pde",
        "lambda_pde",
    ] {
        assert!(s["final_metrics"][key].is_number(), "{key}: {s}");
    }
    // val_loss is the data loss alone.
    assert_eq!(
        s["final_metrics"]["val_loss"],
        s["final_metrics"]["val_loss_data"]
    );
}

#[test]
fn resuming_in_the_middle_of_an_epoch_is_exact() {
    let scratch = Scratch::new("pinn-resume");
    let config = config(&scratch);
    let config = config.to_str().unwrap();
    let full = scratch.stoker(&["train", config]);
    full.expect_code(0);
    let dir = full.run_dir(&scratch.dir);
    let rows = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let last = weights(&dir.join("checkpoints/last.safetensors"));
    let final_metrics = summary(&dir)["final_metrics"].clone();

    // Step 8 is the 2nd step of epoch 1: lambda was last updated at step 6.
    let mid = dir.join("checkpoints/epoch=1-step=8.safetensors");
    let resumed = scratch.stoker(&["train", config, "--resume", mid.to_str().unwrap()]);
    resumed.expect_code(0);
    assert!(
        resumed
            .stdout
            .contains("at epoch 1, batch 2 of the epoch, step 8"),
        "{}",
        resumed.stdout
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("metrics.csv")).unwrap(),
        rows
    );
    assert_eq!(weights(&dir.join("checkpoints/last.safetensors")), last);
    assert_eq!(summary(&dir)["final_metrics"], final_metrics);
}
