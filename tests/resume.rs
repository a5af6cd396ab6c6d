//! Checkpoints and resume: exact resume at an epoch boundary and in the middle of an epoch,
//! SIGINT/SIGTERM, config changes, bad checkpoints, and `kill -9` while checkpoints are written.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Scratch, csv_rows, summary, weights};

/// Dropout, accumulation, clipping and a per-step cosine schedule: everything a resume must
/// restore. 410 training samples in batches of 32 make 13 batches and 7 optimizer steps per
/// epoch. Checkpoints every 5 steps (mid-epoch) and at every epoch's end.
const EXACT: &str = "\
name: resume
environment: {seed: 3, device: cpu, output_dir: out}
data: {name: SyntheticRegression, args: {n_samples: 512, n_features: 4, batch_size: 32}}
model: {name: MLP, args: {sizes: [4, 32, 32, 1], dropout: 0.2}}
loss: mse
metrics: [mse]
optimizer: {name: adam, args: {lr: 0.01}}
scheduler: {name: cosine, args: {interval: step}}
trainer: {name: Default_trainer, args: {max_epochs: 3, accumulate_grad_batches: 2, gradient_clip_val: 0.5, log_every_n_steps: 3}}
callbacks:
  - {name: ModelCheckpoint, args: {every_n_train_steps: 5, save_top_k: -1, save_last: true}}
  - {name: ModelCheckpoint, args: {filename: 'end-{epoch}', save_top_k: -1}}
  - {name: EarlyStopping, args: {patience: 100}}
";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Trains the whole run, then resumes a copy of it from `checkpoint` and compares.
fn resume_equals_uninterrupted(name: &str, checkpoint: &str, expected: &str) {
    resume_of_equals_uninterrupted(EXACT, name, checkpoint, expected);
}

/// [`resume_equals_uninterrupted`] for the experiment `text`.
fn resume_of_equals_uninterrupted(text: &str, name: &str, checkpoint: &str, expected: &str) {
    let scratch = Scratch::new(name);
    let config = scratch.write("r.yaml", text);
    let config = config.to_str().unwrap();
    let full = scratch.stoker(&["train", config]);
    full.expect_code(0);
    let run_dir = full.run_dir(&scratch.dir);
    let reference = scratch.path("reference");
    copy_dir(&run_dir, &reference);

    let resumed = scratch.stoker(&[
        "train",
        config,
        "--resume",
        run_dir
            .join("checkpoints")
            .join(checkpoint)
            .to_str()
            .unwrap(),
    ]);
    resumed.expect_code(0);
    assert!(resumed.stdout.contains(expected), "{}", resumed.stdout);
    assert_eq!(
        resumed.run_dir(&scratch.dir),
        run_dir,
        "the resume continues the checkpoint's run"
    );

    let rows = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    assert_eq!(
        rows,
        std::fs::read_to_string(reference.join("metrics.csv")).unwrap(),
        "metrics rows differ"
    );
    let last = weights(&run_dir.join("checkpoints/last.safetensors"));
    assert_eq!(
        last,
        weights(&reference.join("checkpoints/last.safetensors")),
        "final weights differ"
    );
    assert_eq!(
        summary(&run_dir)["final_metrics"],
        summary(&reference)["final_metrics"]
    );
}

#[test]
fn resuming_in_the_middle_of_an_epoch_is_exact() {
    // Step 10 is the 3rd step of epoch 1: 6 of its 13 batches are done.
    resume_equals_uninterrupted(
        "mid-epoch",
        "epoch=1-step=10.safetensors",
        "at epoch 1, batch 6 of the epoch, step 10",
    );
}

#[test]
fn batch_norm_statistics_resume_exactly() {
    // Batch norm's running statistics keep their latest update apart until they are read: a
    // checkpoint must hold them as of its own step, not one step before.
    let text = EXACT.replace(
        "{name: MLP, args: {sizes: [4, 32, 32, 1], dropout: 0.2}}",
        "{name: CNN1d, args: {channels: [8, 8], kernels: [3, 1], strides: [1, 1], n_classes: 1, dropout: 0.2}}",
    );
    assert_ne!(text, EXACT);
    resume_of_equals_uninterrupted(
        &text,
        "batch-norm",
        "epoch=1-step=10.safetensors",
        "at epoch 1, batch 6 of the epoch, step 10",
    );
}

#[test]
fn resuming_at_an_epoch_boundary_is_exact() {
    resume_equals_uninterrupted(
        "epoch-end",
        "end-0.safetensors",
        "at epoch 1, batch 0 of the epoch, step 7",
    );
}

