//! `stoker train`: the quickstart on both backends, the run directory, seeding, overrides,
//! `extends:`, reloading the final checkpoint, and reading it from PyTorch.

mod common;

use common::{SMALL, Scratch, quickstart, shared_data, summary};

fn metrics_rows(run_dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(run_dir.join("metrics.csv"))
        .expect("metrics.csv exists")
        .lines()
        .map(str::to_string)
        .collect()
}

fn train_quickstart_on(device: &str) {
    let scratch = Scratch::new(&format!("quickstart-{device}"));
    let config = quickstart();
    let run = scratch.stoker(&[
        "train",
        config.to_str().unwrap(),
        "--set",
        &format!("environment.device={device}"),
    ]);
    run.expect_code(0);
    let run_dir = run.run_dir(&scratch.dir);
    assert!(
        run_dir.ends_with("runs/quickstart/version_0"),
        "{}",
        run_dir.display()
    );
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("epoch "))
            .count(),
        20,
        "{}",
        run.stdout
    );

    let s = summary(&run_dir);
    for key in [
        "run_dir",
        "final_metrics",
        "best_metrics",
        "epochs",
        "global_step",
        "wall_seconds",
        "best_checkpoint",
        "last_checkpoint",
    ] {
        assert!(s.get(key).is_some(), "summary.json lacks {key}: {s}");
    }
    assert_eq!(s["epochs"], 20);
    // 4096 samples, 20% held out: 3277 training samples in batches of 64.
    assert_eq!(s["global_step"], 20 * 52);
    let val_mse = s["final_metrics"]["val_mse"].as_f64().unwrap();
    // The target's own noise has variance 0.05^2 = 0.0025; the MLP gets within a few times that.
    assert!(
        val_mse < 0.02,
        "the quickstart did not learn: val_mse {val_mse}"
    );
    for key in ["best_checkpoint", "last_checkpoint"] {
        let path = std::path::PathBuf::from(s[key].as_str().unwrap());
        assert!(path.is_file(), "{key} {} is not a file", path.display());
    }
    assert_eq!(
        std::path::PathBuf::from(s["run_dir"].as_str().unwrap()),
        std::path::absolute(&run_dir).unwrap()
    );

    let rows = metrics_rows(&run_dir);
    assert_eq!(
        rows[0],
        "epoch,step,train_loss_step,lr,train_loss,train_mse,val_loss,val_mse"
    );
    // One row per epoch, and one per 50 steps (log_every_n_steps) for train_loss_step.
    assert_eq!(
        rows.iter().filter(|r| r.ends_with(",,,,")).count(),
        1040 / 50
    );
    assert_eq!(rows.len(), 1 + 20 + 1040 / 50);
    let config_yaml = std::fs::read_to_string(run_dir.join("config.yaml")).unwrap();
    assert!(
        config_yaml.contains(&format!("device: {device}")),
        "{config_yaml}"
    );
    assert!(config_yaml.contains("activation: gelu"), "{config_yaml}");
    // Not a terminal: one plain line per epoch, no progress bar, no control codes.
    assert!(!run.stdout.contains('\x1b'), "{}", run.stdout);
    assert!(run.stdout.contains("model summary"), "{}", run.stdout);
    assert!(
        run.stdout.contains("parameters: ") && run.stdout.contains("trainable"),
        "{}",
        run.stdout
    );
    // After it ends: the report, its plots, the application log.
    let report = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(report.contains("<svg") && report.contains("val_mse"));
    for plot in ["loss", "mse", "lr"] {
        assert!(
            run_dir.join("plots").join(format!("{plot}.png")).is_file(),
            "{plot}.png"
        );
    }
    let log = std::fs::read_to_string(run_dir.join("run.log")).unwrap();
    assert!(
        log.contains("resolved config:") && log.contains("activation: gelu"),
        "{log}"
    );
    assert!(
        log.contains(&format!("device {device}")) || log.contains("device "),
        "{log}"
    );
    assert!(
        log.contains("epoch 20/20") && log.contains("fit took"),
        "{log}"
    );
    // The resolved config is itself a valid experiment.
    scratch
        .stoker(&["check", run_dir.join("config.yaml").to_str().unwrap()])
        .expect_code(0);
}

