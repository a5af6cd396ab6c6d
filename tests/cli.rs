//! `stoker list`, `stoker check`, and plugin discovery.

mod common;

use common::{SMALL, Scratch, quickstart};

#[test]
fn list_prints_every_kind_with_arguments() {
    let scratch = Scratch::new("list");
    let run = scratch.stoker(&["list"]);
    run.expect_code(0);
    for expected in [
        "data TensorFile  [stoker-data]",
        "data SyntheticRegression  [stoker-data]",
        "model MLP  [stoker-models]",
        "loss mse  [stoker-losses]",
        "loss cross_entropy  [stoker-losses]",
        "metric loss  [stoker-metrics]",
        "metric mse  [stoker-metrics]",
        "metric accuracy  [stoker-metrics]",
        "optimizer sgd  [stoker-optim]",
        "optimizer adam  [stoker-optim]",
        "optimizer adamw  [stoker-optim]",
        "scheduler constant  [stoker-optim]",
        "scheduler cosine  [stoker-optim]",
        "trainer Default_trainer  [stoker-trainer]",
        "logger csv  [stoker-loggers]",
    ] {
        assert!(
            run.stdout.contains(expected),
            "`{expected}` missing from\n{}",
            run.stdout
        );
    }
    // Arguments with types and defaults.
    assert!(
        run.stdout.contains("sizes       Vec<usize>  required"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("default 0.001"), "{}", run.stdout);
}

#[test]
fn list_filters_by_kind_and_rejects_unknown_kinds() {
    let scratch = Scratch::new("list-kind");
    let run = scratch.stoker(&["list", "optimizers"]);
    run.expect_code(0);
    assert!(run.stdout.contains("optimizer adamw"));
    assert!(!run.stdout.contains("model MLP"));
    let bad = scratch.stoker(&["list", "widgets"]);
    bad.expect_code(2);
    assert!(
        bad.stderr.contains("unknown kind `widgets`"),
        "{}",
        bad.stderr
    );
}

#[test]
fn check_validates_without_training() {
    let scratch = Scratch::new("check");
    let run = scratch.stoker(&["check", quickstart().to_str().unwrap()]);
    run.expect_code(0);
    assert!(
        run.stdout.starts_with("config OK: quickstart"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("epoch "));
    assert!(!scratch.path("runs").exists());
}

/// The example plugin's crate is named nowhere but in the runner `cargo xtask` generates from
/// `plugins/`; its components are listed and train.
#[test]
fn plugin_components_are_discovered_and_train() {
    let scratch = Scratch::new("plugin");
    let list = scratch.stoker(&["list", "model"]);
    list.expect_code(0);
    assert!(
        list.stdout.contains("model ResMLP  [example-plugin]"),
        "{}",
        list.stdout
    );
    let config = scratch.write(
        "plugin.yaml",
        &SMALL
            .replace(
                "{name: MLP, args: {sizes: [4, 16, 1]}}",
                "{name: ResMLP, args: {width: 16, blocks: 1, outputs: 1}}",
            )
            .replace("loss: mse", "loss: log_cosh"),
    );
    let run = scratch.stoker(&["train", config.to_str().unwrap()]);
    run.expect_code(0);
    let train_loss = |epoch: &str| -> f64 {
        let line = run.stdout.lines().find(|l| l.starts_with(epoch)).unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "train_loss").unwrap();
        words[at + 1].parse().unwrap()
    };
    let (first, last) = (train_loss("epoch 1/3"), train_loss("epoch 3/3"));
    assert!(
        last < first,
        "log_cosh did not go down: {first} -> {last}\n{}",
        run.stdout
    );
}

#[test]
fn list_names_each_components_source_file_and_line() {
    let scratch = Scratch::new("list-source");
    let run = scratch.stoker(&["list", "model"]);
    run.expect_code(0);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("model MLP  [stoker-models]  "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    let (file, number) = line.rsplit_once("  ").unwrap().1.rsplit_once(':').unwrap();
    assert_eq!(file, "crates/stoker-models/src/mlp.rs");
    let source = std::fs::read_to_string(common::workspace().join(file)).unwrap();
    let at = source
        .lines()
        .nth(number.parse::<usize>().unwrap() - 1)
        .unwrap();
    assert!(at.contains("pub struct MlpSpec"), "line {number}: {at}");
    // The list's header says where a kind is selected.
    assert!(
        run.stdout.contains("== model (`model:`) =="),
        "{}",
        run.stdout
    );
}
