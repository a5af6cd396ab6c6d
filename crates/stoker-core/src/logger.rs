//! The logger contract.

use std::path::PathBuf;

use crate::error::Result;

/// The run a logger writes into.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The experiment name (`runs/<name>/...`).
    pub name: String,
    /// The version number (`version_<N>`).
    pub version: usize,
    /// The run directory.
    pub dir: PathBuf,
    /// The resolved config, as YAML text.
    pub config_yaml: String,
}

/// One logged row: metrics at an epoch and optimizer step.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    /// The epoch (0-based).
    pub epoch: usize,
    /// The global optimizer step.
    pub step: usize,
    /// The values, in the order they were logged.
    pub values: Vec<(String, f64)>,
}

/// A built logger.
pub trait Logger: Send {
    /// The run starts.
    fn start(&mut self, run: &RunInfo) -> Result<()>;

    /// Logs one row.
    fn log(&mut self, row: &LogRow) -> Result<()>;

    /// The run ends (also after an error): flush and close.
    fn finish(&mut self) -> Result<()>;

    /// What the logger needs to continue a run from a checkpoint (e.g. how many rows it had
    /// written then).
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Continues `run` from a checkpoint: keep what was logged up to `state`, drop what was
    /// logged after it. The default starts afresh.
    fn resume(&mut self, run: &RunInfo, _state: &serde_json::Value) -> Result<()> {
        self.start(run)
    }
}
