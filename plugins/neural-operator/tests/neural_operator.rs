//! The neural-operator plugin end to end: the repository's Darcy configs on the FNO data in
//! `data/fno/`, zero-shot evaluation at a resolution the operator was not trained on, the
//! physics-informed variant, and a config whose modes do not fit the grid.

use stoker_testing as common;

use std::path::PathBuf;

use common::{Scratch, csv_rows, summary_f64};

fn repo(path: &str) -> PathBuf {
    common::workspace().join(path)
}

/// `--set` pairs that point a Darcy config at the repository's data and the scratch directory,
/// and keep the run short (two epochs of 10 batches).
fn short(scratch: &Scratch) -> Vec<String> {
    vec![
        format!(
            "data.args.train={}",
            repo("data/fno/darcy_train_16.npz").display()
        ),
        format!(
            "data.args.val={}",
            repo("data/fno/darcy_test_16.npz").display()
        ),
        format!(
            "data.args.test={{16: {}, 32: {}}}",
            repo("data/fno/darcy_test_16.npz").display(),
            repo("data/fno/darcy_test_32.npz").display()
        ),
        format!("environment.output_dir={}", scratch.path("runs").display()),
        "environment.device=cpu".into(),
        "trainer.args.max_epochs=2".into(),
        "trainer.args.limit_train_batches=10".into(),
    ]
}

