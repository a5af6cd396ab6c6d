//! Training an assembled experiment: the checkpoint to resume from (if any), the run
//! directory, what is written before the fit (`config.yaml`, `run.log`, the normalization), the
//! fit itself, and what is written after it (`summary.json`, the report), the loggers closed
//! whatever happened.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use stoker::console;
use stoker::experiment::Experiment;
use stoker::fs::{remove_stale_temporaries, write_atomic};
use stoker::logger::{RunInfo, RunStatus};
use stoker::native::device::describe as describe_device;
use stoker::run::{LockError, create_run_dir, lock_holder, lock_run_dir};
use stoker::trainer::{FitReport, TrainingParts};
use stoker::training::strategy::environment::process_place;

use crate::assemble::{Assembled, panic_message};
use crate::close::close_run;
use crate::resume::{self, Refusal};
use crate::run_log;

/// How to train.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from a checkpoint: `last` or `best` (of the experiment's newest run) or a
    /// file; `None` starts afresh (unless the trainer's `auto_resume` finds one).
    pub resume: Option<String>,
    /// Resume although the config differs from the checkpoint's (never for model changes).
    pub allow_config_change: bool,
    /// The command that started the run, for the top of `run.log`.
    pub invocation: Option<String>,
    /// Files written into the run directory beside `config.yaml` (the learning-rate finder's
    /// curve, which the report plots), as name and content.
    pub files: Vec<(String, String)>,
    /// Write no report (a run nobody reads: the learning-rate finder's range test).
    pub no_report: bool,
}

/// A run that trained (to its end, or until a signal interrupted it).
#[derive(Debug, Clone)]
pub struct Trained {
    /// The run directory (`runs/<name>/version_<N>`).
    pub run_dir: PathBuf,
    /// Its version.
    pub version: usize,
    /// What the trainer reported, with the per-epoch history.
    pub report: FitReport,
    /// `summary.json`'s content.
    pub summary: serde_json::Value,
    /// Seconds the fit took.
    pub seconds: f64,
    /// This process's rank among the processes of a data-parallel run (0 alone); only rank 0
    /// writes the run directory, and `summary` is `null` on the others.
    pub rank: usize,
}

