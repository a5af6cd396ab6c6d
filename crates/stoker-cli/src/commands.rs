//! `stoker train`, `check`, `eval` and `predict`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use stoker::checkpoint;
use stoker::config::ConfigError;
use stoker::console;
use stoker::data::Split;
use stoker::fs::write_atomic;
use stoker::logger::{RunInfo, RunStatus};
use stoker::native::device::describe as describe_device;
use stoker::run::create_run_dir;
use stoker::trainer::{FitReport, TrainingParts};
use stoker_trainer::evaluate;
use stoker_trainer::predict::predict as write_predictions;

use crate::assemble::{Assembled, assemble, load, panic_message};
use crate::close::close_run;
use crate::resume::{self, Refusal};
use crate::run_log;
use crate::{EXIT_BAD_INPUT, EXIT_FAILED};

/// Exit status after a signal interrupted training (a checkpoint was written).
pub const EXIT_INTERRUPTED: i32 = 130;

fn bad_input(error: ConfigError) -> i32 {
    eprintln!("{error}");
    EXIT_BAD_INPUT
}

fn refused(refusal: Refusal, source: &str) -> i32 {
    eprintln!(
        "error: {}\n  --> {source}\n hint: {}",
        refusal.message, refusal.hint
    );
    EXIT_BAD_INPUT
}

/// Loads and builds the experiment, printing its errors (the exit code on failure).
pub fn prepare(config: &Path, sets: &[String]) -> Result<Assembled, i32> {
    let experiment = load(config, sets).map_err(bad_input)?;
    assemble(experiment).map_err(bad_input)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn describe(assembled: &Assembled) -> String {
    describe_parts(&assembled.experiment, &assembled.parts)
}

fn describe_parts(e: &stoker::experiment::Experiment, parts: &TrainingParts) -> String {
    let info = parts.data.info();
    format!(
        "{}: {} on {} | model {} ({} parameters) | data {} (train {}, val {}, test {} samples)",
        e.name,
        e.trainer.name,
        describe_device(e.environment.device),
        e.model.name,
        parts.model.num_params(),
        e.data.name,
        info.len(Split::Train),
        info.len(Split::Val),
        info.len(Split::Test),
    )
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
    let mut sets = sets.to_vec();
    if let Some(dir) = output_dir {
        sets.push(format!("environment.output_dir={}", dir.display()));
    }
    let assembling = Instant::now();
    let mut assembled = match prepare(config, &sets) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let assembled_in = assembling.elapsed().as_secs_f64();
    let which = match resume_from {
        Some(which) => Some(which.to_string()),
        None if assembled.experiment.trainer.spec.auto_resume() => {
            resume::newest(&assembled.experiment).map(|p| p.display().to_string())
        }
        None => None,
    };
    let mut continued = None;
    if let Some(which) = which {
        let found = resume::resolve(&which, &assembled.experiment)
            .and_then(|path| resume::load(&path))
            .and_then(|r| {
                resume::check_config(&r, &assembled.experiment, allow_change).map(|()| r)
            });
        match found {
            Ok(r) => {
                continued = resume::run_dir_of(&r.path);
                assembled.parts.resume = Some(r);
            }
            Err(refusal) => return refused(refusal, &format!("--resume {which}")),
        }
    }
    let Assembled {
        experiment,
        parts,
        mut trainer,
    } = assembled;

    let (dir, version) = match continued {
        Some(found) => found,
        None => match create_run_dir(&experiment.environment.output_dir, &experiment.name) {
            Ok(created) => created,
            Err(e) => {
                eprintln!("error: cannot create the run directory: {e}");
                return EXIT_FAILED;
            }
        },
    };
    run_log::init(&dir);
    tracing::info!(
        "stoker {} train {}{}",
        env!("CARGO_PKG_VERSION"),
        config.display(),
        sets.iter()
            .map(|s| format!(" --set {s}"))
            .collect::<String>()
    );
    console::note(describe_parts(&experiment, &parts));
    tracing::info!(
        "device {}; components built in {:.2}s",
        describe_device(experiment.environment.device),
        assembled_in
    );
    let config_yaml = experiment.resolved_yaml();
    tracing::info!("resolved config:\n{config_yaml}");
    if let Err(e) = write_atomic(&dir.join("config.yaml"), config_yaml.as_bytes()) {
        eprintln!("error: {e}");
        return EXIT_FAILED;
    }
    if let Some(report) = parts.data.normalization() {
        tracing::info!(
            "normalization fitted on the training split:\n{}",
            report.summary
        );
        if let Err(e) = crate::normalization::write(&dir, &report) {
            eprintln!("error: cannot write {}: {e}", report.file_name);
            return EXIT_FAILED;
        }
        console::note(format!(
            "normalization fitted on the training split: {}",
            report.file_name
        ));
    }
    let run = RunInfo {
        name: experiment.name.clone(),
        version,
        dir: dir.clone(),
        config_yaml,
    };
    console::note(format!("run directory {}", dir.display()));

    let loggers = parts.loggers.clone();
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| trainer.fit(parts, &run)));
    let failure = match outcome {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(panic_message(&panic)),
    };
    let report = match failure {
        Ok(report) => report,
        Err(message) => {
            tracing::error!(
                "training failed after {:.2}s: {message}",
                started.elapsed().as_secs_f64()
            );
            close_run(&dir, &loggers, RunStatus::Failed, None, 0);
            eprintln!("error: training failed: {message}");
            eprintln!(
                "  --> the run directory keeps what was written: {}",
                dir.display()
            );
            return EXIT_FAILED;
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!("fit took {seconds:.2}s");
    let summary = summary_of(&dir, version, &experiment, &report, seconds);
    let status = if report.interrupted {
        RunStatus::Interrupted
    } else {
        RunStatus::Finished
    };
    let written = write_summary(&dir, &summary);
    close_run(&dir, &loggers, status, Some(&summary), report.global_step);
    if let Err(code) = written {
        return code;
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
        "{} epochs, {} steps, {seconds:.2}s",
        report.epochs, report.global_step
    ));
    println!("{}", dir.display());
    0
}

