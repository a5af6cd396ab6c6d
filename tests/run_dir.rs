//! The run directory across processes: one owner at a time (an advisory lock that a killed
//! process does not leave behind), a truncated `last.safetensors` skipped aloud, and the
//! temporary files of a killed write removed when a run resumes.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Scratch, csv_rows};

/// About 1,500 optimizer steps per epoch: a run that is still training a few seconds later.
const LONG: &str = "\
name: owned
environment: {seed: 1, device: cpu, output_dir: out}
data: {name: SyntheticRegression, args: {n_samples: 30000, n_features: 4, batch_size: 16}}
model: {name: MLP, args: {sizes: [4, 16, 1]}}
loss: mse
optimizer: {name: adam, args: {lr: 0.001}}
trainer: {name: Default_trainer, args: {max_epochs: 1}}
callbacks:
  - {name: ModelCheckpoint, args: {save_last: true, save_top_k: -1, filename: '{epoch}'}}
";

fn lock_owner(run_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(run_dir.join(".lock"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[test]
fn one_process_owns_a_run_directory_and_a_killed_owner_does_not_block() {
    let scratch = Scratch::new("run-dir-lock");
    let config = scratch.write("c.yaml", LONG);
    let config = config.to_str().unwrap();
    let first = scratch.stoker(&["train", config]);
    first.expect_code(0);
    let run_dir = first.run_dir(&scratch.dir);
    let rows = csv_rows(&run_dir).len();

    // A resumes for many more epochs and keeps the directory.
    let resume = ["train", config, "--resume", "last"];
    let longer = "trainer.args.max_epochs=1000";
    let mut owner = scratch
        .command(&[&resume[..], &["--set", longer]].concat())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while lock_owner(&run_dir) != Some(owner.id()) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the resumed run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // B, the same resume at the same time, is refused before it writes anything.
    let second = scratch.stoker(&[&resume[..], &["--set", longer]].concat());
    second.expect_code(2);
    assert!(
        second
            .stderr
            .contains(&format!("in use by process {}", owner.id())),
        "{}",
        second.stderr
    );
    assert!(
        owner.try_wait().unwrap().is_none(),
        "the owner stopped early"
    );
    owner.kill().unwrap(); // SIGKILL: its lock goes with it
    owner.wait().unwrap();

    // The next resume is not blocked by the killed owner's lock file.
    assert!(run_dir.join(".lock").is_file());
    let next = scratch.stoker(&[&resume[..], &["--set", "trainer.args.max_steps=1"]].concat());
    next.expect_code(0);
    assert!(csv_rows(&run_dir).len() >= rows);
}

/// A scheduler that starts an `auto_resume` job twice: the second is refused even before the
/// first wrote a checkpoint (it used to start a new version beside it).
#[test]
fn a_second_auto_resume_job_is_refused_while_the_first_trains() {
    let scratch = Scratch::new("run-dir-auto-resume");
    let config = scratch.write("c.yaml", LONG);
    let args = [
        "train",
        config.to_str().unwrap(),
        "--set",
        "trainer.args.auto_resume=true",
        "--set",
        "trainer.args.max_epochs=1000",
    ];
    let mut first = scratch
        .command(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let run_dir = scratch.path("out/owned/version_0");
    let started = Instant::now();
    while lock_owner(&run_dir) != Some(first.id()) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no lock taken"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = scratch.stoker(&args);
    first.kill().unwrap();
    first.wait().unwrap();
    second.expect_code(2);
    assert!(
        second
            .stderr
            .contains(&format!("in use by process {}", first.id())),
        "{}",
        second.stderr
    );
    assert!(!scratch.path("out/owned/version_1").exists());
}

/// Two epochs in 4 batches each, a checkpoint at every epoch and `last.safetensors`.
const SMALL: &str = "\
name: small
environment: {seed: 2, device: cpu, output_dir: out}
data: {name: SyntheticRegression, args: {n_samples: 80, n_features: 4, batch_size: 16}}
model: {name: MLP, args: {sizes: [4, 8, 1]}}
loss: mse
optimizer: {name: adam, args: {lr: 0.01}}
trainer: {name: Default_trainer, args: {max_epochs: 2}}
callbacks:
  - {name: ModelCheckpoint, args: {save_last: true, save_top_k: -1, filename: '{epoch}'}}
";

#[test]
fn a_truncated_last_checkpoint_is_skipped_aloud_and_stale_temporaries_are_removed() {
    let scratch = Scratch::new("run-dir-corrupt-last");
    let config = scratch.write("c.yaml", SMALL);
    let config = config.to_str().unwrap();
    let first = scratch.stoker(&["train", config]);
    first.expect_code(0);
    let run_dir = first.run_dir(&scratch.dir);
    let checkpoints = run_dir.join("checkpoints");
    let last = checkpoints.join("last.safetensors");
    let bytes = std::fs::read(&last).unwrap();
    std::fs::write(&last, &bytes[..bytes.len() / 2]).unwrap();
    let stale = [
        checkpoints.join(".epoch=1.safetensors.tmp-1504"),
        run_dir.join(".summary.json.tmp-1504"),
    ];
    for file in &stale {
        std::fs::write(file, b"half a file").unwrap();
    }

    let resumed = scratch.stoker(&[
        "train",
        config,
        "--resume",
        "last",
        "--set",
        "trainer.args.max_epochs=3",
    ]);
    resumed.expect_code(0);
    let said = format!(
        "resume: skipped {}, which cannot be read",
        last.strip_prefix(&scratch.dir).unwrap().display()
    );
    assert!(resumed.stderr.contains(&said), "{}", resumed.stderr);
    let log = std::fs::read_to_string(run_dir.join("run.log")).unwrap();
    assert!(log.contains(&said), "{log}");
    for file in &stale {
        assert!(!file.exists(), "{} is still there", file.display());
        let note = format!("removed {}", file.display());
        assert!(resumed.stdout.contains(&note), "{}", resumed.stdout);
        assert!(log.contains(&note), "{log}");
    }
    // It resumed from the newest readable checkpoint (epoch 1) and trained the third epoch.
    let summary = common::summary(&run_dir);
    assert_eq!(summary["epochs"], 3, "{summary}");
}
