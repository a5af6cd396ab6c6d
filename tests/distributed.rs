//! Data-parallel training end to end (CPU, Gloo, two processes with one thread each): two ranks
//! of batch B train as one process of batch 2B, metrics count every sample once on uneven
//! shards, only rank 0 writes, a mid-epoch resume of two ranks is exact, a checkpoint of two
//! ranks is refused by one process, faults end every rank, and torchrun starts the same run.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Scratch, csv_rows, summary, tensor_f32, tensor_names};

/// 515 samples: 412 train (206 per rank, 13 batches of 16 or, alone, of 32), 103 validation
/// (52 and 51 per rank: an uneven last shard). SGD on an MLP without dropout or batch norm.
const PAIR: &str = "\
name: pair
environment: {seed: 11, device: cpu, output_dir: out}
data: {name: SyntheticRegression, args: {n_samples: 515, n_features: 4, batch_size: 16}}
model: {name: MLP, args: {sizes: [4, 32, 1]}}
loss: mse
metrics: [mse, mae, r2, max_error]
optimizer: {name: sgd, args: {lr: 0.05, momentum: 0.9}}
trainer: {name: Default_trainer, args: {max_epochs: 2, enable_progress_bar: false}}
";

fn train(scratch: &Scratch, config: &Path, extra: &[&str]) -> (std::path::PathBuf, String) {
    let mut args = vec!["train", config.to_str().unwrap()];
    args.extend(extra);
    let run = scratch.stoker(&args);
    run.expect_code(0);
    (run.run_dir(&scratch.dir), run.stdout)
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-5 * b.abs().max(1e-3),
        "{what}: two ranks {a}, one process {b}"
    );
}

/// The final weights of two runs agree to float tolerance.
fn same_weights(two: &Path, one: &Path) {
    let last = |dir: &Path| dir.join("checkpoints/last.safetensors");
    for name in tensor_names(&last(one)) {
        if name.starts_with("__stoker") {
            continue;
        }
        let (a, b) = (tensor_f32(&last(two), &name), tensor_f32(&last(one), &name));
        for (x, y) in a.iter().zip(&b) {
            close(f64::from(*x), f64::from(*y), &name);
        }
    }
}

#[test]
fn with_accumulation_two_ranks_reduce_once_per_step_as_one_process() {
    // 13 batches in groups of 2: 7 optimizer steps per epoch on both sides; the gradients of a
    // group are reduced once, after its last micro-batch.
    let scratch = Scratch::new("ddp-accumulate");
    let config = scratch.write("pair.yaml", PAIR);
    let accumulate = ["--set", "trainer.args.accumulate_grad_batches=2"];
    let (two, _) = train(
        &scratch,
        &config,
        &[&["--nproc", "2"][..], &accumulate].concat(),
    );
    let larger = ["--set", "data.args.batch_size=32"];
    let (one, _) = train(&scratch, &config, &[&larger[..], &accumulate].concat());
    assert_eq!(summary(&two)["global_step"], 14);
    assert_eq!(summary(&one)["global_step"], 14);
    same_weights(&two, &one);
}

#[test]
fn two_ranks_of_batch_b_train_as_one_process_of_batch_2b_and_count_every_sample_once() {
    let scratch = Scratch::new("ddp-pair");
    let config = scratch.write("pair.yaml", PAIR);
    let (two, stdout) = train(&scratch, &config, &["--nproc", "2"]);
    let (one, _) = train(&scratch, &config, &["--set", "data.args.batch_size=32"]);
    assert!(
        stdout.contains("the weights of the 2 processes are identical at the end of training"),
        "{stdout}"
    );
    let s = summary(&two);
    assert_eq!(
        (
            s["world_size"].as_u64(),
            s["batch_size"].as_u64(),
            s["global_batch_size"].as_u64()
        ),
        (Some(2), Some(16), Some(32))
    );
    assert_eq!(
        s["global_step"],
        summary(&one)["global_step"],
        "26 steps each"
    );
    same_weights(&two, &one);
    // Validation and training metrics over every sample once: the uneven validation shards
    // (52 and 51) reduce their sums and counts, not their means.
    let (rows_two, rows_one) = (csv_rows(&two), csv_rows(&one));
    assert_eq!(rows_two.len(), rows_one.len());
    let mut compared = 0;
    for (a, b) in rows_two.iter().zip(&rows_one) {
        for (key, value) in b {
            if key.starts_with("val_") || key.starts_with("train_") && !key.ends_with("_step") {
                let x: f64 = a[key].parse().unwrap();
                close(x, value.parse().unwrap(), key);
                compared += 1;
            }
        }
    }
    assert!(compared >= 12, "{compared} values compared");
    // Only rank 0 wrote: one run directory.
    let runs: Vec<_> = std::fs::read_dir(scratch.path("out/pair"))
        .unwrap()
        .collect();
    assert_eq!(
        runs.len(),
        2,
        "one run directory per training, none from rank 1"
    );
}