fn summary_of(
    dir: &Path,
    version: usize,
    experiment: &stoker::experiment::Experiment,
    report: &FitReport,
    seconds: f64,
) -> serde_json::Value {
    serde_json::json!({
        "run_dir": absolute(dir),
        "name": experiment.name,
        "version": version,
        "device": describe_device(experiment.environment.device),
        "final_metrics": report.final_metrics,
        "best_metrics": report.best_metrics,
        "test_metrics": report.test_metrics,
        "monitor": report.monitor,
        "best_epoch": report.best_epoch,
        "epochs": report.epochs,
        "global_step": report.global_step,
        "wall_seconds": seconds,
        "stopped_early": report.stopped_early,
        "interrupted": report.interrupted,
        "best_checkpoint": report.best_checkpoint.as_deref().map(absolute),
        "last_checkpoint": report.last_checkpoint.as_deref().map(absolute),
        "trainable_parameters": report.trainable_parameters,
        "epoch_seconds": report.epoch_seconds,
        "step_profile_us": report.step_profile,
    })
}

fn write_summary(dir: &Path, summary: &serde_json::Value) -> Result<(), i32> {
    let text = serde_json::to_string_pretty(summary).unwrap_or_default();
    write_atomic(&dir.join("summary.json"), text.as_bytes()).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_FAILED
    })
}

/// `stoker check CONFIG [--set K=V]...`.
pub fn check(config: &Path, sets: &[String]) -> i32 {
    match prepare(config, sets) {
        Ok(assembled) => {
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

/// `stoker eval CONFIG --ckpt PATH [--split val] [--json]`.
pub fn eval(config: &Path, ckpt: &Path, split: &str, sets: &[String], json: bool) -> i32 {
    let split = match parse_split(split) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let Assembled { mut parts, .. } = match with_weights(config, ckpt, sets) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if parts.data.info().len(split) == 0 {
        eprintln!("error: the {split} split of this config is empty\n hint: pick another --split");
        return EXIT_BAD_INPUT;
    }
    let model = parts.model.for_eval();
    let result = evaluate(
        model.as_ref(),
        parts.data.as_ref(),
        split,
        parts.loss.as_ref(),
        parts.metrics.of(split),
        None,
    );
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
        let dir = resume::run_dir_of(ckpt)
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
