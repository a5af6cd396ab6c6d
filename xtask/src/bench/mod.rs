//! `cargo xtask bench [WORKLOAD...] [--device cpu|cuda] [--repeat N] [--threads T] [--nproc P] [--precision P] [--workers N] [--short]`:
//! stoker's training (the `stoker train` command `cargo xtask train` runs, on a config in
//! `bench/configs/`) side by side with a plain PyTorch loop of the same model, data, batch size and
//! optimizer (`bench/reference/`), alternately, `--repeat` times each, on the same number of
//! threads. Prints steps/s (median, min, max), the ratio stoker / PyTorch of the medians and of
//! the fastest runs, peak host memory and, on CUDA, peak device memory, and writes the table to
//! `bench/results/<date>-<device>.md`.
//! `--nproc P` trains data-parallel with P processes on each side (stoker's `--nproc`, PyTorch's
//! DistributedDataParallel on gloo under torchrun), T threads and the config's batch size per
//! process; the table goes to `bench/results/<date>-<device>-nproc<P>.md`.
//! `--precision bf16-mixed | 16-mixed` trains stoker with `trainer.args.precision` and PyTorch
//! under `torch.autocast` (with a GradScaler for 16-mixed); the table goes to
//! `bench/results/<date>-<device>-<precision>.md`.
//! `stream` (`stream1g`, `stream8g`): an MLP on generated `.npy` data read in place, each side
//! with `--workers N` data workers (default 2); the table goes to
//! `bench/results/<date>-<device>-stream[-workers<N>].md`.
//! `--short` (what CI runs) takes one repeat of 2 epochs of 5 steps and writes nothing: it keeps
//! the comparison code working and checks that both sides train the same model (parameter count
//! and steps per epoch), without judging speed.

mod measure;
mod report;
mod stats;
mod stream_data;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::env::{self, workspace_root};
use crate::runner;
use crate::setup::{self, Torch};

use report::{Row, Table};
use stats::steps_per_second;

/// One benchmark workload.
#[derive(Debug)]
pub struct Workload {
    /// Its name on the command line and in the table.
    pub name: &'static str,
    /// The stem of `bench/configs/<file>.yaml` and `bench/reference/<file>.py`.
    pub file: &'static str,
    /// Whether a PyTorch reference exists (the no-op workload measures stoker alone).
    pub has_reference: bool,
    /// The rows of the generated data it reads in place (`stream_data`), if any.
    pub stream_rows: Option<usize>,
}

const fn workload(name: &'static str, has_reference: bool) -> Workload {
    Workload {
        name,
        file: name,
        has_reference,
        stream_rows: None,
    }
}

/// Every workload, in table order.
pub const WORKLOADS: [Workload; 7] = [
    workload("mlp", true),
    workload("fno2d", true),
    workload("cnn1d", true),
    workload("decoder", true),
    workload("noop", false),
    // Data read in place at two sizes: speed and memory should not depend on the size.
    Workload {
        name: "stream1g",
        file: "stream",
        has_reference: true,
        stream_rows: Some(131_072),
    },
    Workload {
        name: "stream8g",
        file: "stream",
        has_reference: true,
        stream_rows: Some(1_048_576),
    },
];

/// The data workers of both sides of the stream workloads, unless `--workers` says otherwise.
const STREAM_WORKERS: usize = 2;

/// The command line.
#[derive(Debug)]
struct Options {
    workloads: Vec<&'static Workload>,
    device: String,
    repeat: usize,
    threads: usize,
    nproc: usize,
    precision: String,
    short: bool,
    /// The data workers of the stream workloads.
    workers: usize,
}

/// The precisions both sides can train in.
const PRECISIONS: [&str; 3] = ["32-true", "bf16-mixed", "16-mixed"];

const USAGE: &str = "usage: cargo xtask bench [WORKLOAD...] [--device cpu|cuda] [--repeat N] [--threads T] [--nproc P] [--precision P] [--workers N] [--short]
workloads: mlp fno2d cnn1d decoder noop (the default), stream1g stream8g (`stream`: both;
  they generate 1.07 and 8.6 GB of data under target/bench-data once)
