//! Bad input exits with status 2 before training starts, names the file, the YAML path and a
//! fix, and leaves no run directory behind.

mod common;

use common::{Run, SMALL, Scratch};

/// Trains `config_text` (with `sets`) and checks the failure: exit 2, the message, the file,
/// the YAML path and the hint, and that `out/` (the output directory) was never created.
fn rejected(
    name: &str,
    config_text: &str,
    sets: &[&str],
    message: &str,
    file: &str,
    yaml_path: Option<&str>,
    hint: &str,
) -> Run {
    let scratch = Scratch::new(name);
    let config = scratch.write("exp.yaml", config_text);
    let mut args = vec!["train", config.to_str().unwrap()];
    for set in sets {
        args.extend(["--set", set]);
    }
    let run = scratch.stoker(&args);
    run.expect_code(2);
    let err = &run.stderr;
    assert!(err.contains(message), "no `{message}` in:\n{err}");
    let location = err
        .lines()
        .find(|l| l.trim_start().starts_with("--> "))
        .unwrap_or_default();
    assert!(
        location.contains(file),
        "no file `{file}` in the location line of:\n{err}"
    );
    if let Some(path) = yaml_path {
        assert!(
            err.contains(&format!("at: {path}\n")),
            "no YAML path `{path}` in:\n{err}"
        );
    }
    assert!(
        err.contains(&format!("hint: {hint}")) || err.contains(hint),
        "no hint `{hint}` in:\n{err}"
    );
    assert!(
        !scratch.path("out").exists(),
        "a run directory was left behind"
    );
    assert!(
        !run.stdout.contains("epoch "),
        "training started:\n{}",
        run.stdout
    );
    run
}

#[test]
fn unknown_component_lists_the_closest_names() {
    rejected(
        "unknown-component",
        &SMALL.replace("name: MLP", "name: MPL"),
        &[],
        "unknown model `MPL`",
        "exp.yaml",
        Some("model.name"),
        "did you mean `MLP`?",
    );
    rejected(
        "unknown-optimizer",
        SMALL,
        &["optimizer.name=adamm"],
        "unknown optimizer `adamm`",
        "--set optimizer.name=adamm",
        Some("optimizer.name"),
        "did you mean `adam` or `adamw`?",
    );
}

#[test]
fn unknown_argument_names_the_known_ones() {
    let run = rejected(
        "unknown-arg",
        &SMALL.replace("sizes:", "sizez:"),
        &[],
        "unknown field `sizez`",
        "exp.yaml",
        Some("model.args.sizez"),
        "did you mean `sizes`?",
    );
    assert!(
        run.stderr.contains("sizes (Vec<usize>, required)"),
        "{}",
        run.stderr
    );
}

#[test]
fn wrong_type_points_into_the_value() {
    rejected(
        "wrong-type",
        &SMALL.replace("[4, 16, 1]", "[4, sixteen, 1]"),
        &[],
        "invalid type: string \"sixteen\", expected usize",
        "exp.yaml",
        Some("model.args.sizes[1]"),
        "`sizes` is Vec<usize>",
    );
    rejected(
        "wrong-type-set",
        SMALL,
        &["trainer.args.max_epochs=three"],
        "expected usize",
        "--set trainer.args.max_epochs=three",
        Some("trainer.args.max_epochs"),
        "`max_epochs` is Option<usize>",
    );
}

#[test]
fn missing_required_argument_says_what_to_add() {
    rejected(
        "missing-arg",
        &SMALL.replace("args: {sizes: [4, 16, 1]}", "args: {activation: tanh}"),
        &[],
        "missing field `sizes`",
        "exp.yaml",
        Some("model.args"),
        "add `sizes: <Vec<usize>>`",
    );
}

#[test]
fn missing_data_file_is_named() {
    let config = SMALL.replace(
        "{name: SyntheticRegression, args: {n_samples: 512, n_features: 4, batch_size: 32}}",
        "{name: TensorFile, args: {train: data/missing.npz, inputs: [x], targets: [y]}}",
    );
    rejected(
        "missing-file",
        &config,
        &[],
        "data file `data/missing.npz` does not exist",
        "exp.yaml",
        Some("data.args.train"),
        "relative to the current directory",
    );
}

