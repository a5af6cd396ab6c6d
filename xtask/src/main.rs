//! `cargo xtask`: the one command of a stoker checkout.
//!
//! ```text
//! cargo xtask train CONFIG [--set KEY=VALUE]... [--output-dir DIR]
//! cargo xtask check CONFIG [--set KEY=VALUE]...
//! cargo xtask list [KIND]
//! cargo xtask eval CONFIG --ckpt PATH [--split val|test|train|val_<name>|test_<name>] [--json]
//! cargo xtask predict CONFIG --ckpt PATH [--split S] [--output F]
//! cargo xtask stats CONFIG [--set KEY=VALUE]... [--output FILE]
//! cargo xtask lr-find CONFIG [--set KEY=VALUE]... [--min-lr L] [--max-lr L] [--num-training N]
//! cargo xtask sweep SWEEP [--jobs N] [--resume]
//! cargo xtask data shard SRC OUT [--shard-size 256MB]
//! cargo xtask report RUN_DIR
//! cargo xtask compare RUN_DIR... [--output FILE]
//! cargo xtask test [NEXTEST ARGS]...
//! cargo xtask example NAME [ARGS]...
//! cargo xtask bench [WORKLOAD...] [--device cpu|cuda] [--repeat N] [--threads T] [--nproc P] [--precision P] [--workers N] [--short]
//! cargo xtask gpu-pack [DIR]
//! cargo xtask setup
//! cargo xtask new-plugin NAME
//! ```
//!
//! Every command first makes sure libtorch is installed (PyPI's torch, cached outside the repo,
//! see [`setup`]), regenerates the runner crate from `plugins/` ([`runner`]), builds it, and runs it.

mod bench;
mod env;
mod example;
mod gpu_pack;
mod new_plugin;
mod runner;
mod setup;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  train CONFIG [--set KEY=VALUE]... [--output-dir DIR]   train an experiment
        [--nproc N [--nnodes M --node-rank I --master-addr H --master-port P]]  data-parallel
  check CONFIG [--set KEY=VALUE]...                      validate a config without training
  list [KIND]                                            list registered components
  eval CONFIG --ckpt PATH [--split S] [--json]           evaluate a checkpoint
  predict CONFIG --ckpt PATH [--split S] [--output F]    write a checkpoint's predictions
  stats CONFIG [--set KEY=VALUE]... [--output F]         training-split and normalization statistics
  lr-find CONFIG [--set KEY=VALUE]...                    the learning-rate finder: curve and suggestion
  sweep SWEEP [--jobs N] [--resume]                      search hyper-parameters (configs/sweeps/)
  data shard SRC OUT [--shard-size 256MB]                a tensor file as a folder of shards (in_memory: false)
  report RUN_DIR                                         (re)write a run's report.html
  compare RUN_DIR... [--output F]                        overlay several runs in one report
  test [ARGS]...                                         run every test (args go to cargo nextest)
  example NAME [ARGS]...                                 run examples/NAME.rs (the library API)
  bench [WORKLOAD...] [--device D] [--repeat N] [--threads T] [--nproc P] [--precision P] [--workers N] [--short]
                                                         stoker vs plain PyTorch, speed and memory
  gpu-pack [DIR]                                         pack the binary, configs, data and the GPU check
                                                         (DIR/run.sh) for a machine without Rust
  setup                                                  install libtorch (PyPI torch) if missing
  new-plugin NAME                                        create plugins/NAME from the template
";

fn main() -> ExitCode {
    // First of all, so that a plugin removed or renamed since the last command (or a branch
    // without it) leaves no runner naming a crate that is gone: cargo could not load the
    // workspace for anything else this command does.
    if env::packed().is_none()
        && let Err(message) = runner::generate()
    {
        eprintln!("xtask error: cannot regenerate the runner crate: {message}");
        return ExitCode::from(1);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    let result = match command.as_str() {
        "train" | "check" | "list" | "eval" | "predict" | "report" | "compare" | "stats"
        | "lr-find" | "sweep" | "data" => runner::run_stoker(command, rest),
        "test" => test::run(rest),
        "example" => example::run(rest),
        "bench" => bench::run(rest),
        "gpu-pack" => gpu_pack::run(rest),
        "setup" => setup::ensure_torch().map(|t| {
            println!("libtorch ready: {}", t.lib_dir.display());
            0
        }),
        "new-plugin" => new_plugin::create(rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(0)
        }
        other => {
            eprintln!("error: unknown command `{other}`\n");
            eprint!("{USAGE}");
            Ok(2)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(message) => {
            eprintln!("xtask error: {message}");
            ExitCode::from(1)
        }
    }
}