--threads T: threads per process (default: the cores shared out over the processes)
--nproc P: data-parallel training with P processes on each side (default 1)
--precision P: 32-true (default), bf16-mixed or 16-mixed on both sides (PyTorch: torch.autocast)
--workers N: data workers of both sides of the stream workloads (default 2)";

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        workloads: Vec::new(),
        device: "cpu".into(),
        repeat: 3,
        threads: 0,
        nproc: 1,
        precision: "32-true".into(),
        short: false,
        workers: STREAM_WORKERS,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--device" => {
                options.device = value("--device")?;
                if !["cpu", "cuda"].contains(&options.device.as_str()) {
                    return Err(format!("--device is cpu or cuda\n{USAGE}"));
                }
            }
            "--repeat" => {
                options.repeat = value("--repeat")?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("--repeat needs a positive number\n{USAGE}"))?;
            }
            "--threads" => {
                options.threads = value("--threads")?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("--threads needs a positive number\n{USAGE}"))?;
            }
            "--nproc" => {
                options.nproc = value("--nproc")?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("--nproc needs a positive number\n{USAGE}"))?;
            }
            "--precision" => {
                options.precision = value("--precision")?;
                if !PRECISIONS.contains(&options.precision.as_str()) {
                    return Err(format!("--precision is one of {PRECISIONS:?}\n{USAGE}"));
                }
            }
            "--short" => options.short = true,
            "--workers" => {
                options.workers = value("--workers")?
                    .parse()
                    .map_err(|_| format!("--workers needs a number\n{USAGE}"))?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            "stream" => options
                .workloads
                .extend(WORKLOADS.iter().filter(|w| w.stream_rows.is_some())),
            name => {
                let workload = WORKLOADS
                    .iter()
                    .find(|w| w.name == name)
                    .ok_or_else(|| format!("unknown workload `{name}`\n{USAGE}"))?;
                options.workloads.push(workload);
            }
        }
    }
    if options.workloads.is_empty() {
        // The stream workloads write gigabytes of data: asked for by name, except in short mode
        // (CI), where they read a small data set.
        options.workloads = WORKLOADS
            .iter()
            .filter(|w| options.short || w.stream_rows.is_none())
            .collect();
    }
    if options.threads == 0 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        options.threads = (cores / options.nproc).max(1);
    }
    if options.short {
        options.repeat = 1;
    }
    Ok(options)
}

/// One run of one side.
struct Sample {
    steps_per_second: f64,
    steps_per_epoch: f64,
    parameters: u64,
    peak_rss: u64,
    peak_device: Option<u64>,
    /// stoker's mean microseconds per phase of a step.
    profile: BTreeMap<String, f64>,
}

/// The same thread count for libtorch in both processes.
fn threads(command: &mut Command, n: usize) {
    for var in ["OMP_NUM_THREADS", "MKL_NUM_THREADS"] {
        command.env(var, n.to_string());
    }
}

fn short_args(options: &Options) -> &'static [&'static str] {
    if options.short {
        &["--epochs", "2", "--limit-batches", "5"]
    } else {
        &[]
    }
}

fn number(value: &serde_json::Value, key: &str, what: &str) -> Result<f64, String> {
    value[key]
        .as_f64()
        .ok_or_else(|| format!("{what} has no number `{key}`"))
}

