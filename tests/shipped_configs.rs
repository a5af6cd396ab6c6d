//! Every config in `configs/` trains with the debugging switches a Lightning user reaches for
//! first: `fast_dev_run`, `overfit_batches` and `limit_*_batches`.

mod common;

use std::process::Command;

use common::{Run, Scratch, stoker_bin, workspace};

fn shipped_configs() -> Vec<std::path::PathBuf> {
    let mut configs: Vec<_> = std::fs::read_dir(workspace().join("configs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    configs.sort();
    // A distilled student needs its teacher's run: train the teachers first.
    configs.sort_by_key(|c| teacher_of(c).is_some());
    assert!(configs.len() >= 10, "{configs:?}");
    configs
}

/// The config whose run `config` distills from, if it is a student of one.
fn teacher_of(config: &std::path::Path) -> Option<&'static str> {
    config
        .ends_with("bearing_cnn_distilled.yaml")
        .then_some("bearing_cnn_teacher")
}

/// `stoker train CONFIG --set ...` from the repository root (where the configs' data paths
/// start), writing into `scratch`.
fn train(scratch: &Scratch, config: &std::path::Path, sets: &[&str]) -> Run {
    let mut command = Command::new(stoker_bin());
    command
        .current_dir(workspace())
        .arg("train")
        .arg(config)
        .arg("--output-dir")
        .arg(&scratch.dir)
        .env("OMP_NUM_THREADS", "1")
        .env("MKL_NUM_THREADS", "1");
    for set in sets {
        command.args(["--set", set]);
    }
    Run::from(command.output().unwrap())
}

#[test]
fn every_shipped_config_trains_with_fast_dev_run_overfit_batches_and_limits() {
    let scratch = Scratch::new("shipped-configs");
    // Each switch with the optimizer steps it allows (2 batches make 1 step with accumulation).
    let switches: [(&[&str], &[usize]); 3] = [
        (&["trainer.args.fast_dev_run=true"], &[1]),
        (
            &[
                "trainer.args.overfit_batches=1",
                "trainer.args.max_epochs=1",
                "trainer.args.limit_test_batches=1",
            ],
            &[1],
        ),
        (
            &[
                "trainer.args.limit_train_batches=2",
                "trainer.args.limit_val_batches=1",
                "trainer.args.limit_test_batches=1",
                "trainer.args.max_epochs=1",
            ],
            &[1, 2],
        ),
    ];
    let mut failures = Vec::new();
    for config in shipped_configs() {
        for (sets, steps) in switches {
            let mut sets = sets.to_vec();
            let teacher = teacher_of(&config)
                .map(|t| format!("trainer.args.teacher={}", scratch.dir.join(t).display()));
            sets.extend(teacher.as_deref());
            let run = train(&scratch, &config, &sets);
            let trained_as_asked = steps
                .iter()
                .any(|n| run.stdout.contains(&format!("stoker: 1 epochs, {n} steps")));
            if run.code != 0 || !trained_as_asked {
                failures.push(format!(
                    "{} {sets:?}: exit {}, expected 1 epoch of {steps:?} steps\n{}\n{}",
                    config.display(),
                    run.code,
                    run.stdout,
                    run.stderr
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