#[test]
fn quickstart_trains_on_libtorch_cpu() {
    train_quickstart_on("cpu");
}

#[test]
fn quickstart_trains_on_flex() {
    train_quickstart_on("flex");
}

#[test]
fn the_same_seed_gives_identical_metrics_and_another_seed_does_not() {
    let scratch = Scratch::new("seeded");
    let config = scratch.write("small.yaml", SMALL);
    let config = config.to_str().unwrap();
    let mut dirs = Vec::new();
    for seed in ["7", "7", "8"] {
        let run = scratch.stoker(&[
            "train",
            config,
            "--set",
            &format!("environment.seed={seed}"),
        ]);
        run.expect_code(0);
        dirs.push(run.run_dir(&scratch.dir));
    }
    assert!(dirs[1].ends_with("out/small/version_1"));
    let rows: Vec<Vec<String>> = dirs.iter().map(|d| metrics_rows(d)).collect();
    assert_eq!(rows[0], rows[1], "two runs with seed 7 differ");
    assert_ne!(rows[0], rows[2], "seeds 7 and 8 gave the same metrics");
    assert_eq!(
        summary(&dirs[0])["final_metrics"],
        summary(&dirs[1])["final_metrics"]
    );
}

#[test]
fn set_and_output_dir_override_the_file() {
    let scratch = Scratch::new("overrides");
    let config = scratch.write("small.yaml", SMALL);
    let run = scratch.stoker(&[
        "train",
        config.to_str().unwrap(),
        "--set",
        "trainer.args.max_epochs=2",
        "--set",
        "model.args.sizes=[4, 8, 8, 1]",
        "--set",
        "name=renamed",
        "--output-dir",
        "elsewhere",
    ]);
    run.expect_code(0);
    let run_dir = run.run_dir(&scratch.dir);
    assert!(
        run_dir.ends_with("elsewhere/renamed/version_0"),
        "{}",
        run_dir.display()
    );
    // 2 epochs of 13 steps: two epoch rows, no step rows (log_every_n_steps is 50).
    assert_eq!(metrics_rows(&run_dir).len(), 3);
    let config_yaml = std::fs::read_to_string(run_dir.join("config.yaml")).unwrap();
    assert!(config_yaml.contains("max_epochs: 2"), "{config_yaml}");
    assert!(
        config_yaml.contains("sizes:\n    - 4\n    - 8\n    - 8\n    - 1\n"),
        "{config_yaml}"
    );
}

#[test]
fn extends_inherits_and_overrides_keys() {
    let scratch = Scratch::new("extends");
    scratch.write("base/small.yaml", SMALL);
    let child = scratch.write(
        "child.yaml",
        "extends: base/small.yaml\nname: child\nmodel: {args: {sizes: [4, 32, 1], activation: tanh}}\noptimizer: {name: sgd, args: {lr: 0.05, momentum: 0.9}}\n",
    );
    let run = scratch.stoker(&[
        "train",
        child.to_str().unwrap(),
        "--set",
        "trainer.args.max_epochs=1",
    ]);
    run.expect_code(0);
    let run_dir = run.run_dir(&scratch.dir);
    assert!(run_dir.ends_with("out/child/version_0"));
    let config_yaml = std::fs::read_to_string(run_dir.join("config.yaml")).unwrap();
    for expected in [
        "activation: tanh",
        "name: sgd",
        "momentum: 0.9",
        "n_features: 4",
        "max_epochs: 1",
    ] {
        assert!(
            config_yaml.contains(expected),
            "`{expected}` missing from\n{config_yaml}"
        );
    }
    assert!(
        !config_yaml.contains("betas"),
        "adam's args leaked into sgd:\n{config_yaml}"
    );
}