#[test]
fn tensor_name_not_in_the_file_lists_the_names() {
    let scratch_name = "missing-tensor";
    // A safetensors file with tensors a and b, written without any helper library.
    let scratch = Scratch::new(&format!("{scratch_name}-data"));
    let header = br#"{"a":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2,1],"data_offsets":[8,16]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 16]);
    let file = scratch.path("ab.safetensors");
    std::fs::write(&file, bytes).unwrap();
    let config = SMALL.replace(
        "{name: SyntheticRegression, args: {n_samples: 512, n_features: 4, batch_size: 32}}",
        &format!(
            "{{name: TensorFile, args: {{train: {:?}, inputs: [a], targets: [c]}}}}",
            file.display().to_string()
        ),
    );
    rejected(
        scratch_name,
        &config,
        &[],
        "has no tensor named `c`",
        "exp.yaml",
        Some("data.args.targets[0]"),
        "the file has: a, b",
    );
}

#[test]
fn yaml_syntax_error_gives_line_and_column() {
    let broken = "name: broken\nmodel:\n  name: MLP\n   args: {sizes: [4, 1]}\n";
    rejected(
        "syntax",
        broken,
        &[],
        "YAML syntax error",
        "exp.yaml:4:",
        None,
        "fix the YAML syntax",
    );
}

#[test]
fn other_mistakes_are_caught_too() {
    rejected(
        "top-level",
        &format!("{SMALL}traner: {{}}\n"),
        &[],
        "unknown top-level key `traner`",
        "exp.yaml",
        Some("traner"),
        "did you mean `trainer`?",
    );
    rejected(
        "device",
        SMALL,
        &["environment.device=tpu"],
        "unknown device `tpu`",
        "--set environment.device=tpu",
        Some("environment.device"),
        "auto, cpu, cuda, cuda:N, flex",
    );
    rejected(
        "shape",
        SMALL,
        &["model.args.sizes=[5, 1]"],
        "sizes[0] is 5 but each sample of `x` has 4 values",
        "--set model.args.sizes=[5, 1]",
        Some("model.args.sizes[0]"),
        "set sizes[0] to 4",
    );
    rejected(
        "target-kind",
        SMALL,
        &["loss=cross_entropy"],
        "cross_entropy needs integer class labels",
        "--set loss=cross_entropy",
        Some("loss.args.target"),
        "point `target` at a tensor of integer values",
    );
    rejected(
        "names",
        SMALL,
        &["model.args.output=out"],
        "no tensor named `pred` in the model output (it has: out)",
        "exp.yaml",
        Some("model"),
        "check that the tensor names agree",
    );
    rejected(
        "extends",
        "extends: nowhere.yaml\n",
        &[],
        "cannot read the config file",
        "nowhere.yaml",
        Some("extends"),
        "paths there are relative to that file",
    );
    rejected(
        "bad-set",
        SMALL,
        &["trainer.args.max_epochs"],
        "an override is KEY=VALUE",
        "--set trainer.args.max_epochs",
        None,
        "--set trainer.args.max_epochs=5",
    );
    rejected(
        "no-model",
        &SMALL.replace("model: {name: MLP, args: {sizes: [4, 16, 1]}}\n", ""),
        &[],
        "the config has no `model:` section",
        "exp.yaml",
        None,
        "FluidDecoder, MLP, MultiTFR_CNN, NeuralopFNO, ResMLP",
    );
}

#[test]
fn check_reports_the_same_errors_without_writing() {
    let scratch = Scratch::new("check-bad");
    let config = scratch.write("exp.yaml", &SMALL.replace("name: MLP", "name: MPL"));
    let run = scratch.stoker(&["check", config.to_str().unwrap()]);
    run.expect_code(2);
    assert!(run.stderr.contains("unknown model `MPL`"), "{}", run.stderr);
    assert!(!scratch.path("out").exists());
}

