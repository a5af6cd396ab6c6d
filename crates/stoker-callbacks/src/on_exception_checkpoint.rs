//! `OnExceptionCheckpoint`: a checkpoint when training fails.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use stoker::prelude::*;

/// When training fails, writes a checkpoint of the last completed optimizer step, to resume from once the cause is fixed.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(callback, name = "OnExceptionCheckpoint")]
pub struct OnExceptionCheckpointSpec {
    /// Directory; the run's `checkpoints/` when not given.
    #[serde(default)]
    pub dirpath: Option<PathBuf>,
    /// File name without extension.
    #[serde(default = "default_filename")]
    pub filename: String,
}

fn default_filename() -> String {
    "on_exception".into()
}

/// The built callback.
pub struct OnExceptionCheckpoint {
    spec: OnExceptionCheckpointSpec,
}

impl Callback for OnExceptionCheckpoint {
    fn on_exception(&mut self, ctx: &mut HookContext<'_>, _error: &str) -> Result<()> {
        let dir = self
            .spec
            .dirpath
            .clone()
            .unwrap_or_else(|| ctx.run_dir.join("checkpoints"));
        let path = dir.join(format!("{}.safetensors", self.spec.filename));
        ctx.control.notes.push(format!(
            "OnExceptionCheckpoint: saving {}; resume from it with --resume {}",
            path.display(),
            path.display()
        ));
        ctx.control.save(path, false);
        Ok(())
    }
}

impl CallbackSpec for OnExceptionCheckpointSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn Callback>, BuildError> {
        if self.filename.is_empty() || self.filename.contains('/') {
            return Err(BuildError::at("filename", "must be a plain file name"));
        }
        Ok(Box::new(OnExceptionCheckpoint { spec: self.clone() }))
    }
}