/// Dropout, accumulation and clipping; 410 training samples, 205 per rank in 7 batches of 32,
/// 4 optimizer steps per epoch; a checkpoint every 5 steps (step 5: batch 2 of epoch 1).
const EXACT: &str = "\
name: exact
environment: {seed: 3, device: cpu, output_dir: out}
data: {name: SyntheticRegression, args: {n_samples: 512, n_features: 4, batch_size: 32}}
model: {name: MLP, args: {sizes: [4, 32, 32, 1], dropout: 0.2}}
loss: mse
metrics: [mse]
optimizer: {name: adam, args: {lr: 0.01}}
scheduler: {name: cosine, args: {interval: step}}
trainer: {name: Default_trainer, args: {max_epochs: 3, accumulate_grad_batches: 2, gradient_clip_val: 0.5, log_every_n_steps: 3, enable_progress_bar: false}}
callbacks:
  - {name: ModelCheckpoint, args: {every_n_train_steps: 5, save_top_k: -1, save_last: true}}
  - {name: ModelCheckpoint, args: {filename: 'end-{epoch}', save_top_k: -1}}
";

#[test]
fn a_mid_epoch_resume_of_two_ranks_is_exact_and_one_process_refuses_it() {
    let scratch = Scratch::new("ddp-resume");
    let config = scratch.write("exact.yaml", EXACT);
    let (run_dir, _) = train(&scratch, &config, &["--nproc", "2"]);
    let reference = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    let reference_weights = common::weights(&run_dir.join("checkpoints/last.safetensors"));
    let checkpoint = run_dir.join("checkpoints/epoch=1-step=5.safetensors");
    let checkpoint = checkpoint.to_str().unwrap();

    // Another number of processes cannot continue an epoch the first shared out.
    let alone = scratch.stoker(&[
        "train",
        config.to_str().unwrap(),
        "--resume",
        checkpoint,
        "--allow-config-change",
    ]);
    alone.expect_code(2);
    assert!(
        alone
            .stderr
            .contains("written by a run of 2 processes, and this run has 1 process")
            && alone.stderr.contains("in the middle of epoch 1")
            && alone.stderr.contains("--nproc 2"),
        "{}",
        alone.stderr
    );

    let (resumed, stdout) = train(&scratch, &config, &["--nproc", "2", "--resume", checkpoint]);
    assert_eq!(
        resumed, run_dir,
        "the resume continues the checkpoint's run"
    );
    assert!(stdout.contains("batch 2 of the epoch, step 5"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap(),
        reference,
        "metrics rows differ"
    );
    assert_eq!(
        common::weights(&run_dir.join("checkpoints/last.safetensors")),
        reference_weights,
        "final weights differ"
    );

    // At an epoch's end one process takes the weights and the optimizer state on, when asked.
    let last = run_dir.join("checkpoints/end-2.safetensors");
    let last = last.to_str().unwrap();
    let config = config.to_str().unwrap();
    let more = ["--set", "trainer.args.max_epochs=4"];
    let refused = scratch.stoker(&[&["train", config, "--resume", last][..], &more].concat());
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("--allow-config-change"),
        "{}",
        refused.stderr
    );
    let allowed = ["train", config, "--resume", last, "--allow-config-change"];
    let one = scratch.stoker(&[&allowed[..], &more].concat());
    one.expect_code(0);
    assert!(one.stdout.contains("go on from epoch 3"), "{}", one.stdout);
    // 410 samples in batches of 32, two per step: 7 more steps after the 12 of two processes.
    let s = summary(&run_dir);
    assert_eq!(
        (s["world_size"].as_u64(), s["global_step"].as_u64()),
        (Some(1), Some(19))
    );
}