#[test]
fn a_file_that_is_not_a_checkpoint_is_refused() {
    let scratch = Scratch::new("bad-ckpt");
    let config = scratch.write("exp.yaml", SMALL);
    let junk = scratch.write("junk.safetensors", "not a checkpoint");
    let run = scratch.stoker(&[
        "eval",
        config.to_str().unwrap(),
        "--ckpt",
        junk.to_str().unwrap(),
    ]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("not a readable stoker checkpoint"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("junk.safetensors"), "{}", run.stderr);
}

/// A monitor nothing logs is refused before training (by `check` and `train`), with the YAML
/// path and the names the run would log: with the metrics of `burgers_decoder.yaml` removed,
/// its `ModelCheckpoint` used to fail only after an epoch.
#[test]
fn a_monitor_that_nothing_logs_is_refused_before_training() {
    let scratch = Scratch::new("monitor-check");
    let config = common::workspace().join("configs/burgers_decoder.yaml");
    let out = scratch.path("out");
    let check = common::Run::from(
        std::process::Command::new(common::stoker_bin())
            .current_dir(common::workspace())
            .arg("check")
            .arg(&config)
            .args(["--set", "metrics=[]"])
            .output()
            .unwrap(),
    );
    check.expect_code(2);
    for expected in [
        "`val_rollout_rel_l2` is monitored, but no configured metric or loss produces it",
        "configs/burgers_decoder.yaml",
        "at: callbacks[0].args.monitor",
        "the values the run logs: train_loss, val_loss, train_loss_step, lr",
    ] {
        assert!(
            check.stderr.contains(expected),
            "`{expected}` missing:\n{}",
            check.stderr
        );
    }
    assert!(!out.exists());

    rejected(
        "monitor-early-stopping",
        &format!("{SMALL}callbacks: [{{name: EarlyStopping, args: {{monitor: val_mae}}}}]\n"),
        &[],
        "`val_mae` is monitored, but no configured metric or loss produces it",
        "exp.yaml",
        Some("callbacks[0].args.monitor"),
        "train_loss, train_mse, val_loss, val_mse, train_loss_step, lr",
    );
    rejected(
        "monitor-plateau-without-val",
        &format!("{SMALL}scheduler: {{name: plateau, args: {{monitor: val_loss}}}}\n")
            .replace("batch_size: 32}", "batch_size: 32, val_fraction: 0.0}"),
        &[],
        "`val_loss` is monitored, but no configured metric or loss produces it (the data has no validation split)",
        "exp.yaml",
        Some("scheduler.args.monitor"),
        "train_loss, train_mse, train_loss_step, lr",
    );

    // Loss terms a trainer's step returns, and ModelCheckpoint's `step`, may be monitored.
    let pinn = common::Run::from(
        std::process::Command::new(common::stoker_bin())
            .current_dir(common::workspace())
            .arg("check")
            .arg(common::workspace().join("configs/darcy_fno_pinn.yaml"))
            .args([
                "--set",
                "callbacks=[{name: EarlyStopping, args: {monitor: val_loss_pde}}]",
            ])
            .output()
            .unwrap(),
    );
    pinn.expect_code(0);
    let by_step = scratch.write(
        "step.yaml",
        &format!(
            "{SMALL}callbacks: [{{name: ModelCheckpoint, args: {{monitor: step, mode: max}}}}]\n"
        ),
    );
    scratch
        .stoker(&["check", by_step.to_str().unwrap()])
        .expect_code(0);

    // Values a callback logs may be monitored.
    let callback_logged = format!(
        "{SMALL}callbacks:\n  - GradientMonitor\n  - {{name: ModelCheckpoint, args: {{monitor: grad_norm_total}}}}\n"
    );
    let config = scratch.write("grad.yaml", &callback_logged);
    scratch
        .stoker(&["check", config.to_str().unwrap()])
        .expect_code(0);
}
