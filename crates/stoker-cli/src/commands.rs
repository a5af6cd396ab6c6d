//! `stoker train`, `stoker check` and `stoker eval`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use stoker::checkpoint;
use stoker::config::ConfigError;
use stoker::data::Split;
use stoker::fs::write_atomic;
use stoker::logger::RunInfo;
use stoker::run::create_run_dir;
use stoker_trainer::evaluate::evaluate;

use crate::assemble::{Assembled, assemble, load, panic_message};
use crate::{EXIT_BAD_INPUT, EXIT_FAILED};

fn bad_input(error: ConfigError) -> i32 {
    eprintln!("{error}");
    EXIT_BAD_INPUT
}

fn prepare(config: &Path, sets: &[String]) -> Result<Assembled, i32> {
    let experiment = load(config, sets).map_err(bad_input)?;
    assemble(experiment).map_err(bad_input)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn describe(assembled: &Assembled) -> String {
    let e = &assembled.experiment;
    let info = assembled.parts.data.info();
    format!(
        "{}: {} on {} | model {} ({} parameters) | data {} (train {}, val {}, test {} samples)",
        e.name,
        e.trainer.name,
        e.environment.device.describe(),
        e.model.name,
        assembled.parts.model.num_params(),
        e.data.name,
        info.len(Split::Train),
        info.len(Split::Val),
        info.len(Split::Test),
    )
}

/// `stoker train CONFIG [--set K=V]... [--output-dir DIR]`.
pub fn train(config: &Path, sets: &[String], output_dir: Option<PathBuf>) -> i32 {
    let mut sets = sets.to_vec();
    if let Some(dir) = output_dir {
        sets.push(format!("environment.output_dir={}", dir.display()));
    }
    let assembled = match prepare(config, &sets) {
        Ok(a) => a,
        Err(code) => return code,
    };
    println!("stoker: {}", describe(&assembled));
    let Assembled {
        experiment,
        parts,
        mut trainer,
    } = assembled;

    let (dir, version) = match create_run_dir(&experiment.environment.output_dir, &experiment.name)
    {
        Ok(created) => created,
        Err(e) => {
            eprintln!("error: cannot create the run directory: {e}");
            return EXIT_FAILED;
        }
    };
    let config_yaml = experiment.resolved_yaml();
    if let Err(e) = write_atomic(&dir.join("config.yaml"), config_yaml.as_bytes()) {
        eprintln!("error: {e}");
        return EXIT_FAILED;
    }
    let run = RunInfo {
        name: experiment.name.clone(),
        version,
        dir: dir.clone(),
        config_yaml,
    };
    println!("stoker: run directory {}", dir.display());

    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| trainer.fit(parts, &run)));
    let report = match outcome {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            eprintln!("error: training failed: {e}");
            eprintln!(
                "  --> the run directory keeps what was written: {}",
                dir.display()
            );
            return EXIT_FAILED;
        }
        Err(panic) => {
            eprintln!("error: training failed: {}", panic_message(&panic));
            eprintln!(
                "  --> the run directory keeps what was written: {}",
                dir.display()
            );
            return EXIT_FAILED;
        }
    };
    let summary = serde_json::json!({
        "run_dir": absolute(&dir),
        "name": experiment.name,
        "version": version,
        "device": experiment.environment.device.describe(),
        "final_metrics": report.final_metrics,
        "best_metrics": report.best_metrics,
        "monitor": report.monitor,
        "best_epoch": report.best_epoch,
        "epochs": report.epochs,
        "global_step": report.global_step,
        "wall_seconds": started.elapsed().as_secs_f64(),
        "best_checkpoint": report.best_checkpoint.as_deref().map(absolute),
        "last_checkpoint": report.last_checkpoint.as_deref().map(absolute),
    });
    let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    if let Err(e) = write_atomic(&dir.join("summary.json"), text.as_bytes()) {
        eprintln!("error: {e}");
        return EXIT_FAILED;
    }
    if let Some(best) = report.best_epoch {
        println!(
            "stoker: best epoch {} by {} | {:.2}s",
            best + 1,
            report.monitor,
            started.elapsed().as_secs_f64()
        );
    }
    println!("{}", dir.display());
    0
}

/// `stoker check CONFIG [--set K=V]...`.
pub fn check(config: &Path, sets: &[String]) -> i32 {
    match prepare(config, sets) {
        Ok(assembled) => {
            println!("config OK: {}", describe(&assembled));
            let e = &assembled.experiment;
            println!(
                "  loss {}, metrics [{}], optimizer {}, scheduler {}, loggers [{}]",
                e.loss.name,
                e.metrics
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                e.optimizer.name,
                e.scheduler.name,
                e.loggers
                    .iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            0
        }
        Err(code) => code,
    }
}

/// `stoker eval CONFIG --ckpt PATH [--split val] [--json]`.
pub fn eval(config: &Path, ckpt: &Path, split: &str, sets: &[String], json: bool) -> i32 {
    let split = match split {
        "train" => Split::Train,
        "val" => Split::Val,
        "test" => Split::Test,
        other => {
            eprintln!("error: unknown split `{other}`\n hint: use train, val or test");
            return EXIT_BAD_INPUT;
        }
    };
    let Assembled { mut parts, .. } = match prepare(config, sets) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if parts.data.info().len(split) == 0 {
        eprintln!("error: the {split} split of this config is empty\n hint: pick another --split");
        return EXIT_BAD_INPUT;
    }
    let loaded = checkpoint::load(ckpt).and_then(|c| parts.model.load_safetensors(c.weights));
    if let Err(e) = loaded {
        eprintln!(
            "error: {e}\n  --> {}\n hint: the checkpoint must come from a run of the same model config",
            ckpt.display()
        );
        return EXIT_BAD_INPUT;
    }
    let model = parts.model.for_eval();
    let result = evaluate(
        model.as_ref(),
        parts.data.as_ref(),
        split,
        parts.loss.as_ref(),
        parts.metrics.of(split),
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