fn epoch_seconds(value: &serde_json::Value, what: &str) -> Result<Vec<f64>, String> {
    value["epoch_seconds"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
        .ok_or_else(|| format!("{what} has no `epoch_seconds`"))
}

fn run_stoker(
    binary: &Path,
    torch: &Torch,
    workload: &Workload,
    options: &Options,
    scratch: &Path,
) -> Result<Sample, String> {
    let config = format!("bench/configs/{}.yaml", workload.file);
    let mut command = Command::new(binary);
    command
        .current_dir(workspace_root())
        .args(["train", &config, "--output-dir"])
        .arg(scratch)
        .args(["--set", &format!("environment.device={}", options.device)]);
    if options.nproc > 1 {
        command.args(["--nproc", &options.nproc.to_string()]);
    }
    command.args([
        "--set",
        &format!("trainer.args.precision={}", options.precision),
    ]);
    if let Some(data) = stream_folder(workload, options)? {
        command
            .args(["--set", &format!("data.args.train={}", data.display())])
            .args([
                "--set",
                &format!("trainer.args.num_workers={}", options.workers),
            ]);
    }
    if options.short {
        command.args([
            "--set",
            "trainer.args.max_epochs=2",
            "--set",
            "trainer.args.limit_train_batches=5",
        ]);
    }
    let what = format!("stoker on {config}");
    let finished = run_measured(command, torch, options, &what)?;
    let run_dir = finished
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| format!("{what} printed no run directory"))?;
    let summary_path = Path::new(run_dir.trim()).join("summary.json");
    let summary: serde_json::Value = std::fs::read_to_string(&summary_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| format!("{what}: cannot read {}", summary_path.display()))?;
    let epochs = epoch_seconds(&summary, &what)?.len().max(1) as f64;
    let steps_per_epoch = number(&summary, "global_step", &what)? / epochs;
    let profile = summary["step_profile_us"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    let parameters = number(&summary, "trainable_parameters", &what)? as u64;
    sample(
        &summary,
        &what,
        steps_per_epoch,
        parameters,
        finished,
        profile,
    )
}

/// The folder of a stream workload's data (generated when missing); `None` for the others.
fn stream_folder(workload: &Workload, options: &Options) -> Result<Option<PathBuf>, String> {
    let Some(rows) = workload.stream_rows else {
        return Ok(None);
    };
    let rows = if options.short {
        stream_data::SHORT_ROWS
    } else {
        rows
    };
    stream_data::ensure(&env::target_dir().join("bench-data"), rows).map(Some)
}

fn run_reference(torch: &Torch, workload: &Workload, options: &Options) -> Result<Sample, String> {
    let script = format!("bench/reference/{}.py", workload.file);
    let mut command = Command::new(torch.python());
    command.current_dir(workspace_root());
    if options.nproc > 1 {
        command.args([
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
        ]);
        command.arg(options.nproc.to_string());
    }
    command
        .arg(&script)
        .args(["--device", &options.device])
        .args(["--threads", &options.threads.to_string()])
        .args(["--precision", &options.precision])
        .args(short_args(options));
    if let Some(data) = stream_folder(workload, options)? {
        command
            .arg("--data")
            .arg(data)
            .args(["--workers", &options.workers.to_string()]);
    }
    let what = format!("PyTorch {script}");
    let finished = run_measured(command, torch, options, &what)?;
    let line = finished
        .stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| format!("{what} printed no JSON result"))?;
    let result: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("{what}: {e}: {line}"))?;
    let steps_per_epoch = number(&result, "steps_per_epoch", &what)?;
    let parameters = number(&result, "parameters", &what)? as u64;
    sample(
        &result,
        &what,
        steps_per_epoch,
        parameters,
        finished,
        BTreeMap::new(),
    )
}

/// Runs one side's process with torch's environment and the bench's thread count, measuring
/// its peak memory; an exit other than 0 is an error naming `what`.
fn run_measured(
    mut command: Command,
    torch: &Torch,
    options: &Options,
    what: &str,
) -> Result<measure::Finished, String> {
    env::apply(&mut command, torch);
    threads(&mut command, options.threads);
    let finished = measure::run(command, options.device == "cuda")?;
    if finished.code != Some(0) {
        return Err(format!("{what} failed (exit {:?})", finished.code));
    }
    Ok(finished)
}

/// One side's sample from its result (`epoch_seconds`) and its measured process.
fn sample(
    result: &serde_json::Value,
    what: &str,
    steps_per_epoch: f64,
    parameters: u64,
    finished: measure::Finished,
    profile: BTreeMap<String, f64>,
) -> Result<Sample, String> {
    let seconds = epoch_seconds(result, what)?;
    Ok(Sample {
        steps_per_second: steps_per_second(steps_per_epoch, &seconds)
            .ok_or_else(|| format!("{what}: no epoch was timed"))?,
        steps_per_epoch,
        parameters,
        peak_rss: finished.peak_rss,
        peak_device: finished.peak_device,
        profile,
    })
}

/// The two sides of one workload must train the same thing for the ratio to mean anything.
fn check_same(workload: &Workload, stoker: &Sample, torch: &Sample) -> Result<(), String> {
    if stoker.parameters != torch.parameters || stoker.steps_per_epoch != torch.steps_per_epoch {
        return Err(format!(
            "workload {}: stoker trains {} parameters in {} steps per epoch, the PyTorch reference {} in {}: \
             bench/configs/{}.yaml and bench/reference/{}.py must describe the same model and data",
            workload.name,
            stoker.parameters,
            stoker.steps_per_epoch,
            torch.parameters,
            torch.steps_per_epoch,
            workload.file,
            workload.file
        ));
    }
    Ok(())
}