#[test]
fn the_final_checkpoint_loads_again_and_pytorch_reads_it() {
    let scratch = Scratch::new("checkpoint");
    let config = scratch.write(
        "small.yaml",
        &SMALL.replace("[4, 16, 1]", "[4, 16, 1], dropout: 0.1"),
    );
    let run = scratch.stoker(&["train", config.to_str().unwrap()]);
    run.expect_code(0);
    let s = summary(&run.run_dir(&scratch.dir));
    let last = s["last_checkpoint"].as_str().unwrap();

    let eval = scratch.stoker(&["eval", config.to_str().unwrap(), "--ckpt", last, "--json"]);
    eval.expect_code(0);
    let metrics: serde_json::Value =
        serde_json::from_str(eval.stdout.lines().last().unwrap()).unwrap();
    for key in ["val_loss", "val_mse"] {
        let reloaded = metrics[key].as_f64().unwrap();
        let trained = s["final_metrics"][key].as_f64().unwrap();
        assert!(
            (reloaded - trained).abs() <= 1e-9 * trained.abs(),
            "{key}: {reloaded} after reload, {trained} in training"
        );
    }

    // PyTorch reads the weights, in its own layout (nn.Linear weight is [out, in]).
    let py = scratch.python(&format!(
        "from safetensors.torch import load_file\n\
         t = load_file({last:?})\n\
         print(sorted((k, list(v.shape)) for k, v in t.items() if not k.startswith('__stoker')))\n"
    ));
    py.expect_code(0);
    assert_eq!(
        py.stdout.trim(),
        "[('layers.0.bias', [16]), ('layers.0.weight', [16, 4]), ('layers.1.bias', [1]), ('layers.1.weight', [1, 16])]"
    );

    let other = scratch.write("other.yaml", &SMALL.replace("[4, 16, 1]", "[4, 8, 1]"));
    let mismatch = scratch.stoker(&["eval", other.to_str().unwrap(), "--ckpt", last]);
    mismatch.expect_code(2);
    assert!(
        mismatch.stderr.contains("do not fit this model"),
        "{}",
        mismatch.stderr
    );
}

