//! The fluid-dynamics plugin end to end: the quick Burgers config trains a FluidDecoder and
//! evaluates it by autoregressive rollout, writing the per-step table.

use stoker_testing as common;

use common::{Scratch, summary_f64};

#[test]
fn burgers_quick_test_rolls_out_every_step_and_writes_the_table() {
    let scratch = Scratch::new("burgers");
    let repo = common::workspace();
    let config = repo.join("configs/burgers_decoder_quick.yaml");
    let data = format!(
        "data.args.file={}",
        repo.join("data/fno/burgers_lowres.npz").display()
    );
    let out = format!("environment.output_dir={}", scratch.path("runs").display());
    let run = scratch.stoker(&[
        "train",
        config.to_str().unwrap(),
        "--set",
        &data,
        "--set",
        &out,
        "--set",
        "environment.device=cpu",
    ]);
    run.expect_code(0);
    let run_dir = run.run_dir(&scratch.dir);
    // 64 test trajectories (max_samples), each rolled out over 16 steps.
    let table = std::fs::read_to_string(run_dir.join("rollout_steps_test.csv")).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "step,rel_l2,mse,mae");
    assert_eq!(lines.len(), 17, "{table}");
    for key in [
        "test_rollout_rel_l2",
        "test_rollout_mse",
        "test_rollout_boundary_mae",
        "test_rollout_mean_drift",
    ] {
        let value = summary_f64(&run_dir, &["test_metrics", key]);
        assert!(value.is_finite() && value >= 0.0, "{key} = {value}");
    }
    // The truth conserves the mean (periodic Burgers); the data must show it.
    assert!(summary_f64(&run_dir, &["test_metrics", "test_rollout_mean_drift_true"]) < 1e-4);
    // Training steps do not roll out: no train_rollout_* values.
    let csv = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    assert!(!csv.lines().next().unwrap().contains("train_rollout"));
    assert!(csv.lines().next().unwrap().contains("val_rollout_rel_l2"));
}