/// `cargo xtask bench ...`.
pub fn run(args: &[String]) -> Result<i32, String> {
    let options = parse(args)?;
    let torch = setup::ensure_torch()?;
    let binary = runner::build(&torch)?;
    let scratch = env::target_dir().join("bench-runs");
    let _ = std::fs::remove_dir_all(&scratch);
    let mut table = Table::new(
        &options.device,
        options.threads,
        options.nproc,
        &options.precision,
        options.repeat,
        options.short,
    );
    table.stream_workers = options.workers;
    for workload in &options.workloads {
        let mut row = Row::new(workload.name);
        for repeat in 0..options.repeat {
            eprintln!(
                "bench: {} ({}/{})",
                workload.name,
                repeat + 1,
                options.repeat
            );
            // Alternate which side runs first, so that neither always gets a cooler machine.
            let stoker_first = repeat % 2 == 0;
            let mut torch_sample = None;
            if workload.has_reference && !stoker_first {
                torch_sample = Some(run_reference(&torch, workload, &options)?);
            }
            let stoker = run_stoker(&binary, &torch, workload, &options, &scratch)?;
            if workload.has_reference && stoker_first {
                torch_sample = Some(run_reference(&torch, workload, &options)?);
            }
            if let Some(t) = &torch_sample {
                check_same(workload, &stoker, t)?;
            }
            row.add(stoker, torch_sample);
        }
        table.push(row);
    }
    let text = table.markdown();
    println!("{text}");
    if options.short {
        eprintln!("bench: short mode (2 epochs of 5 steps, one repeat): results not written");
    } else {
        let stream = match options.workers {
            _ if options.workloads.iter().any(|w| w.stream_rows.is_none()) => String::new(),
            STREAM_WORKERS => "-stream".to_string(),
            n => format!("-stream-workers{n}"),
        };
        let path = results_path(&options.device, options.nproc, &options.precision, &stream)?;
        std::fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("bench: wrote {}", path.display());
    }
    Ok(0)
}

/// `bench/results/<date>-<device>[-nproc<P>][-<precision>]<stream>.md`; `stream` is
/// `-stream[-workers<N>]` when only stream workloads ran, so that they do not overwrite the
/// day's table of the others.
fn results_path(
    device: &str,
    nproc: usize,
    precision: &str,
    stream: &str,
) -> Result<PathBuf, String> {
    let dir = workspace_root().join("bench").join("results");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let processes = match nproc {
        1 => String::new(),
        n => format!("-nproc{n}"),
    };
    let precision = match precision {
        "32-true" => String::new(),
        other => format!("-{other}"),
    };
    Ok(dir.join(format!(
        "{}-{device}{processes}{precision}{stream}.md",
        report::today()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_workloads_and_flags_and_refuses_the_unknown() {
        let o = parse(&args(&["mlp", "noop", "--repeat", "5", "--device", "cuda"])).unwrap();
        let names: Vec<_> = o.workloads.iter().map(|w| w.name).collect();
        assert_eq!(names, ["mlp", "noop"]);
        assert_eq!((o.repeat, o.device.as_str()), (5, "cuda"));
        let all = parse(&args(&["--short", "--repeat", "4"])).unwrap();
        assert_eq!(all.workloads.len(), WORKLOADS.len());
        let default: Vec<_> = parse(&args(&[]))
            .unwrap()
            .workloads
            .iter()
            .map(|w| w.name)
            .collect();
        assert_eq!(default, ["mlp", "fno2d", "cnn1d", "decoder", "noop"]);
        let stream: Vec<_> = parse(&args(&["stream"]))
            .unwrap()
            .workloads
            .iter()
            .map(|w| w.name)
            .collect();
        assert_eq!(stream, ["stream1g", "stream8g"]);
        assert_eq!(all.repeat, 1, "short mode runs once");
        assert!(
            parse(&args(&["resnet"]))
                .unwrap_err()
                .contains("unknown workload")
        );
        assert!(parse(&args(&["--device", "tpu"])).is_err());
        assert!(parse(&args(&["--repeat", "0"])).is_err());
        let pair = parse(&args(&["mlp", "--nproc", "2", "--threads", "1"])).unwrap();
        assert_eq!((pair.nproc, pair.threads), (2, 1));
        assert!(parse(&args(&["--nproc", "0"])).is_err());
        let mixed = parse(&args(&["cnn1d", "--precision", "bf16-mixed"])).unwrap();
        assert_eq!(mixed.precision, "bf16-mixed");
        assert_eq!(all.precision, "32-true");
        assert!(parse(&args(&["--precision", "fp8"])).is_err());
        assert_eq!(all.workers, 2);
        assert_eq!(
            parse(&args(&["stream", "--workers", "0"])).unwrap().workers,
            0
        );
    }

    #[test]
    fn every_workload_has_a_config_and_its_reference() {
        let root = workspace_root();
        for w in &WORKLOADS {
            assert!(
                root.join(format!("bench/configs/{}.yaml", w.file))
                    .is_file()
            );
            assert_eq!(
                root.join(format!("bench/reference/{}.py", w.file))
                    .is_file(),
                w.has_reference,
                "{}",
                w.name
            );
        }
    }
}