fn train(scratch: &Scratch, config: &str, extra: &[&str]) -> (PathBuf, common::Run) {
    let mut args = vec!["train".to_string(), repo(config).display().to_string()];
    for set in short(scratch)
        .iter()
        .map(String::as_str)
        .chain(extra.iter().copied())
    {
        args.push("--set".into());
        args.push(set.into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = scratch.stoker(&args);
    run.expect_code(0);
    (run.run_dir(&scratch.dir), run)
}

#[test]
fn darcy_fno_trains_and_runs_zero_shot_at_twice_the_resolution() {
    let scratch = Scratch::new("darcy-fno");
    let (run_dir, run) = train(&scratch, "configs/darcy_fno.yaml", &[]);
    assert!(
        run.stdout.contains("FNO2d (1057281 parameters)"),
        "{}",
        run.stdout
    );
    // One run tests on both named sets: 16x16 and, zero-shot, 32x32.
    let at_16 = summary_f64(&run_dir, &["test_metrics", "test_16_rel_l2"]);
    let at_32 = summary_f64(&run_dir, &["test_metrics", "test_32_rel_l2"]);
    // Two short epochs already beat predicting zeros (relative error 1) by far.
    assert!(at_16 < 0.6, "test_16_rel_l2: {at_16}");
    assert!(at_32.is_finite() && at_32 < 0.8, "test_32_rel_l2: {at_32}");

    // `eval --split test_32` evaluates the 32x32 set again, with the last weights.
    let mut args = vec![
        "eval".to_string(),
        repo("configs/darcy_fno.yaml").display().to_string(),
        "--ckpt".into(),
        run_dir
            .join("checkpoints/last.safetensors")
            .display()
            .to_string(),
        "--split".into(),
        "test_32".into(),
        "--json".into(),
    ];
    for set in short(&scratch) {
        args.push("--set".into());
        args.push(set);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let eval = scratch.stoker(&args);
    eval.expect_code(0);
    let metrics: serde_json::Value =
        serde_json::from_str(eval.stdout.lines().last().unwrap()).unwrap();
    let evaluated = metrics["test_32_rel_l2"].as_f64().unwrap();
    assert!(
        evaluated.is_finite() && evaluated < 0.8,
        "test_32_rel_l2 by eval: {evaluated}"
    );
    assert_ne!(at_32, at_16, "the 32x32 file was not the one evaluated");
}

#[test]
fn the_physics_informed_variant_logs_its_terms() {
    let scratch = Scratch::new("darcy-physics");
    let (run_dir, _) = train(&scratch, "configs/darcy_fno_physics.yaml", &[]);
    let rows = csv_rows(&run_dir);
    let epoch = rows
        .iter()
        .find(|r| r.contains_key("train_loss_pde"))
        .expect("train_loss_pde is logged");
    let data: f64 = epoch["train_loss_data"].parse().unwrap();
    let pde: f64 = epoch["train_loss_pde"].parse().unwrap();
    let total: f64 = epoch["train_loss"].parse().unwrap();
    assert!(pde > 0.0);
    assert!(
        (total - (data + 1e-5 * pde)).abs() < 1e-4 * total,
        "{total} vs {data} + 1e-5 x {pde}"
    );
}

#[test]
fn modes_that_do_not_fit_the_grid_are_refused_with_the_largest_that_do() {
    let scratch = Scratch::new("darcy-modes");
    let mut args = vec![
        "check".to_string(),
        repo("configs/darcy_fno.yaml").display().to_string(),
    ];
    for set in short(&scratch)
        .into_iter()
        .chain(["model.args.modes=[9, 4]".to_string()])
    {
        args.push("--set".into());
        args.push(set);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let check = scratch.stoker(&args);
    assert_eq!(check.code, 2, "{}", check.stdout);
    assert!(
        check.stderr.contains("model.args.modes"),
        "{}",
        check.stderr
    );
    assert!(
        check.stderr.contains("use at most [8, 9]"),
        "{}",
        check.stderr
    );
}

#[test]
fn normalization_is_fitted_on_train_kept_with_the_run_and_undone_for_metrics() {
    let scratch = Scratch::new("darcy-normalize");
    // Per-pixel statistics serve the training resolution only: the 16x16 test set alone.
    let normalize = [
        "data.args.normalize={x: gaussian_pixel, y: gaussian_pixel}".to_string(),
        format!(
            "data.args.test={}",
            repo("data/fno/darcy_test_16.npz").display()
        ),
    ];

    // stats: the training split in physical units (numpy: x.mean() 0.499445, y.mean() 0.386316).
    let mut args = vec![
        "stats".to_string(),
        repo("configs/darcy_fno.yaml").display().to_string(),
    ];
    for set in short(&scratch).into_iter().chain(normalize.iter().cloned()) {
        args.extend(["--set".to_string(), set]);
    }
    args.extend([
        "--output".into(),
        scratch.path("norm.safetensors").display().to_string(),
    ]);
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let stats = scratch.stoker(&args_ref);
    stats.expect_code(0);
    let row = |name: &str| -> Vec<f64> {
        let line = stats
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{}", stats.stdout));
        line.split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap())
            .collect()
    };
    assert!((row("x")[0] - 0.499445).abs() < 1e-5, "{}", stats.stdout);
    assert!((row("y")[0] - 0.386316).abs() < 1e-5, "{}", stats.stdout);
    assert_eq!(
        common::tensor_names(&scratch.path("norm.safetensors")),
        ["x.scale", "x.shift", "y.scale", "y.shift"]
    );

    // Training: the loss sees normalized targets, the metrics physical ones.
    let (run_dir, run) = train(
        &scratch,
        "configs/darcy_fno.yaml",
        &[&normalize[0], &normalize[1], "loss=mse"],
    );
    assert!(
        run.stdout
            .contains("normalization fitted on the training split")
    );
    assert!(run_dir.join("normalization.safetensors").is_file());
    let y_shift = common::tensor_f32(&run_dir.join("normalization.safetensors"), "y.shift");
    assert_eq!(y_shift.len(), 256);
    let last = csv_rows(&run_dir)
        .into_iter()
        .rev()
        .find(|r| r.contains_key("train_mse"))
        .unwrap();
    let loss: f64 = last["train_loss"].parse().unwrap();
    let mse: f64 = last["train_mse"].parse().unwrap();
    // Pressure values are ~0.4 with per-pixel std ~0.23: the physical MSE is far below the
    // normalized one.
    assert!(mse < loss / 4.0, "train_mse {mse} vs train_loss {loss}");

    // Per-pixel statistics cannot serve another resolution: a clear error before training.
    let mut args = vec![
        "check".to_string(),
        repo("configs/darcy_fno.yaml").display().to_string(),
    ];
    for set in short(&scratch).into_iter().chain([
        normalize[0].clone(),
        format!(
            "data.args.test={}",
            repo("data/fno/darcy_test_32.npz").display()
        ),
    ]) {
        args.extend(["--set".to_string(), set]);
    }
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let check = scratch.stoker(&args_ref);
    assert_eq!(check.code, 2, "{}", check.stdout);
    assert!(
        check.stderr.contains("data.args.normalize.x"),
        "{}",
        check.stderr
    );
    assert!(
        check.stderr.contains("gaussian_channel"),
        "{}",
        check.stderr
    );
}