#[test]
fn classification_learns_with_cross_entropy_and_accuracy() {
    let scratch = Scratch::new("classification");
    let config = scratch.write(
        "cls.yaml",
        "name: cls\nenvironment: {device: cpu, output_dir: out}\n\
         data: {name: SyntheticClassification, args: {n_samples: 900, n_classes: 3, batch_size: 50}}\n\
         model: {name: MLP, args: {sizes: [8, 32, 3]}}\nloss: cross_entropy\nmetrics: [accuracy]\n\
         optimizer: {name: adamw, args: {lr: 0.01}}\ntrainer: {name: Default_trainer, args: {max_epochs: 5}}\n\
         callbacks: [{name: ModelCheckpoint, args: {monitor: val_accuracy, mode: max}}]\n",
    );
    let run = scratch.stoker(&["train", config.to_str().unwrap()]);
    run.expect_code(0);
    let s = summary(&run.run_dir(&scratch.dir));
    assert_eq!(s["monitor"], "val_accuracy");
    let accuracy = s["best_metrics"]["val_accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.9, "val_accuracy {accuracy}");
}

#[test]
fn tensor_file_with_a_separate_test_file_on_the_darcy_data() {
    let scratch = Scratch::new("tensorfile");
    let (Some(train), Some(test)) = (
        shared_data("darcy_train_16.npz"),
        shared_data("darcy_test_16.npz"),
    ) else {
        eprintln!("skipped: ../shared/data is not on this machine");
        return;
    };
    let config = scratch.write(
        "darcy.yaml",
        &format!(
            "name: darcy-mlp\nenvironment: {{device: cpu, output_dir: out}}\n\
             data: {{name: TensorFile, args: {{train: {train:?}, test: {test:?}, inputs: [x], targets: [y], val_fraction: 0.1, batch_size: 50}}}}\n\
             model: {{name: MLP, args: {{sizes: [256, 64, 256]}}}}\nloss: mse\nmetrics: [mse]\n\
             optimizer: adam\ntrainer: {{name: Default_trainer, args: {{max_epochs: 2}}}}\n",
            train = train.display(),
            test = test.display()
        ),
    );
    let run = scratch.stoker(&["train", config.to_str().unwrap()]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("train 900, val 100, test 50 samples"),
        "{}",
        run.stdout
    );
    let eval = scratch.stoker(&[
        "eval",
        config.to_str().unwrap(),
        "--ckpt",
        summary(&run.run_dir(&scratch.dir))["best_checkpoint"]
            .as_str()
            .unwrap(),
        "--split",
        "test",
    ]);
    eval.expect_code(0);
    assert!(eval.stdout.contains("test_mse "), "{}", eval.stdout);
}

#[test]
fn npz_written_by_numpy_with_integer_labels() {
    let scratch = Scratch::new("npz");
    scratch
        .python(
            "import numpy as np\n\
             rng = np.random.default_rng(0)\n\
             x = rng.normal(size=(300, 2, 3)).astype(np.float64)\n\
             y = (x.reshape(300, -1).sum(1) > 0).astype(np.int32)\n\
             np.savez_compressed('blobs.npz', features=x, label=y)\n",
        )
        .expect_code(0);
    let config = scratch.write(
        "npz.yaml",
        "name: npz\nenvironment: {device: cpu, output_dir: out}\n\
         data: {name: TensorFile, args: {train: blobs.npz, inputs: [features], targets: [label], val_fraction: 0.2, test_fraction: 0.1}}\n\
         model: {name: MLP, args: {sizes: [6, 16, 2], input: features, output: logits}}\n\
         loss: {name: cross_entropy, args: {pred: logits, target: label}}\n\
         metrics: [{name: accuracy, args: {pred: logits, target: label}}]\n\
         optimizer: {name: adam, args: {lr: 0.02}}\ntrainer: {name: Default_trainer, args: {max_epochs: 8}}\n",
    );
    let run = scratch.stoker(&["train", config.to_str().unwrap()]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("train 210, val 60, test 30 samples"),
        "{}",
        run.stdout
    );
    let s = summary(&run.run_dir(&scratch.dir));
    assert!(
        s["final_metrics"]["val_accuracy"].as_f64().unwrap() > 0.8,
        "{s}"
    );
}

#[test]
fn fortran_ordered_npz_and_safetensors_hold_the_same_data() {
    let scratch = Scratch::new("orders");
    scratch
        .python(
            "import numpy as np\n\
             from safetensors.numpy import save_file\n\
             rng = np.random.default_rng(1)\n\
             x = np.asfortranarray(rng.normal(size=(200, 3, 4)).astype(np.float32))\n\
             y = np.asfortranarray(np.sin(x.sum(axis=2)))\n\
             assert not x.flags['C_CONTIGUOUS']\n\
             np.savez('f.npz', x=x, y=y)\n\
             save_file({'x': np.ascontiguousarray(x), 'y': np.ascontiguousarray(y)}, 'c.safetensors')\n",
        )
        .expect_code(0);
    let config = scratch.write(
        "orders.yaml",
        "name: orders\nenvironment: {device: cpu, output_dir: out}\n\
         data: {name: TensorFile, args: {train: f.npz, inputs: [x], targets: [y], val_fraction: 0.25}}\n\
         model: {name: MLP, args: {sizes: [12, 16, 3]}}\nloss: mse\noptimizer: adam\n\
         trainer: {name: Default_trainer, args: {max_epochs: 2}}\n",
    );
    let npz = scratch.stoker(&["train", config.to_str().unwrap()]);
    npz.expect_code(0);
    let safetensors = scratch.stoker(&[
        "train",
        config.to_str().unwrap(),
        "--set",
        "data.args.train=c.safetensors",
    ]);
    safetensors.expect_code(0);
    let metrics =
        |dir: std::path::PathBuf| std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(
        metrics(npz.run_dir(&scratch.dir)),
        metrics(safetensors.run_dir(&scratch.dir))
    );
}
