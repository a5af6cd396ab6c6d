//! `stoker train`, `check`, `eval` and `predict`: flags in, the run lifecycle (`stoker-run`)
//! called, its outcome printed as an exit status.

use std::path::{Path, PathBuf};

use stoker::checkpoint;
use stoker::config::ConfigError;
use stoker::console;
use stoker::data::{Split, named_sets};
use stoker::training::predict::predict as write_predictions;
use stoker::training::{TrainerValidation, evaluate};
use stoker_run::train::describe as describe_parts;
use stoker_run::{Assembled, RunError, TrainOptions};

use crate::{EXIT_BAD_INPUT, EXIT_FAILED};

/// Exit status after a signal interrupted training (a checkpoint was written).
pub const EXIT_INTERRUPTED: i32 = 130;

fn bad_input(error: ConfigError) -> i32 {
    eprintln!("{error}");
    EXIT_BAD_INPUT
}

/// Loads and builds the experiment, printing its errors (the exit code on failure).
pub fn prepare(config: &Path, sets: &[String]) -> Result<Assembled, i32> {
    stoker_run::setup(config, sets).map_err(bad_input)
}

fn describe(assembled: &Assembled) -> String {
    describe_parts(&assembled.experiment, &assembled.parts)
}

fn parse_split(text: &str) -> Result<Split, i32> {
    match text {
        "train" => Ok(Split::Train),
        "val" => Ok(Split::Val),
        "test" => Ok(Split::Test),
        other => {
            eprintln!("error: unknown split `{other}`\n hint: use train, val or test");
            Err(EXIT_BAD_INPUT)
        }
    }
}

/// `stoker train CONFIG [--set K=V]... [--output-dir DIR] [--resume last|best|PATH] [--allow-config-change]`.
pub fn train(
    config: &Path,
    sets: &[String],
    output_dir: Option<PathBuf>,
    resume_from: Option<&str>,
    allow_change: bool,
) -> i32 {
    // With several processes only rank 0 prints notes (from the build on).
    console::set_rank(stoker::training::strategy::environment::process_place().0);
    let mut sets = sets.to_vec();
    if let Some(dir) = output_dir {
        sets.push(format!("environment.output_dir={}", dir.display()));
    }
    let mut assembled = match prepare(config, &sets) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut files = Vec::new();
    if crate::tune::wanted(&assembled) {
        match crate::tune::tune(config, &sets, &assembled, resume_from) {
            Ok(tuned) => {
                sets.extend(tuned.sets);
                files.extend(tuned.files);
            }
            Err(code) => return code,
        }
        assembled = match prepare(config, &sets) {
            Ok(a) => a,
            Err(code) => return code,
        };
    }
    // A trial of a sweep reports its objective to the sweep after each epoch.
    if let Some(reporter) = stoker_sweep::reporter::SweepReporter::from_env() {
        match reporter {
            Ok(reporter) => assembled
                .parts
                .callbacks
                .push(("SweepReporter".into(), Box::new(reporter))),
            Err(message) => {
                eprintln!("error: {message}");
                return EXIT_FAILED;
            }
        }
    }
    let options = TrainOptions {
        resume: resume_from.map(str::to_string),
        allow_config_change: allow_change,
        invocation: Some(format!(
            "stoker {} train {}{}",
            env!("CARGO_PKG_VERSION"),
            config.display(),
            sets.iter()
                .map(|s| format!(" --set {s}"))
                .collect::<String>()
        )),
        files,
        no_report: false,
    };
    let trained = match assembled.train(&options) {
        Ok(trained) => trained,
        Err(error) => {
            eprintln!("{error}");
            return match error {
                RunError::BadInput(_) => EXIT_BAD_INPUT,
                RunError::Write(_) | RunError::Failed { .. } => EXIT_FAILED,
            };
        }
    };
    let report = &trained.report;
    if trained.rank != 0 {
        return if report.interrupted {
            EXIT_INTERRUPTED
        } else {
            0
        };
    }
    if report.interrupted {
        if let Some(path) = &report.last_checkpoint {
            console::note(format!(
                "resume with: cargo xtask train {} --resume {}",
                config.display(),
                path.display()
            ));
        }
        return EXIT_INTERRUPTED;
    }
    if let (Some(best), Some(monitor)) = (&report.best_checkpoint, &report.monitor) {
        console::note(format!("best checkpoint by {monitor}: {}", best.display()));
    }
    console::note(format!(
        "{} epochs, {} steps, {:.2}s",
        report.epochs, report.global_step, trained.seconds
    ));
    println!("{}", trained.run_dir.display());
    0
}