/// The pids of `parent`'s children.
fn children(parent: u32) -> Vec<u32> {
    let path = format!("/proc/{parent}/task/{parent}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn wait_with_deadline(child: &mut Child, limit: Duration) -> (i32, String) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status.code().unwrap_or(-1), stderr);
        }
        assert!(started.elapsed() < limit, "still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Many steps per epoch: a run that is still training a few seconds later.
const LONG: &str = "\
name: long
environment: {seed: 1, device: cpu, output_dir: out}
data: {name: SyntheticRegression, args: {n_samples: 200000, n_features: 4, batch_size: 8}}
model: {name: MLP, args: {sizes: [4, 16, 1]}}
loss: mse
optimizer: {name: adam, args: {lr: 0.001}}
trainer:
  name: Default_trainer
  args: {max_epochs: 1, enable_progress_bar: false, strategy: {name: ddp, args: {process_group_timeout: 20}}}
";

/// Waits until the launcher `pid` has started its two ranks and they train (the run directory
/// has its `metrics.csv` or enough time passed for the rendezvous).
fn ranks_of(launcher: u32) -> Vec<u32> {
    let started = Instant::now();
    loop {
        let ranks = children(launcher);
        if ranks.len() == 2 {
            return ranks;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no ranks");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_killed_rank_stops_every_rank_and_the_launcher_fails() {
    let scratch = Scratch::new("ddp-kill");
    let config = scratch.write("long.yaml", LONG);
    let mut launcher = scratch
        .command(&["train", config.to_str().unwrap(), "--nproc", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ranks = ranks_of(launcher.id());
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: kill(2) on a process this test started (through the launcher).
    unsafe {
        libc::kill(ranks[1] as i32, libc::SIGKILL);
    }
    let (code, stderr) = wait_with_deadline(&mut launcher, Duration::from_secs(40));
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("rank 1 was killed by signal 9; stopping the other processes"),
        "{stderr}"
    );
    for rank in ranks {
        assert!(
            !Path::new(&format!("/proc/{rank}/status")).exists()
                || std::fs::read_to_string(format!("/proc/{rank}/status"))
                    .unwrap_or_default()
                    .contains("zombie"),
            "rank process {rank} is still running"
        );
    }
}

/// Two ranks started by hand (torchrun's variables, no launcher to stop the survivor); after a
/// few seconds of training `fault` strikes rank 1. Rank 0's exit status and stderr.
fn survivor(name: &str, timeout: u32, fault: fn(&mut Child)) -> (i32, String, Duration) {
    let scratch = Scratch::new(name);
    let config = scratch.write("long.yaml", LONG);
    let timeout =
        format!("trainer.args.strategy={{name: ddp, args: {{process_group_timeout: {timeout}}}}}");
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let start = |rank: &str| {
        scratch
            .command(&["train", config.to_str().unwrap(), "--set", &timeout])
            .env("RANK", rank)
            .env("WORLD_SIZE", "2")
            .env("LOCAL_RANK", rank)
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", &port)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut zero = start("0");
    let mut one = start("1");
    std::thread::sleep(Duration::from_secs(4));
    let struck = Instant::now();
    fault(&mut one);
    let (code, stderr) = wait_with_deadline(&mut zero, Duration::from_secs(60));
    let waited = struck.elapsed();
    let _ = one.kill();
    one.wait().unwrap();
    (code, stderr, waited)
}

#[test]
fn a_rank_whose_peer_dies_exits_naming_its_rank_and_the_collective() {
    let (code, stderr, _) = survivor("ddp-peer", 20, |one| one.kill().unwrap());
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("rank 0 of 2:") && stderr.contains("all-reduce"),
        "{stderr}"
    );
}

#[test]
fn a_rank_whose_peer_hangs_exits_within_the_timeout() {
    // SIGSTOP: rank 1 neither dies nor answers.
    let (code, stderr, waited) = survivor("ddp-hang", 5, |one| {
        // SAFETY: kill(2) on a process this test started.
        unsafe {
            libc::kill(one.id() as i32, libc::SIGSTOP);
        }
    });
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("rank 0 of 2:"), "{stderr}");
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(40),
        "rank 0 gave up after {waited:?}, the timeout is 5 s: {stderr}"
    );
}

#[test]
fn sigterm_to_the_launcher_stops_both_ranks_at_one_step_and_the_run_resumes() {
    let scratch = Scratch::new("ddp-sigterm");
    let config = scratch.write("long.yaml", LONG);
    let mut launcher = scratch
        .command(&["train", config.to_str().unwrap(), "--nproc", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ranks_of(launcher.id());
    std::thread::sleep(Duration::from_secs(4));
    // SAFETY: kill(2) on the launcher this test started.
    unsafe {
        libc::kill(launcher.id() as i32, libc::SIGTERM);
    }
    let (code, stderr) = wait_with_deadline(&mut launcher, Duration::from_secs(60));
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut launcher.stdout.take().unwrap(), &mut stdout).unwrap();
    assert_eq!(code, 130, "{stdout}\n{stderr}");
    let interrupted = scratch.path("out/long/version_0/checkpoints/interrupted.safetensors");
    assert!(interrupted.is_file(), "{stderr}");
    // "interrupted at epoch 0, batch N of the epoch, step S; ...": both ranks stopped at S.
    let step: usize = stdout
        .split("of the epoch, step ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    let until = format!("trainer.args.max_steps={}", step + 20);
    let resumed = scratch.stoker(&[
        "train",
        config.to_str().unwrap(),
        "--nproc",
        "2",
        "--resume",
        interrupted.to_str().unwrap(),
        "--set",
        &until,
    ]);
    resumed.expect_code(0);
    let run_dir = resumed.run_dir(&scratch.dir);
    assert_eq!(summary(&run_dir)["world_size"], 2);
    assert_eq!(summary(&run_dir)["global_step"], step + 20);
}

/// A free port on this machine, for a rendezvous.
fn free_port() -> String {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string()
}

/// Runs `commands` at once (each a program, its arguments and its environment) in the scratch
/// directory; panics unless all succeed.
fn all_succeed(scratch: &Scratch, commands: Vec<std::process::Command>) {
    let children: Vec<_> = commands
        .into_iter()
        .map(|mut c| {
            c.current_dir(&scratch.dir)
                .env("OMP_NUM_THREADS", "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn every_launcher_trains_the_same_run() {
    let scratch = Scratch::new("ddp-launchers");
    let config = scratch.write("pair.yaml", PAIR);
    let config = config.to_str().unwrap();
    let bin = common::stoker_bin();
    let version = |v: usize| {
        common::weights(&scratch.path(&format!(
            "out/pair/version_{v}/checkpoints/last.safetensors"
        )))
    };
    // version_0: stoker's own launcher.
    train(&scratch, Path::new(config), &["--nproc", "2"]);
    let reference = version(0);

    // version_1: torchrun --no-python.
    let python = std::env::var("STOKER_PYTHON").expect("STOKER_PYTHON is set by cargo xtask test");
    let mut torchrun = std::process::Command::new(python);
    torchrun
        .args([
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--no-python",
        ])
        .arg(&bin)
        .args(["train", config]);
    all_succeed(&scratch, vec![torchrun]);
    assert_eq!(version(1), reference, "torchrun");

    // version_2: two \"machines\" on 127.0.0.1, one process each.
    let port = free_port();
    let node = |rank: &str| {
        let mut c = std::process::Command::new(&bin);
        c.args([
            "train",
            config,
            "--nproc",
            "1",
            "--nnodes",
            "2",
            "--node-rank",
            rank,
        ])
        .args(["--master-addr", "127.0.0.1", "--master-port", &port]);
        c
    };
    all_succeed(&scratch, vec![node("0"), node("1")]);
    assert_eq!(version(2), reference, "--nnodes 2");

    // version_3: SLURM's variables, the master the first host of the node list.
    let port = free_port();
    let task = |rank: &str| {
        let mut c = std::process::Command::new(&bin);
        c.args(["train", config])
            .env("SLURM_PROCID", rank)
            .env("SLURM_NTASKS", "2")
            .env("SLURM_LOCALID", rank)
            .env("SLURM_NODEID", "0")
            .env("SLURM_JOB_NAME", "pair")
            .env("SLURM_NODELIST", "localhost")
            .env("MASTER_PORT", &port);
        c
    };
    all_succeed(&scratch, vec![task("0"), task("1")]);
    assert_eq!(version(3), reference, "SLURM");

    // version_4: `devices: 2` in the config; `stoker train` starts the processes.
    let run = scratch.stoker(&["train", config, "--set", "trainer.args.devices=2"]);
    run.expect_code(0);
    assert_eq!(version(4), reference, "devices: 2");
    assert_eq!(
        summary(&scratch.path("out/pair/version_4"))["world_size"],
        2
    );

    // A config that disagrees with the launcher is refused before training.
    let wrong = scratch.stoker(&[
        "train",
        config,
        "--nproc",
        "2",
        "--set",
        "trainer.args.devices=3",
    ]);
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(
        wrong
            .stderr
            .contains("devices 3 x num_nodes 1 is 3 processes, and the launcher started 2"),
        "{}",
        wrong.stderr
    );
}

#[test]
fn a_monitor_that_is_each_process_own_is_refused_before_training() {
    let scratch = Scratch::new("ddp-monitor");
    let config = scratch.write("pair.yaml", PAIR);
    let per_step = "callbacks=[{name: ModelCheckpoint, args: {monitor: train_loss_step, every_n_train_steps: 5}}]";
    let run = scratch.stoker(&[
        "train",
        config.to_str().unwrap(),
        "--nproc",
        "2",
        "--set",
        per_step,
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`train_loss_step` is each process's own value in data-parallel training")
            && run.stderr.contains("callbacks[0].args.monitor"),
        "{}",
        run.stderr
    );
    // One process may monitor it (logged at the steps it saves at).
    let every_five = "trainer.args.log_every_n_steps=5";
    let config = config.to_str().unwrap();
    scratch
        .stoker(&["train", config, "--set", per_step, "--set", every_five])
        .expect_code(0);
}
