//! What the runner tunes before training (Lightning's `Tuner`): the batch size
//! ([`batch_size`], `trainer.args.auto_scale_batch_size`) and then the learning rate
//! ([`lr_find`], `trainer.args.auto_lr_find`). Each runs short trainings of the experiment
//! itself, assembled from its config with a few `--set`s, in a temporary directory; the
//! training that follows is assembled again with what they found set in its config, so its
//! `config.yaml` says what trained and a resume keeps it.

pub mod batch_size;
pub mod lr_find;

use std::path::{Path, PathBuf};

use stoker::experiment::Experiment;

/// The `--set`s that make a run of the experiment a short, training-only one: `steps`
/// optimizer steps, no validation, callbacks, loggers, checkpoints or report, written under
/// `dir`, and no tuning of its own.
pub fn short_run_sets(steps: usize, dir: &Path) -> Vec<String> {
    [
        format!("trainer.args.max_steps={steps}"),
        format!("trainer.args.max_epochs={steps}"),
        "trainer.args.max_time=null".into(),
        "trainer.args.limit_val_batches=0".into(),
        "trainer.args.num_sanity_val_steps=0".into(),
        "trainer.args.enable_checkpointing=false".into(),
        "trainer.args.test_after_fit=false".into(),
        "trainer.args.auto_resume=false".into(),
        "trainer.args.enable_progress_bar=false".into(),
        "trainer.args.enable_model_summary=false".into(),
        "trainer.args.auto_scale_batch_size=null".into(),
        "trainer.args.auto_lr_find=false".into(),
        "callbacks=[]".into(),
        "loggers=[]".into(),
        format!("environment.output_dir={}", dir.display()),
    ]
    .into()
}

/// A temporary directory for the short runs, removed when dropped.
pub struct Scratch {
    /// The directory.
    pub dir: PathBuf,
}

impl Scratch {
    /// `<tmp>/stoker-<what>-<pid>`.
    pub fn new(what: &str) -> Self {
        Scratch {
            dir: std::env::temp_dir().join(format!("stoker-{what}-{}", std::process::id())),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The config of the checkpoint `train` is about to resume from (`--resume`, or
/// `auto_resume` finding one), if it will resume: what a tuned run keeps instead of tuning
/// again.
pub fn resumed_config(experiment: &Experiment, resume: Option<&str>) -> Option<serde_yaml::Value> {
    let which = match resume {
        Some(which) => which.to_string(),
        None if experiment.trainer.spec.auto_resume() => {
            crate::resume::newest(experiment).0?.display().to_string()
        }
        None => return None,
    };
    let found = crate::resume::resolve(&which, experiment).ok()?;
    let saved = crate::resume::load(&found.path).ok()?;
    serde_yaml::from_str(&saved.state.config).ok()
}
