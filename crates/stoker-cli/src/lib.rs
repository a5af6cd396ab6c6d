//! The `stoker` command. The runner binary that `cargo xtask` generates (with every plugin crate
//! force-linked) calls [`run`].
//!
//! Exit status: 0 on success, 2 for bad input (config, data file, checkpoint) reported before any
//! training starts, 1 when training itself fails.

// The run lifecycle, which links the framework's own component crates.
use stoker_run as _;

pub mod commands;
pub mod data;
pub mod launch;
pub mod list;
mod lr_find;
mod malloc;
pub mod report;
pub mod stats;
mod tune;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Exit status for bad input.
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit status for a failure while training.
pub const EXIT_FAILED: i32 = 1;

/// stoker: train models described by a YAML experiment file.
#[derive(Debug, Parser)]
#[command(name = "stoker", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train the experiment CONFIG describes.
    Train {
        /// The experiment file.
        config: PathBuf,
        /// Override a key: `--set trainer.args.max_epochs=5` (VALUE is YAML).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Write the run under DIR instead of `environment.output_dir`.
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
        /// Continue from a checkpoint: `last` or `best` (of the experiment's newest run) or a file.
        #[arg(long, value_name = "last|best|PATH")]
        resume: Option<String>,
        /// Resume although the config differs from the checkpoint's (never for model changes).
        #[arg(long)]
        allow_config_change: bool,
        /// Start N processes on this machine for data-parallel training (torchrun's --nproc-per-node); the strategy `auto` then trains them as `ddp`.
        #[arg(long, value_name = "N")]
        nproc: Option<usize>,
        /// Machines taking part, each running this command with its own --node-rank (with --nproc).
        #[arg(long, value_name = "M", default_value_t = 1, requires = "nproc")]
        nnodes: usize,
        /// This machine's rank, 0 to M-1 (with --nproc).
        #[arg(long, value_name = "I", default_value_t = 0, requires = "nproc")]
        node_rank: usize,
        /// The host of rank 0, reachable from every machine (with --nproc; 127.0.0.1 on one machine).
        #[arg(long, value_name = "HOST", requires = "nproc")]
        master_addr: Option<String>,
        /// The port rank 0 serves the rendezvous on (with --nproc; a free one on a single machine when left out).
        #[arg(long, value_name = "PORT", requires = "nproc")]
        master_port: Option<u16>,
    },
    /// Validate CONFIG fully (names, arguments, data files, one trial batch) without training.
    Check {
        /// The experiment file.
        config: PathBuf,
        /// Override a key (as for `train`).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Lightning's learning-rate finder on CONFIG: a short range test from 1e-8 to 1, the curve in
    /// OUTPUT_DIR/NAME/lr_find/ (csv and a plot) and the suggested learning rate.
    LrFind {
        /// The experiment file.
        config: PathBuf,
        /// Override a key (as for `train`).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// The first rate tried.
        #[arg(long, default_value_t = 1e-8)]
        min_lr: f64,
        /// The last rate tried.
        #[arg(long, default_value_t = 1.0)]
        max_lr: f64,
        /// Optimizer steps, one rate each.
        #[arg(long, default_value_t = 100)]
        num_training: usize,
    },
    /// Statistics of the training split's tensors and the normalization the config fits.
    Stats {
        /// The experiment file.
        config: PathBuf,
        /// Override a key (as for `train`).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Also write the normalization statistics to this safetensors file.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// List the registered components of every kind, or of KIND.
    List {
        /// The kind to list (all when not given).
        #[arg(help = stoker::registry::Kind::NAMES)]
        kind: Option<String>,
    },
    /// Write a checkpoint's predictions for a split to a safetensors file.
    Predict {
        /// The experiment file (a run's `config.yaml` works).
        config: PathBuf,
        /// The checkpoint.
        #[arg(long)]
        ckpt: PathBuf,
        /// The split: train, val or test (test when it has samples, else val).
        #[arg(long)]
        split: Option<String>,
        /// The file written (default: predictions-<split>.safetensors in the checkpoint's run).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Override a key (as for `train`).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Regenerate RUN_DIR's report.html and plots/*.png from what the run logged.
    Report {
        /// The run directory (`runs/<name>/version_<N>`).
        run_dir: PathBuf,
    },
    /// Overlay the learning curves and final metrics of several runs in one HTML page.
    Compare {
        /// The run directories.
        #[arg(required = true, num_args = 1..)]
        run_dirs: Vec<PathBuf>,
        /// The page written.
        #[arg(long, default_value = "compare.html")]
        output: PathBuf,
    },
    /// Convert data: `data shard SRC OUT [--shard-size 256MB]` writes SRC (.npz or .safetensors)
    /// as a folder of .safetensors shards that TensorFile reads in place.
    Data {
        #[command(subcommand)]
        action: DataAction,
    },
    /// Search hyper-parameters: each trial trains the sweep file's experiment with its own
    /// parameters (grid, random or TPE sampling, with pruning), in `runs/<sweep>/trial_<N>/`;
    /// the study is kept in Optuna's journal format, with a report and `best.yaml`.
    Sweep {
        /// The sweep file (`configs/sweeps/NAME.yaml`).
        file: PathBuf,
        /// Trials run at once (each gets its share of the cores).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Continue the sweep's study: finished trials are kept, trials that were running run again.
        #[arg(long)]
        resume: bool,
        /// Check the sweep file against its experiment and show the plan, without running a trial.
        #[arg(long)]
        check: bool,
    },
    /// Evaluate a checkpoint on a split of the experiment's data.
    Eval {
        /// The experiment file (a run's `config.yaml` works).
        config: PathBuf,
        /// The checkpoint (`runs/.../checkpoints/best.safetensors`).
        #[arg(long)]
        ckpt: PathBuf,
        /// The split: train, val or test.
        #[arg(long, default_value = "val")]
        split: String,
        /// Override a key (as for `train`).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Print the metrics as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Parses the command line, runs the command, and returns the exit status.
/// What `stoker data` does.
#[derive(Debug, Subcommand)]
pub enum DataAction {
    /// Write a tensor file as a folder of .safetensors shards (for `in_memory: false`).
    Shard {
        /// The source file (.npz, compressed or not, or .safetensors).
        source: PathBuf,
        /// The folder to create.
        out: PathBuf,
        /// The size of a shard (256MB, 1GB, bytes).
        #[arg(long, default_value = "256MB")]
        shard_size: String,
    },
}

/// Runs the command line this process was started with; returns the exit status.
pub fn run() -> i32 {
    malloc::keep_freed_blocks();
    let cli = Cli::parse();
    let duplicates = stoker::registry::duplicates();
    if !duplicates.is_empty() {
        for d in duplicates {
            eprintln!("error: {d}");
        }
        eprintln!(" hint: rename one of them; names must be unique per kind");
        return EXIT_BAD_INPUT;
    }
    match cli.command {
        Command::Train {
            nproc: Some(nproc),
            nnodes,
            node_rank,
            master_addr,
            master_port,
            ..
        } => launch::launch(&launch::Launch {
            nproc,
            nnodes,
            node_rank,
            master_addr,
            master_port,
        }),
        Command::Train {
            config,
            sets,
            output_dir,
            resume,
            allow_config_change,
            nproc: None,
            ..
        } => match launch::asked_by_config(&config, &sets) {
            Err(code) => code,
            // `devices: N` in the config: this command starts the N processes, as --nproc N.
            Ok(Some(devices)) => launch::launch(&launch::Launch::on_this_machine(devices)),
            Ok(None) => commands::train(
                &config,
                &sets,
                output_dir,
                resume.as_deref(),
                allow_config_change,
            ),
        },
        Command::Predict {
            config,
            ckpt,
            split,
            output,
            sets,
        } => commands::predict(&config, &ckpt, split.as_deref(), output, &sets),
        Command::Check { config, sets } => commands::check(&config, &sets),
        Command::LrFind {
            config,
            sets,
            min_lr,
            max_lr,
            num_training,
        } => lr_find::lr_find(
            &config,
            &sets,
            stoker::tuning::LrFindArgs {
                min_lr,
                max_lr,
                num_training,
                ..Default::default()
            },
        ),
        Command::List { kind } => list::list(kind.as_deref()),
        Command::Stats {
            config,
            sets,
            output,
        } => stats::stats(&config, &sets, output.as_deref()),
        Command::Report { run_dir } => report::report(&run_dir),
        Command::Compare { run_dirs, output } => report::compare(&run_dirs, &output),
        Command::Eval {
            config,
            ckpt,
            split,
            sets,
            json,
        } => commands::eval(&config, &ckpt, &split, &sets, json),
        Command::Data {
            action:
                DataAction::Shard {
                    source,
                    out,
                    shard_size,
                },
        } => data::shard(&source, &out, &shard_size),
        Command::Sweep {
            file,
            jobs,
            resume,
            check,
        } => commands::sweep(&file, jobs, resume, check),
    }
}
