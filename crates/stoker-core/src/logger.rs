//! The logger contract.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

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

    /// Logs a text (the resolved config, a note) at `step`.
    fn log_text(&mut self, _tag: &str, _step: usize, _text: &str) -> Result<()> {
        Ok(())
    }

    /// Logs a PNG image (learning curves) at `step`.
    fn log_image(&mut self, _tag: &str, _step: usize, _png: &[u8]) -> Result<()> {
        Ok(())
    }

    /// Logs a table a metric computed (`confusion_matrix_val`), as CSV text with a header row,
    /// at `step`.
    fn log_table(&mut self, _tag: &str, _step: usize, _csv: &str) -> Result<()> {
        Ok(())
    }

    /// Every how many optimizer steps this logger wants histograms of the weights and the
    /// gradients; `None` (the default) for never. Computing them costs a device read.
    fn histogram_every_n_steps(&self) -> Option<usize> {
        None
    }

    /// Logs the values of a tensor (`weights/<path>`, `gradients/<path>`) as a histogram.
    fn log_histogram(&mut self, _tag: &str, _step: usize, _values: &[f32]) -> Result<()> {
        Ok(())
    }

    /// Keeps a file of the run (the config, the report) with the logger's record of the run.
    fn log_artifact(&mut self, _path: &std::path::Path) -> Result<()> {
        Ok(())
    }

    /// What the run ended with (`summary.json`: final, best and test metrics, the best
    /// checkpoint's path); called once, before [`set_status`](Logger::set_status).
    fn log_summary(&mut self, _summary: &serde_json::Value) -> Result<()> {
        Ok(())
    }

    /// The run ended with `status` (`finished`, `failed`, `interrupted`); called before
    /// [`finish`](Logger::finish).
    fn set_status(&mut self, _status: RunStatus) -> Result<()> {
        Ok(())
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Training ran to its end (or stopped early on purpose).
    Finished,
    /// Training failed.
    Failed,
    /// A signal interrupted training; a checkpoint allows resuming.
    Interrupted,
}

impl RunStatus {
    /// `finished`, `failed` or `interrupted`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// A logger with the name it was registered under.
pub type NamedLogger = (String, Box<dyn Logger>);

/// The run's loggers, shared by the training loop (which starts them and logs) and the runner
/// (which, after the loop, hands them the report and the run's end and closes them).
#[derive(Clone, Default)]
pub struct Loggers {
    inner: Arc<Mutex<Vec<NamedLogger>>>,
}

impl Loggers {
    /// These loggers.
    pub fn new(loggers: Vec<NamedLogger>) -> Self {
        Loggers {
            inner: Arc::new(Mutex::new(loggers)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<NamedLogger>> {
        // A logger that panicked leaves the list usable: the poison is not ours to judge.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Their names, in config order.
    pub fn names(&self) -> Vec<String> {
        self.lock().iter().map(|(n, _)| n.clone()).collect()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Drops them all (a fast dev run logs nothing).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Calls `f` on every logger, in order; all are called even when one fails, and the first
    /// failure is returned, prefixed with the logger's name.
    pub fn each(&self, mut f: impl FnMut(&str, &mut dyn Logger) -> Result<()>) -> Result<()> {
        let mut first = None;
        for (name, logger) in self.lock().iter_mut() {
            if let Err(e) = f(name, logger.as_mut()) {
                first.get_or_insert(crate::error::StokerError::msg(format!(
                    "logger {name}: {e}"
                )));
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Each logger's name and [`state`](Logger::state), for a checkpoint.
    pub fn states(&self) -> Vec<(String, serde_json::Value)> {
        self.lock()
            .iter()
            .map(|(n, l)| (n.clone(), l.state()))
            .collect()
    }

    /// The steps at which some logger wants histograms: `step` is one when it is a multiple
    /// of some logger's [`histogram_every_n_steps`](Logger::histogram_every_n_steps).
    pub fn wants_histograms(&self, step: usize) -> bool {
        self.lock().iter().any(|(_, l)| {
            l.histogram_every_n_steps()
                .is_some_and(|n| n > 0 && step.is_multiple_of(n))
        })
    }
}