/// Spawns `stoker train`, waits for the first epoch line, sends `signal`, returns the exit code
/// and everything printed.
fn interrupt(scratch: &Scratch, args: &[&str], signals: &[&str]) -> (i32, String, Duration) {
    let mut child = scratch
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        out.push_str(&line);
        if line.starts_with("epoch ") {
            break;
        }
        line.clear();
    }
    // Standard signals that are pending together merge into one, so each further signal waits
    // until the handler has acknowledged the one before (a line on stderr).
    let (lines, acknowledgements) = std::sync::mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let stderr_reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains("signal again to abort") {
                let _ = lines.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let sent = Instant::now();
    for (index, signal) in signals.iter().enumerate() {
        std::process::Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .unwrap();
        if index + 1 < signals.len() {
            acknowledgements
                .recv_timeout(Duration::from_secs(10))
                .expect("the first signal was not acknowledged on stderr");
        }
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    out.push_str(&rest);
    let status = child.wait().unwrap();
    let took = sent.elapsed();
    out.push_str(&stderr_reader.join().unwrap());
    (status.code().unwrap_or(-1), out, took)
}

const LONG: &str = "\
name: long
environment: {seed: 5, device: cpu, output_dir: out}
data: {name: SyntheticRegression, args: {n_samples: 512, n_features: 4, batch_size: 32}}
model: {name: MLP, args: {sizes: [4, 64, 1], dropout: 0.1}}
loss: mse
optimizer: adam
trainer: {name: Default_trainer, args: {max_epochs: 300, auto_resume: true}}
";

#[test]
fn sigint_saves_a_checkpoint_and_auto_resume_finishes_exactly() {
    let scratch = Scratch::new("sigint");
    let config = scratch.write("long.yaml", LONG);
    let config = config.to_str().unwrap();
    let (code, out, _) = interrupt(&scratch, &["train", config], &["-INT"]);
    assert_eq!(code, 130, "{out}");
    assert!(out.contains("stoker: interrupted at epoch"), "{out}");
    assert!(
        out.contains(&format!(
            "resume with: cargo xtask train {config} --resume "
        )),
        "{out}"
    );
    let run_dir = scratch.path("out/long/version_0");
    assert!(
        run_dir
            .join("checkpoints/interrupted.safetensors")
            .is_file()
    );
    assert_eq!(summary(&run_dir)["interrupted"], true);

    // auto_resume continues the interrupted run.
    let resumed = scratch.stoker(&["train", config]);
    resumed.expect_code(0);
    assert!(
        resumed.stdout.contains("stoker: resumed from"),
        "{}",
        resumed.stdout
    );
    assert_eq!(resumed.run_dir(&scratch.dir), run_dir);

    let other = Scratch::new("sigint-reference");
    let reference = other.stoker(&["train", other.write("long.yaml", LONG).to_str().unwrap()]);
    reference.expect_code(0);
    let reference_dir = reference.run_dir(&other.dir);
    assert_eq!(
        weights(&run_dir.join("checkpoints/last.safetensors")),
        weights(&reference_dir.join("checkpoints/last.safetensors")),
        "interrupted and resumed differs from uninterrupted"
    );
    assert_eq!(
        std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap(),
        std::fs::read_to_string(reference_dir.join("metrics.csv")).unwrap()
    );
}

#[test]
fn sigterm_stops_gracefully_too_and_a_second_signal_aborts_at_once() {
    let scratch = Scratch::new("sigterm");
    let config = scratch.write("long.yaml", LONG);
    let (code, out, _) = interrupt(&scratch, &["train", config.to_str().unwrap()], &["-TERM"]);
    assert_eq!(code, 130, "{out}");
    assert!(out.contains("stoker: interrupted at epoch"), "{out}");

    // Slow steps (a wide model on big batches): the first signal waits for the step to end,
    // the second one, right behind it, does not.
    let slow = Scratch::new("sigint-twice");
    let config = slow.write(
        "slow.yaml",
        &LONG
            .replace("[4, 64, 1]", "[4, 2048, 2048, 1]")
            .replace("n_samples: 512", "n_samples: 8192")
            .replace("batch_size: 32", "batch_size: 1024"),
    );
    let (code, out, took) = interrupt(
        &slow,
        &["train", config.to_str().unwrap()],
        &["-INT", "-INT"],
    );
    assert_eq!(code, 130, "{out}");
    assert!(
        !out.contains("stoker: interrupted at epoch"),
        "the second signal did not abort:\n{out}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

fn trained(scratch: &Scratch, config_text: &str) -> (PathBuf, PathBuf) {
    let config = scratch.write("r.yaml", config_text);
    let run = scratch.stoker(&["train", config.to_str().unwrap()]);
    run.expect_code(0);
    (config, run.run_dir(&scratch.dir))
}

const SHORT: &str = "\
name: short
environment: {seed: 1, device: cpu, output_dir: out}
data: {name: SyntheticRegression, args: {n_samples: 256, n_features: 4, batch_size: 32}}
model: {name: MLP, args: {sizes: [4, 16, 1]}}
loss: mse
optimizer: adam
trainer: {name: Default_trainer, args: {max_epochs: 3}}
";

#[test]
fn a_changed_config_is_refused_with_a_diff_unless_allowed() {
    let scratch = Scratch::new("config-change");
    let (config, run_dir) = trained(&scratch, SHORT);
    let config = config.to_str().unwrap();
    let refused = scratch.stoker(&[
        "train",
        config,
        "--resume",
        "last",
        "--set",
        "trainer.args.max_epochs=5",
        "--set",
        "optimizer.args.lr=0.002",
    ]);
    refused.expect_code(2);
    for expected in ["optimizer.args.lr: 0.001 -> 0.002", "--allow-config-change"] {
        assert!(
            refused.stderr.contains(expected),
            "`{expected}` missing from\n{}",
            refused.stderr
        );
    }
    assert!(
        !refused.stderr.contains("max_epochs"),
        "a longer run needs no flag:\n{}",
        refused.stderr
    );
    let allowed = scratch.stoker(&[
        "train",
        config,
        "--resume",
        "last",
        "--set",
        "trainer.args.max_epochs=5",
        "--set",
        "optimizer.args.lr=0.001",
        "--set",
        "trainer.args.gradient_clip_val=1.0",
        "--allow-config-change",
    ]);
    allowed.expect_code(0);
    assert!(
        allowed
            .stdout
            .contains("resuming with a changed config:\n    trainer.args.gradient_clip_val"),
        "{}",
        allowed.stdout
    );
    assert_eq!(summary(&run_dir)["epochs"], 5);
    assert_eq!(
        csv_rows(&run_dir)
            .iter()
            .filter(|r| r.contains_key("val_loss"))
            .count(),
        5
    );

    let model = scratch.stoker(&[
        "train",
        config,
        "--resume",
        "last",
        "--set",
        "model.args.sizes=[4, 8, 1]",
        "--allow-config-change",
    ]);
    model.expect_code(2);
    assert!(
        model.stderr.contains("model.args.sizes[1]") || model.stderr.contains("model.args.sizes"),
        "{}",
        model.stderr
    );
    assert!(
        model.stderr.contains("cannot change on resume"),
        "{}",
        model.stderr
    );
}

/// The way a Lightning user trains longer: raise `max_epochs` and resume, no flag. The note says
/// what changed and, for a schedule that anneals over the run, how it continues.
#[test]
fn training_longer_needs_no_flag_and_says_how_the_schedule_continues() {
    let scratch = Scratch::new("train-longer");
    let cosine = SHORT.replace(
        "optimizer: adam\n",
        "optimizer: adam\nscheduler: {name: cosine, args: {interval: step}}\n",
    );
    let (config, run_dir) = trained(&scratch, &cosine);
    let config = config.to_str().unwrap();
    let longer = scratch.stoker(&[
        "train",
        config,
        "--resume",
        "last",
        "--set",
        "trainer.args.max_epochs=5",
        "--set",
        "trainer.args.log_every_n_steps=2",
    ]);
    longer.expect_code(0);
    assert!(
        longer.stdout.contains(
            "resuming with trainer.args.log_every_n_steps: (absent) -> 2, trainer.args.max_epochs: 3 -> 5"
        ) || longer.stdout.contains(
            "resuming with trainer.args.log_every_n_steps: 50 -> 2, trainer.args.max_epochs: 3 -> 5"
        ),
        "{}",
        longer.stdout
    );
    // 224 training samples in batches of 32: 7 steps per epoch.
    assert!(
        longer.stdout.contains(
            "the learning-rate schedule `cosine` follows the run's length, which was 21 steps (3 epochs) and is now 35 steps (5 epochs): it continues from optimizer step 21 on the new plan"
        ),
        "{}",
        longer.stdout
    );
    let log = std::fs::read_to_string(run_dir.join("run.log")).unwrap();
    assert!(log.contains("follows the run's length"), "{log}");
    assert_eq!(summary(&run_dir)["epochs"], 5);

    // A schedule that does not depend on the length gets no such note.
    let scratch = Scratch::new("train-longer-constant");
    let (config, _) = trained(&scratch, SHORT);
    let longer = scratch.stoker(&[
        "train",
        config.to_str().unwrap(),
        "--resume",
        "last",
        "--set",
        "trainer.args.max_epochs=4",
    ]);
    longer.expect_code(0);
    assert!(
        longer.stdout.contains("max_epochs: 3 -> 4"),
        "{}",
        longer.stdout
    );
    assert!(
        !longer.stdout.contains("learning-rate schedule"),
        "{}",
        longer.stdout
    );
}

#[test]
fn corrupt_truncated_foreign_and_weights_only_checkpoints_are_clear_errors() {
    let scratch = Scratch::new("bad-resume");
    let (config, run_dir) = trained(&scratch, SHORT);
    let config = config.to_str().unwrap();
    let last = std::fs::read(run_dir.join("checkpoints/last.safetensors")).unwrap();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "truncated.safetensors",
            last[..last.len() / 2].to_vec(),
            "not a readable stoker checkpoint",
        ),
        (
            "random.safetensors",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
                .collect(),
            "not a readable stoker checkpoint",
        ),
        (
            "foreign.safetensors",
            foreign_safetensors(),
            "no stoker metadata",
        ),
    ];
    for (name, bytes, message) in cases {
        let path = scratch.path(name);
        std::fs::write(&path, bytes).unwrap();
        let run = scratch.stoker(&["train", config, "--resume", path.to_str().unwrap()]);
        run.expect_code(2);
        assert!(run.stderr.contains(message), "{name}: {}", run.stderr);
        assert!(run.stderr.contains(name), "{name}: {}", run.stderr);
    }
    let weights_only = scratch.write(
        "w.yaml",
        &SHORT.replace("name: short", "name: weights").replace(
            "trainer:",
            "callbacks: [{name: ModelCheckpoint, args: {save_weights_only: true, save_last: true}}]\ntrainer:",
        ),
    );
    scratch
        .stoker(&["train", weights_only.to_str().unwrap()])
        .expect_code(0);
    let run = scratch.stoker(&[
        "train",
        weights_only.to_str().unwrap(),
        "--resume",
        "out/weights/version_0/checkpoints/last.safetensors",
    ]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("holds the model weights only"),
        "{}",
        run.stderr
    );
    let missing = scratch.stoker(&[
        "train",
        weights_only.to_str().unwrap(),
        "--resume",
        "nowhere.safetensors",
    ]);
    missing.expect_code(2);
    assert!(
        missing.stderr.contains("does not exist"),
        "{}",
        missing.stderr
    );
}

/// A valid safetensors file without stoker's metadata.
fn foreign_safetensors() -> Vec<u8> {
    let header = br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&1.0f32.to_le_bytes());
    bytes
}