/// `stoker check CONFIG [--set K=V]...`.
pub fn check(config: &Path, sets: &[String]) -> i32 {
    match prepare(config, sets) {
        Ok(assembled) => {
            if let Err(error) = assembled.check_monitors() {
                return bad_input(error);
            }
            println!("config OK: {}", describe(&assembled));
            let e = &assembled.experiment;
            let names = |list: Vec<&str>| list.join(", ");
            println!(
                "  loss {}, metrics [{}], optimizer {}, scheduler {}, callbacks [{}], loggers [{}], augmentations [{}]",
                e.loss.name,
                names(e.metrics.iter().map(|m| m.name.as_str()).collect()),
                e.optimizer.name,
                e.scheduler.name,
                names(e.callbacks.iter().map(|c| c.name.as_str()).collect()),
                names(e.loggers.iter().map(|l| l.name.as_str()).collect()),
                names(e.augmentations.iter().map(|a| a.name.as_str()).collect()),
            );
            for line in &e.spellings {
                println!("  trainer (PHM-Vibench's spelling): {line}");
            }
            0
        }
        Err(code) => code,
    }
}

/// Builds the experiment and loads `ckpt`'s weights into its model.
fn with_weights(config: &Path, ckpt: &Path, sets: &[String]) -> Result<Assembled, i32> {
    let mut assembled = prepare(config, sets)?;
    let loaded =
        checkpoint::load(ckpt).and_then(|c| assembled.parts.model.load_safetensors(c.weights));
    if let Err(e) = loaded {
        eprintln!(
            "error: {e}\n  --> {}\n hint: the checkpoint must come from a run of the same model config",
            ckpt.display()
        );
        return Err(EXIT_BAD_INPUT);
    }
    Ok(assembled)
}

/// `stoker eval CONFIG --ckpt PATH [--split val | test | val_<name> | test_<name>] [--json]`.
pub fn eval(config: &Path, ckpt: &Path, split_text: &str, sets: &[String], json: bool) -> i32 {
    if json {
        // stdout is the JSON object alone.
        console::notes_to_stderr();
    }
    // `val_<name>`, `test_<name>`: a named validation or test set of the data.
    let named = [Split::Val, Split::Test].into_iter().find_map(|split| {
        let name = split_text.strip_prefix(&format!("{split}_"))?;
        Some((split, name))
    });
    let split = match named {
        Some((split, _)) => split,
        None => match parse_split(split_text) {
            Ok(s) => s,
            Err(code) => return code,
        },
    };
    let Assembled {
        mut parts,
        mut trainer,
        ..
    } = match with_weights(config, ckpt, sets) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let sets = named_sets(parts.data.as_ref(), split);
    let data = match named {
        None => parts.data.as_ref(),
        Some((_, name)) => match sets.iter().find(|(n, _)| *n == name) {
            Some((_, data)) => *data,
            None => {
                let names: Vec<String> = Split::ALL
                    .iter()
                    .map(|s| s.to_string())
                    .chain([Split::Val, Split::Test].iter().flat_map(|s| {
                        named_sets(parts.data.as_ref(), *s)
                            .into_iter()
                            .map(move |(n, _)| format!("{s}_{n}"))
                    }))
                    .collect();
                eprintln!(
                    "error: unknown split `{split_text}`\n hint: use {}",
                    names.join(", ")
                );
                return EXIT_BAD_INPUT;
            }
        },
    };
    let validates = split == Split::Val && named.is_none() && !sets.is_empty();
    if data.info().len(split) == 0 && !validates {
        let hint = match sets.is_empty() {
            true => "pick another --split".to_string(),
            false => {
                let names: Vec<String> = sets.iter().map(|(n, _)| format!("{split}_{n}")).collect();
                format!(
                    "this config's {split} sets are named: --split {}",
                    names.join(" | ")
                )
            }
        };
        eprintln!("error: the {split_text} split of this config is empty\n hint: {hint}");
        return EXIT_BAD_INPUT;
    }
    let model = parts.model.for_eval();
    let result = evaluate(
        &mut TrainerValidation(trainer.as_mut()),
        model.as_ref(),
        data,
        split,
        parts.loss.as_ref(),
        &mut parts.metrics,
        None,
    )
    .map(|values| match named {
        // test_loss -> test_<name>_loss
        Some((split, name)) => values
            .into_iter()
            .map(|(k, v)| {
                (
                    format!("{split}_{name}_{}", &k[split.as_str().len() + 1..]),
                    v,
                )
            })
            .collect(),
        None => values,
    });
    match result {
        Ok(values) => {
            if json {
                let map: serde_json::Map<String, serde_json::Value> = values
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::json!(v)))
                    .collect();
                println!("{}", serde_json::Value::Object(map));
            } else {
                for (name, value) in values {
                    println!("{name} {value}");
                }
            }
            0
        }
        Err(e) => {
            eprintln!("error: evaluation failed: {e}");
            EXIT_FAILED
        }
    }
}

