//! `train`'s tuning before training (Lightning's `Tuner`): the batch-size finder
//! (`trainer.args.auto_scale_batch_size`), then the learning-rate finder
//! (`trainer.args.auto_lr_find`) at the batch size found. What they find is added to the run's
//! `--set`s, with the finders turned off, so that `config.yaml` says what trained; a run that
//! resumes takes both from its checkpoint's config and runs neither. With several processes
//! both are refused: each process would find its own values.

use std::path::Path;

use stoker::console;
use stoker::data::Split;
use stoker_run::tuner::{batch_size, lr_find, resumed_config};
use stoker_run::{Assembled, RunError};

use crate::{EXIT_BAD_INPUT, EXIT_FAILED};

/// What tuning adds to the run.
pub struct Tuned {
    /// The `--set`s of what was found.
    pub sets: Vec<String>,
    /// Files for the run directory (the finders' tables).
    pub files: Vec<(String, String)>,
}

/// Whether the experiment asks for any tuning.
pub fn wanted(assembled: &Assembled) -> bool {
    let spec = &assembled.experiment.trainer.spec;
    spec.auto_lr_find().is_some() || spec.auto_scale_batch_size().is_some()
}

fn exit_code(error: RunError) -> i32 {
    eprintln!("{error}");
    match error {
        RunError::BadInput(_) => EXIT_BAD_INPUT,
        _ => EXIT_FAILED,
    }
}

/// Runs the finders the experiment asks for; the exit code when that fails.
pub fn tune(
    config: &Path,
    sets: &[String],
    assembled: &Assembled,
    resume_from: Option<&str>,
) -> Result<Tuned, i32> {
    let spec = &assembled.experiment.trainer.spec;
    let (scale, find_lr) = (spec.auto_scale_batch_size(), spec.auto_lr_find());
    let mut tuned = Tuned {
        sets: Vec::new(),
        files: Vec::new(),
    };
    if stoker::training::strategy::environment::process_place().1 > 1 {
        eprintln!(
            "error: trainer.args.auto_lr_find and auto_scale_batch_size run in one process, but this run has several\n hint: run `cargo xtask lr-find {}` (and find the batch size) first, and set their values in the config",
            config.display()
        );
        return Err(EXIT_BAD_INPUT);
    }
    if let Some(saved) = resumed_config(&assembled.experiment, resume_from) {
        if scale.is_some()
            && let Some(size) = saved["data"]["args"]["batch_size"].as_u64()
        {
            console::note(format!(
                "auto_scale_batch_size: the run resumes with the batch size its finder chose, {size}"
            ));
            tuned.sets.push(format!("data.args.batch_size={size}"));
            tuned
                .sets
                .push("trainer.args.auto_scale_batch_size=null".into());
        }
        if find_lr.is_some()
            && let Some(lr) = saved["optimizer"]["args"]["lr"].as_f64()
        {
            console::note(format!(
                "auto_lr_find: the run resumes with the learning rate its finder chose, {lr:e}"
            ));
            tuned.sets.extend(lr_find::training_sets(lr));
        }
        return Ok(tuned);
    }
    let mut all = sets.to_vec();
    if let Some(args) = scale {
        let on_cuda =
            stoker::native::device::libtorch_cuda_index(&assembled.parts.device).is_some();
        if args.max_memory_mb.is_none() && !on_cuda {
            eprintln!(
                "error: trainer.args.auto_scale_batch_size: on the CPU nothing fails for memory before the machine runs out of it\n  --> {}\n hint: give the limit, e.g. `auto_scale_batch_size: {{mode: power, max_memory_mb: 8000}}`",
                config.display()
            );
            return Err(EXIT_BAD_INPUT);
        }
        let limit = assembled.parts.data.info().len(Split::Train);
        let scaled = batch_size::find(config, &all, &args, limit).map_err(exit_code)?;
        console::note(format!(
            "batch-size finder ({}): training with batch size {} after {} trials",
            match args.mode {
                stoker::tuning::ScaleMode::Power => "power",
                stoker::tuning::ScaleMode::Binsearch => "binsearch",
            },
            scaled.batch_size,
            scaled.trials.len()
        ));
        tuned
            .files
            .push(("batch_size_find.csv".into(), scaled.csv()));
        tuned
            .sets
            .push(format!("data.args.batch_size={}", scaled.batch_size));
        tuned
            .sets
            .push("trainer.args.auto_scale_batch_size=null".into());
        all.extend(tuned.sets.iter().cloned());
    }
    if let Some(args) = find_lr {
        let found = lr_find::find(config, &all, &args).map_err(exit_code)?;
        console::note(found.describe());
        tuned.files.push(("lr_find.csv".into(), found.csv()));
        match found.lr() {
            Some(lr) => tuned.sets.extend(lr_find::training_sets(lr)),
            None => {
                console::warn(
                    "auto_lr_find: no suggestion; training with the configured learning rate",
                );
                tuned.sets.push("trainer.args.auto_lr_find=false".into());
            }
        }
    }
    Ok(tuned)
}
