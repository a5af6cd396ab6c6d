//! The trial's side of a sweep: a callback that `stoker train` adds when a sweep started it
//! (`STOKER_SWEEP_SOCKET`). After each epoch that logged the objective it sends the value to the
//! sweep and waits for the pruner's answer; when it is to stop, it asks the loop to stop there,
//! as Optuna's `PyTorchLightningPruningCallback` does.
//!
//! The exchange is one JSON line each way over a Unix socket: `{"trial":3,"step":4,"value":0.8}`
//! and `{"prune":false}`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use stoker::callback::{Callback, HookContext};
use stoker::{Result, StokerError};

use crate::journal::pyjson;

/// The environment variables a sweep sets for its trials.
pub const SOCKET_VAR: &str = "STOKER_SWEEP_SOCKET";
/// The trial's number.
pub const TRIAL_VAR: &str = "STOKER_SWEEP_TRIAL";
/// The objective's name.
pub const METRIC_VAR: &str = "STOKER_SWEEP_METRIC";

/// Reports the objective to the sweep after each epoch and stops when pruned.
#[derive(Debug)]
pub struct SweepReporter {
    stream: BufReader<UnixStream>,
    trial: usize,
    metric: String,
}

impl SweepReporter {
    /// The reporter of a trial a sweep started (`None` outside a sweep).
    pub fn from_env() -> Option<std::result::Result<SweepReporter, String>> {
        let socket = std::env::var_os(SOCKET_VAR)?;
        let connect = || -> std::result::Result<SweepReporter, String> {
            let trial = std::env::var(TRIAL_VAR)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| format!("{TRIAL_VAR} is not a trial number"))?;
            let metric =
                std::env::var(METRIC_VAR).map_err(|_| format!("{METRIC_VAR} is not set"))?;
            let stream = UnixStream::connect(&socket).map_err(|e| {
                format!(
                    "cannot reach the sweep that started this trial at {}: {e}",
                    socket.to_string_lossy()
                )
            })?;
            Ok(SweepReporter {
                stream: BufReader::new(stream),
                trial,
                metric,
            })
        };
        Some(connect())
    }

    /// Sends one value and returns whether the trial is to stop.
    fn report(&mut self, step: usize, value: f64) -> std::io::Result<bool> {
        let line = pyjson::to_line(&serde_json::json!({
            "trial": self.trial,
            "step": step,
            "value": pyjson::float(value),
        }));
        let stream = self.stream.get_mut();
        stream.write_all(format!("{line}\n").as_bytes())?;
        stream.flush()?;
        let mut answer = String::new();
        if self.stream.read_line(&mut answer)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the sweep closed the connection",
            ));
        }
        let answer: serde_json::Value = serde_json::from_str(&answer)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok(answer["prune"].as_bool().unwrap_or(true))
    }
}

impl Callback for SweepReporter {
    fn on_train_epoch_end(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        let Some(value) = ctx
            .epoch_metrics
            .iter()
            .find(|(name, _)| *name == self.metric)
            .map(|(_, v)| *v)
        else {
            return Ok(());
        };
        let epoch = ctx.position.epoch;
        let prune = self.report(epoch, value).map_err(|e| {
            StokerError::msg(format!(
                "trial {}: cannot report `{}` to the sweep ({e}); the sweep has stopped",
                self.trial, self.metric
            ))
        })?;
        if prune {
            ctx.control.stop(format!(
                "the sweep's pruner stopped trial {} at epoch {epoch} ({} {value:.6})",
                self.trial, self.metric
            ));
        }
        Ok(())
    }
}
