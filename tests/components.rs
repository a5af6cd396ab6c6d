//! The component library end to end: the classification example (warm-up schedule, composite
//! loss, classification metrics), the optimizer presets, a physics-informed loss, and `list`.

mod common;

use common::{Scratch, csv_rows, npz, summary, train_ok};

fn repo(path: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

#[test]
fn the_classification_example_trains_with_its_composite_loss_and_metrics() {
    let scratch = Scratch::new("classification-example");
    let run = scratch.stoker(&[
        "train",
        &repo("configs/classification.yaml"),
        "--set",
        "trainer.args.max_epochs=2",
        "--output-dir",
        "out",
    ]);
    run.expect_code(0);
    let dir = run.run_dir(&scratch.dir);
    let rows = csv_rows(&dir);
    for column in [
        "train_loss_ce",
        "train_loss_focal",
        "val_f1_macro",
        "val_top2_accuracy",
        "val_precision_class3",
        "lr-adamw",
        "test_accuracy",
    ] {
        assert!(
            rows.iter().any(|r| r.contains_key(column)),
            "no {column} in metrics.csv"
        );
    }
    // The warm-up starts from 0 and rises linearly over 50 steps.
    let lrs: Vec<(u64, f64)> = rows
        .iter()
        .filter_map(|r| Some((r["step"].parse().ok()?, r.get("lr-adamw")?.parse().ok()?)))
        .collect();
    assert_eq!(lrs[0], (0, 0.0));
    let at_20 = lrs.iter().find(|(s, _)| *s == 20).unwrap().1;
    assert!((at_20 - 3.0e-3 * 20.0 / 50.0).abs() < 1e-12, "{at_20}");
    // The composite's total is ce + 0.5 focal.
    let last = rows
        .iter()
        .rev()
        .find(|r| r.contains_key("val_loss"))
        .unwrap();
    let value = |k: &str| last[k].parse::<f64>().unwrap();
    assert!(
        (value("val_loss") - (value("val_loss_ce") + 0.5 * value("val_loss_focal"))).abs() < 1e-5
    );
    let matrix = std::fs::read_to_string(dir.join("confusion_matrix_val.csv")).unwrap();
    assert_eq!(matrix.lines().count(), 5, "{matrix}");
    let counted: u64 = matrix
        .lines()
        .skip(1)
        .flat_map(|l| {
            l.split(',')
                .skip(1)
                .map(|v| v.parse::<u64>().unwrap())
                .collect::<Vec<_>>()
        })
        .sum();
    assert_eq!(counted, 600, "the validation split has 600 samples");
    assert!(
        summary(&dir)["test_metrics"]["test_f1_macro"]
            .as_f64()
            .unwrap()
            > 0.5
    );
}

#[test]
fn the_optimizer_presets_extend_an_experiment() {
    let scratch = Scratch::new("presets");
    for preset in [
        "default",
        "fast_convergence",
        "strong_regularization",
        "sgd_baseline",
    ] {
        let config = scratch.write(
            &format!("{preset}.yaml"),
            &format!(
                "extends: [{}, {}]\nenvironment: {{device: cpu, output_dir: out}}\n",
                repo("configs/quickstart.yaml"),
                repo(&format!("configs/presets/{preset}.yaml"))
            ),
        );
        let run = scratch.stoker(&["check", config.to_str().unwrap()]);
        run.expect_code(0);
    }
    // A group pattern that matches nothing is reported with the model's parameters.
    let config = scratch.write(
        "typo.yaml",
        &format!("extends: {}\noptimizer: {{name: adamw, args: {{groups: [{{params: ['*.bais'], weight_decay: 0.0}}]}}}}\n", repo("configs/quickstart.yaml")),
    );
    let run = scratch.stoker(&["check", config.to_str().unwrap()]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("at: optimizer.args.groups[0].params"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("the parameters are: layers.0.weight, layers.0.bias"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_physics_informed_loss_logs_each_term() {
    let scratch = Scratch::new("physics");
    // u(x) = x (1 - x) / 2 solves -u'' = 1 with u(0) = u(1) = 0; samples are scaled copies.
    npz(
        &scratch,
        "poisson",
        "x = np.linspace(0, 1, 17)\nscale = rng.uniform(0.5, 1.5, size=(256, 1))\n\
         arrays['a'] = np.broadcast_to(scale, (256, 17)).astype(np.float32)\narrays['u'] = (scale * x * (1 - x) / 2).astype(np.float32)",
    );
    let config = "name: pinn\nenvironment: {device: cpu, output_dir: out}\n\
        data: {name: TensorFile, args: {train: poisson.npz, inputs: [a], targets: [u], val_fraction: 0.25}}\n\
        model: {name: MLP, args: {sizes: [17, 64, 17], input: a}}\n\
        loss: {name: physics_informed, args: {data: {name: mse, args: {target: u}}, residual: {name: poisson_residual}, boundary: {name: dirichlet_boundary}, conservation: {mass: 1.0, target: u}, weights: {pde: 1.0e-4}}}\n\
        metrics: [{name: rel_l2, args: {target: u}}]\noptimizer: {name: adam, args: {lr: 0.003}}\ntrainer: {name: Default_trainer, args: {max_epochs: 5}}\n";
    let (dir, _) = train_ok(&scratch, config, &[]);
    let rows = csv_rows(&dir);
    for column in [
        "train_loss_data",
        "train_loss_pde",
        "train_loss_boundary",
        "train_loss_conservation",
        "val_rel_l2",
    ] {
        assert!(rows.iter().any(|r| r.contains_key(column)), "no {column}");
    }
    // The typo'd physics term is an error at its YAML path.
    let bad = scratch.write(
        "bad.yaml",
        &config.replace("poisson_residual", "poison_residual"),
    );
    let run = scratch.stoker(&["check", bad.to_str().unwrap()]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("at: loss.args.residual.name")
            && run.stderr.contains("did you mean `poisson_residual`?"),
        "{}",
        run.stderr
    );
}

#[test]
fn list_shows_the_whole_library() {
    let scratch = Scratch::new("library");
    let run = scratch.stoker(&["list"]);
    run.expect_code(0);
    let names = [
        "optimizer sgd",
        "optimizer adam",
        "optimizer adamw",
        "optimizer rmsprop",
        "optimizer adagrad",
        "optimizer adabound",
        "scheduler constant",
        "scheduler step",
        "scheduler multistep",
        "scheduler exponential",
        "scheduler cosine",
        "scheduler cosine_restarts",
        "scheduler onecycle",
        "scheduler plateau",
        "scheduler polynomial",
        "scheduler warmup",
        "scheduler warmup_cosine",
        "scheduler warmup_linear",
        "scheduler noam",
        "loss mse",
        "loss l1",
        "loss huber",
        "loss smooth_l1",
        "loss cross_entropy",
        "loss label_smoothing_cross_entropy",
        "loss bce_with_logits",
        "loss focal",
        "loss relative_lp",
        "loss h1",
        "loss distillation",
        "loss supcon",
        "loss weighted_sum",
        "loss physics_informed",
        "loss conservation",
        "physics poisson_residual",
        "physics dirichlet_boundary",
        "metric mse",
        "metric mae",
        "metric rmse",
        "metric r2",
        "metric rel_l2",
        "metric max_error",
        "metric accuracy",
        "metric top_k_accuracy",
        "metric precision",
        "metric recall",
        "metric f1",
        "metric per_class",
        "metric confusion_matrix",
    ];
    for name in names {
        assert!(
            run.stdout.contains(&format!("{name}  [")),
            "`{name}` is not listed"
        );
    }
}