/// `stoker predict CONFIG --ckpt PATH [--split S] [--output FILE]`.
pub fn predict(
    config: &Path,
    ckpt: &Path,
    split: Option<&str>,
    output: Option<PathBuf>,
    sets: &[String],
) -> i32 {
    let assembled = match with_weights(config, ckpt, sets) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let parts = &assembled.parts;
    let info = parts.data.info();
    let split = match split {
        Some(text) => match parse_split(text) {
            Ok(s) => s,
            Err(code) => return code,
        },
        None if info.len(Split::Test) > 0 => Split::Test,
        None => Split::Val,
    };
    if info.len(split) == 0 {
        eprintln!("error: the {split} split of this config is empty\n hint: pick another --split");
        return EXIT_BAD_INPUT;
    }
    let output = output.unwrap_or_else(|| {
        let dir = stoker_run::resume::run_dir_of(ckpt)
            .map(|(d, _)| d)
            .unwrap_or_else(|| PathBuf::from("."));
        dir.join(format!("predictions-{split}.safetensors"))
    });
    let model = parts.model.for_eval();
    match write_predictions(model.as_ref(), parts.data.as_ref(), split, &output) {
        Ok(samples) => {
            println!(
                "stoker: {samples} {split} predictions written to {}",
                output.display()
            );
            println!("{}", output.display());
            0
        }
        Err(e) => {
            eprintln!("error: prediction failed: {e}");
            EXIT_FAILED
        }
    }
}

/// `stoker sweep FILE [--jobs N] [--resume] [--check]`: checks the sweep file against its
/// experiment (exit 2 before any trial on a mistake), then runs the sweep (with `--check`, shows
/// its plan instead).
pub fn sweep(file: &Path, jobs: usize, resume: bool, check: bool) -> i32 {
    let sweep = match stoker_sweep::sweep_file::SweepFile::load(file) {
        Ok(sweep) => sweep,
        Err(error) => {
            eprintln!("{error}");
            return EXIT_BAD_INPUT;
        }
    };
    if let Err(error) = sweep.check_space() {
        eprintln!("{error}");
        return EXIT_BAD_INPUT;
    }
    // The objective must be a value each epoch logs: the experiment is built once (its data,
    // a trial batch) to know them.
    let assembled = match stoker_run::setup(&sweep.experiment, &sweep.set) {
        Ok(assembled) => assembled,
        Err(error) => {
            eprintln!(
                "{}",
                ConfigError::new(
                    file.display().to_string(),
                    format!("its experiment does not build: {error}")
                )
                .at("experiment")
            );
            return EXIT_BAD_INPUT;
        }
    };
    let objective = &sweep.objective.metric;
    if let Err(error) = sweep.check_objective(assembled.logs(objective), &assembled.logged_names())
    {
        eprintln!("{error}");
        return EXIT_BAD_INPUT;
    }
    drop(assembled);
    if check {
        println!("{}", sweep.plan());
        return 0;
    }
    stoker_sweep::coordinator::run(&sweep, &stoker_sweep::coordinator::Options { jobs, resume })
}