#[test]
fn kill_9_while_checkpoints_are_written_leaves_a_loadable_one() {
    let scratch = Scratch::new("kill9");
    // A checkpoint after every step of a model big enough that writing one takes a while.
    let config = scratch.write(
        "k.yaml",
        &SHORT
            .replace("[4, 16, 1]", "[4, 512, 512, 1]")
            .replace("max_epochs: 3", "max_epochs: 1000")
            .replace("trainer:", "callbacks: [{name: ModelCheckpoint, args: {every_n_train_steps: 1, save_last: true}}]\ntrainer:"),
    );
    let config = config.to_str().unwrap();
    let last = scratch.path("out/short/version_0/checkpoints/last.safetensors");
    for (round, delay) in [700u64, 950, 1200, 1450, 1700].into_iter().enumerate() {
        let mut child = scratch
            .command(&["train", config, "--resume", "last"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if round == 0 {
            // The first round has nothing to resume from; it is killed only once it has
            // written a checkpoint, however slowly a loaded machine starts it.
            child.kill().unwrap();
            child.wait().unwrap();
            child = scratch
                .command(&["train", config])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let started = std::time::Instant::now();
            while !last.is_file() && started.elapsed() < Duration::from_secs(120) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if !last.is_file() {
            continue;
        }
        let eval = scratch.stoker(&["eval", config, "--ckpt", last.to_str().unwrap()]);
        eval.expect_code(0);
    }
    assert!(last.is_file(), "no checkpoint was written in any round");
    // Leftover temporary files are never taken for checkpoints.
    let resumed = scratch.stoker(&[
        "train",
        config,
        "--resume",
        "last",
        "--set",
        "trainer.args.max_epochs=1",
        "--allow-config-change",
    ]);
    assert!(resumed.code == 0, "{}\n{}", resumed.stdout, resumed.stderr);
}

#[test]
fn resume_best_continues_from_the_best_checkpoint() {
    let scratch = Scratch::new("resume-best");
    // mode max on val_loss keeps the worst epoch: the first, as the loss goes down.
    let config_text = SHORT.replace("trainer:", "callbacks: [{name: ModelCheckpoint, args: {monitor: val_loss, mode: max, save_last: true}}]\ntrainer:");
    let (config, run_dir) = trained(&scratch, &config_text);
    let reference = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    let run = scratch.stoker(&["train", config.to_str().unwrap(), "--resume", "best"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("epoch=0-step=7.safetensors at epoch 1, batch 0 of the epoch, step 7"),
        "{}",
        run.stdout
    );
    assert_eq!(
        std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap(),
        reference
    );
}