/// Why a run did not train.
#[derive(Debug, Clone)]
pub enum RunError {
    /// Bad input found before training (a checkpoint that does not fit, say); nothing was
    /// written. The message names the file and says how to fix it.
    BadInput(String),
    /// A file of the run could not be written (the run directory, `config.yaml`, ...).
    Write(String),
    /// Training failed; the run directory keeps what was written.
    Failed {
        /// What went wrong.
        message: String,
        /// The run directory, once it exists.
        run_dir: Option<PathBuf>,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::BadInput(message) => f.write_str(message),
            RunError::Write(message) => write!(f, "error: {message}"),
            RunError::Failed { message, run_dir } => {
                write!(f, "error: training failed: {message}")?;
                match run_dir {
                    Some(dir) => write!(
                        f,
                        "\n  --> the run directory keeps what was written: {}",
                        dir.display()
                    ),
                    None => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for RunError {}

fn refused(refusal: Refusal, source: &str) -> RunError {
    RunError::BadInput(format!(
        "error: {}\n  --> {source}\n hint: {}",
        refusal.message, refusal.hint
    ))
}

/// Another process owns the run directory.
fn in_use(held: LockError) -> RunError {
    RunError::BadInput(format!(
        "error: {held}\n hint: wait for that run to end (or stop it) before resuming; a new run needs no --resume"
    ))
}

fn unwritten(message: impl Into<String>) -> RunError {
    RunError::Write(message.into())
}

/// One line about the run: name, trainer, device, model size, data sizes.
pub fn describe(e: &Experiment, parts: &TrainingParts) -> String {
    use stoker::data::{Split, named_sets};
    let info = parts.data.info();
    // A split's size, or its named sets' (`val near 64, val far 48`).
    let sizes = |split: Split| {
        let named: Vec<String> = named_sets(parts.data.as_ref(), split)
            .iter()
            .map(|(name, data)| format!("{split} {name} {}", data.info().len(split)))
            .collect();
        match named.is_empty() {
            true => format!("{split} {}", info.len(split)),
            false => named.join(", "),
        }
    };
    format!(
        "{}: {} on {} | model {} ({} parameters) | data {} (train {}, {}, {} samples)",
        e.name,
        e.trainer.name,
        describe_device(e.environment.device),
        e.model.name,
        parts.model.num_params(),
        e.data.name,
        info.len(Split::Train),
        sizes(Split::Val),
        sizes(Split::Test),
    )
}

impl Assembled {
    /// Trains the run (see the module's documentation).
    pub fn train(mut self, options: &TrainOptions) -> Result<Trained, RunError> {
        let (rank, world_size) = process_place();
        console::set_rank(rank);
        self.check_monitors()
            .map_err(|e| RunError::BadInput(e.to_string()))?;
        let Continuation {
            run_dir: continued,
            from,
            skipped,
            changes,
        } = self.continuation(options, rank == 0)?;
        let Assembled {
            experiment,
            parts,
            mut trainer,
            built_seconds: self_built,
            ..
        } = self;
        if rank != 0 {
            return train_without_writing(&experiment, parts, trainer.as_mut(), continued, rank);
        }
        let batch_size = parts.data.info().batch_size;

        let (dir, version) = match continued {
            Some(found) => found,
            None => create_run_dir(&experiment.environment.output_dir, &experiment.name)
                .map_err(|e| unwritten(format!("cannot create the run directory: {e}")))?,
        };
        // Held until this function returns: one process writes a run directory at a time.
        let (_owner, unlocked) = match lock_run_dir(&dir) {
            Ok(owner) => (Some(owner), None),
            Err(held @ LockError::Held { .. }) => return Err(in_use(held)),
            // A file system without advisory locks (some network mounts): train unguarded.
            Err(LockError::Io(e)) => (None, Some(e)),
        };
        run_log::init(&dir);
        if let Some(e) = unlocked {
            console::warn(format!(
                "cannot lock the run directory ({e}); nothing stops a second process from writing it at the same time"
            ));
        }
        if let Some(invocation) = &options.invocation {
            tracing::info!("{invocation}");
        }
        for skipped in &skipped {
            let instead = match &from {
                Some(p) if skipped.path.ends_with("last.safetensors") => {
                    format!("; resuming from {} instead", p.display())
                }
                Some(_) => String::new(),
                None => "; no checkpoint to resume from, so this is a new run".into(),
            };
            console::warn(format!("resume: {skipped}{instead}"));
        }
        for change in changes {
            console::note(change);
        }
        for stale in remove_stale_temporaries(&dir) {
            console::note(format!(
                "removed {}, left by a write that was killed",
                stale.display()
            ));
        }
        console::note(describe(&experiment, &parts));
        if !experiment.spellings.is_empty() {
            console::note(format!(
                "trainer: PHM-Vibench's keys, in stoker's spelling (config.yaml records the result):\n  {}",
                experiment.spellings.join("\n  ")
            ));
        }
        tracing::info!(
            "device {}; components built in {:.2}s",
            describe_device(experiment.environment.device),
            self_built
        );
        let config_yaml = experiment.resolved_yaml();
        tracing::info!("resolved config:\n{config_yaml}");
        write_atomic(&dir.join("config.yaml"), config_yaml.as_bytes())
            .map_err(|e| unwritten(e.to_string()))?;
        for (name, content) in &options.files {
            write_atomic(&dir.join(name), content.as_bytes())
                .map_err(|e| unwritten(e.to_string()))?;
        }
        if let Some(report) = parts.data.normalization() {
            tracing::info!(
                "normalization fitted on the training split:\n{}",
                report.summary
            );
            crate::normalization::write(&dir, &report)
                .map_err(|e| unwritten(format!("cannot write {}: {e}", report.file_name)))?;
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
        let report = match outcome {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => return Err(fail(&dir, &loggers, e.to_string(), started)),
            Err(panic) => return Err(fail(&dir, &loggers, panic_message(&panic), started)),
        };
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!("fit took {seconds:.2}s");
        let mut summary = summary_of(&dir, version, &experiment, &report, seconds);
        summary["world_size"] = world_size.into();
        summary["batch_size"] = batch_size.into();
        summary["global_batch_size"] = (batch_size * world_size).into();
        let status = if report.interrupted {
            RunStatus::Interrupted
        } else {
            RunStatus::Finished
        };
        let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
        let written = write_atomic(&dir.join("summary.json"), text.as_bytes());
        close_run(
            &dir,
            &loggers,
            status,
            Some(&summary),
            report.global_step,
            !options.no_report,
        );
        written.map_err(|e| unwritten(e.to_string()))?;
        Ok(Trained {
            run_dir: dir,
            version,
            report,
            summary,
            seconds,
            rank: 0,
        })
    }
}

/// A process other than rank 0 of a data-parallel run: it trains its shard of the data
/// alongside rank 0 and writes nothing (rank 0 writes the run directory, the logs and the
/// checkpoints). It resumes from the checkpoint rank 0 resumes from.
fn train_without_writing(
    experiment: &Experiment,
    parts: TrainingParts,
    trainer: &mut dyn stoker::trainer::Trainer,
    continued: Option<(PathBuf, usize)>,
    rank: usize,
) -> Result<Trained, RunError> {
    let (dir, version) =
        continued.unwrap_or_else(|| (experiment.environment.output_dir.join(&experiment.name), 0));
    let run = RunInfo {
        name: experiment.name.clone(),
        version,
        dir: dir.clone(),
        config_yaml: experiment.resolved_yaml(),
    };
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| trainer.fit(parts, &run)));
    let failed = |message: String| RunError::Failed {
        message: format!("rank {rank}: {message}"),
        run_dir: None,
    };
    let report = match outcome {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => return Err(failed(e.to_string())),
        Err(panic) => return Err(failed(panic_message(&panic))),
    };
    Ok(Trained {
        run_dir: dir,
        version,
        report,
        summary: serde_json::Value::Null,
        seconds: started.elapsed().as_secs_f64(),
        rank,
    })
}

/// Where a run continues, when it resumes: the run directory and checkpoint, the unreadable
/// checkpoints passed over, and the notes on what the resume changes.
struct Continuation {
    run_dir: Option<(PathBuf, usize)>,
    from: Option<PathBuf>,
    skipped: Vec<resume::Skipped>,
    changes: Vec<String>,
}

impl Assembled {
    /// Finds the checkpoint to resume from (`--resume`, or `auto_resume`), checks it against the
    /// config and hands it to the parts; nothing is written.
    /// `probe_lock`: whether another process holding the newest run refuses the resume (not
    /// on the ranks after 0 of a data-parallel run, whose rank 0 holds it).
    fn continuation(
        &mut self,
        options: &TrainOptions,
        probe_lock: bool,
    ) -> Result<Continuation, RunError> {
        // A resume of the newest run while another process trains it (a job started twice)
        // is refused, even before that run wrote its first checkpoint.
        let newest = matches!(options.resume.as_deref(), Some("last" | "best"))
            || (options.resume.is_none() && self.experiment.trainer.spec.auto_resume());
        if probe_lock
            && newest
            && let Some(dir) = resume::newest_run_dir(&self.experiment)
            && let Some(pid) = lock_holder(&dir)
        {
            return Err(in_use(LockError::Held { dir, pid }));
        }
        let (which, mut skipped) = match &options.resume {
            Some(which) => (Some(which.clone()), Vec::new()),
            None if self.experiment.trainer.spec.auto_resume() => {
                let (path, skipped) = resume::newest(&self.experiment);
                (path.map(|p| p.display().to_string()), skipped)
            }
            None => (None, Vec::new()),
        };
        let mut continued = None;
        let mut changes = Vec::new();
        let mut from = None;
        if let Some(which) = which {
            let experiment = &self.experiment;
            let found = resume::resolve(&which, experiment).and_then(|found| {
                skipped.extend(found.skipped);
                let r = resume::load(&found.path)?;
                let world =
                    resume::check_world_size(&r, process_place().1, options.allow_config_change)?;
                let accepted = resume::check_config(&r, experiment, options.allow_config_change)?;
                Ok((r, accepted, world))
            });
            let (r, accepted, world) =
                found.map_err(|refusal| refused(refusal, &format!("--resume {which}")))?;
            changes.extend(world);
            continued = resume::run_dir_of(&r.path);
            from = Some(r.path.clone());
            if !accepted.is_empty() {
                changes.push(format!(
                    "resuming with {} (what is still to train changes, what was trained does not)",
                    accepted.join(", ")
                ));
            }
            changes.extend(crate::schedule_change::note(
                &self.experiment,
                &self.parts,
                &r,
            ));
            self.parts.resume = Some(r);
        }
        Ok(Continuation {
            run_dir: continued,
            from,
            skipped,
            changes,
        })
    }
}

/// Training failed: the report and the loggers are closed as failed.
fn fail(
    dir: &Path,
    loggers: &stoker::logger::Loggers,
    message: String,
    started: Instant,
) -> RunError {
    tracing::error!(
        "training failed after {:.2}s: {message}",
        started.elapsed().as_secs_f64()
    );
    close_run(dir, loggers, RunStatus::Failed, None, 0, true);
    RunError::Failed {
        message,
        run_dir: Some(dir.to_path_buf()),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `summary.json`: what the run was and what it reached.
fn summary_of(
    dir: &Path,
    version: usize,
    experiment: &Experiment,
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
