//! `mlflow`: an MLflow tracking server, through its REST API, from a background thread that
//! never holds training up.

pub mod client;
pub mod worker;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stoker::console;
use stoker::logger::RunStatus;
use stoker::prelude::*;

use crate::hparams::flatten_config;
use client::{Client, MetricPoint};
use worker::{Message, Record, Settings, Shared, now_ms};

/// An MLflow tracking server: the experiment (created when missing), a run with the flattened config as params, every logged value as a metric by step, tags (best checkpoint path, monitor), and the run's files as artifacts (config, summary, report.html, plots, confusion matrices; the best checkpoint with log_model). Sends from a background thread: a server that is down or slow never stops or stalls training; it retries, warns once, and keeps what it could not send in mlflow_unsent.jsonl.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(logger, name = "mlflow")]
pub struct MlflowSpec {
    /// The tracking server, `http://HOST:PORT` (default: the MLFLOW_TRACKING_URI environment variable).
    #[serde(default)]
    pub tracking_uri: Option<String>,
    /// The MLflow experiment, created when missing (default: the config's `name`).
    #[serde(default)]
    pub experiment_name: Option<String>,
    /// The run's name (default: `<name>/version_<N>`).
    #[serde(default)]
    pub run_name: Option<String>,
    /// Tags set on the run.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Also upload the best checkpoint (under `checkpoints/`).
    #[serde(default)]
    pub log_model: bool,
    /// Seconds the end of the run keeps retrying what is unsent before writing it to mlflow_unsent.jsonl.
    #[serde(default = "fifteen")]
    pub flush_timeout_s: f64,
    /// Seconds one request may take before it counts as failed (and is retried).
    #[serde(default = "ten")]
    pub request_timeout_s: f64,
}

fn fifteen() -> f64 {
    15.0
}
fn ten() -> f64 {
    10.0
}

/// The environment variable MLflow's own clients read the server from.
pub const TRACKING_URI_VAR: &str = "MLFLOW_TRACKING_URI";

fn seconds(arg: &str, value: f64) -> std::result::Result<Duration, BuildError> {
    if value.is_finite() && value > 0.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(BuildError::at(
            arg,
            format!("{value} must be a positive number of seconds"),
        ))
    }
}

impl LoggerSpec for MlflowSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn Logger>, BuildError> {
        let uri = match &self.tracking_uri {
            Some(uri) => uri.clone(),
            None => std::env::var(TRACKING_URI_VAR).map_err(|_| {
                BuildError::at("tracking_uri", "no tracking server given").hint(format!(
                    "set tracking_uri: http://HOST:PORT, or the {TRACKING_URI_VAR} environment variable"
                ))
            })?,
        };
        if !(uri.starts_with("http://") || uri.starts_with("https://")) {
            return Err(
                BuildError::at("tracking_uri", format!("`{uri}` is not an http(s) URL")).hint(
                    "stoker talks to a tracking server (`mlflow server`); give its http://HOST:PORT",
                ),
            );
        }
        Ok(Box::new(MlflowLogger {
            spec: self.clone(),
            uri,
            request_timeout: seconds("request_timeout_s", self.request_timeout_s)?,
            flush_timeout: seconds("flush_timeout_s", self.flush_timeout_s)?,
            channel: None,
            shared: Arc::new(Mutex::new(Shared::default())),
            run_dir: PathBuf::new(),
        }))
    }
}

struct Channel {
    tx: Sender<Message>,
    done: Receiver<usize>,
    thread: JoinHandle<()>,
}

/// The logger: hands records to the worker thread.
pub struct MlflowLogger {
    spec: MlflowSpec,
    uri: String,
    request_timeout: Duration,
    flush_timeout: Duration,
    channel: Option<Channel>,
    shared: Arc<Mutex<Shared>>,
    run_dir: PathBuf,
}

impl MlflowLogger {
    fn open(&mut self, run: &RunInfo, resume_run_id: Option<String>) -> Result<()> {
        self.run_dir = run.dir.clone();
        let (tx, rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let client = Client::new(&self.uri, self.request_timeout);
        let settings = Settings {
            uri: self.uri.clone(),
            flush_timeout: self.flush_timeout,
            unsent: run.dir.join("mlflow_unsent.jsonl"),
        };
        let shared = Arc::clone(&self.shared);
        let thread = std::thread::Builder::new()
            .name("stoker-mlflow".into())
            .spawn(move || worker::run(client, settings, shared, rx, done_tx))
            .map_err(|e| StokerError::msg(format!("mlflow: cannot start its thread: {e}")))?;
        self.channel = Some(Channel { tx, done, thread });
        let run_name = self
            .spec
            .run_name
            .clone()
            .unwrap_or_else(|| format!("{}/version_{}", run.name, run.version));
        let mut tags: Vec<(String, String)> = self.spec.tags.clone().into_iter().collect();
        tags.push(("mlflow.runName".into(), run_name.clone()));
        tags.push(("mlflow.source.name".into(), "stoker".into()));
        tags.push(("stoker.run_dir".into(), absolute(&run.dir)));
        let params = flatten_config(&run.config_yaml)
            .into_iter()
            .map(|(k, v)| {
                let mut text = v.to_string();
                // MLflow keeps at most 6000 characters of a param value.
                if text.len() > 6000 {
                    let mut cut = 5997;
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text.truncate(cut);
                    text.push_str("...");
                }
                (k, text)
            })
            .collect();
        self.send(Record::Open {
            experiment: self
                .spec
                .experiment_name
                .clone()
                .unwrap_or_else(|| run.name.clone()),
            run_name,
            tags,
            params,
            resume_run_id,
        });
        Ok(())
    }

    fn send(&self, record: Record) {
        if let Some(channel) = &self.channel {
            // A worker that is gone has already kept what it could not send.
            let _ = channel.tx.send(Message::Record(record));
        }
    }

    fn relative(&self, file: &Path) -> String {
        match file.strip_prefix(&self.run_dir) {
            Ok(inside) => inside.to_string_lossy().replace('\\', "/"),
            Err(_) => file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

impl Logger for MlflowLogger {
    fn start(&mut self, run: &RunInfo) -> Result<()> {
        self.open(run, None)
    }

    fn log(&mut self, row: &LogRow) -> Result<()> {
        let timestamp = now_ms();
        let points = row
            .values
            .iter()
            .map(|(key, value)| MetricPoint {
                key: key.clone(),
                value: *value,
                timestamp,
                step: row.step as u64,
            })
            .collect();
        self.send(Record::Metrics(points));
        Ok(())
    }

    fn log_artifact(&mut self, path: &Path) -> Result<()> {
        let artifact_path = self.relative(path);
        self.send(Record::Artifact {
            file: path.to_path_buf(),
            artifact_path,
        });
        Ok(())
    }

    fn log_summary(&mut self, summary: &serde_json::Value) -> Result<()> {
        let mut tags = Vec::new();
        for key in [
            "best_checkpoint",
            "monitor",
            "best_epoch",
            "stopped_early",
            "last_checkpoint",
        ] {
            match summary.get(key) {
                None | Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::String(s)) => {
                    tags.push((format!("stoker.{key}"), s.clone()))
                }
                Some(other) => tags.push((format!("stoker.{key}"), other.to_string())),
            }
        }
        if !tags.is_empty() {
            self.send(Record::Tags(tags));
        }
        if self.spec.log_model
            && let Some(best) = summary.get("best_checkpoint").and_then(|b| b.as_str())
        {
            let name = Path::new(best)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "best.safetensors".into());
            self.send(Record::Artifact {
                file: PathBuf::from(best),
                artifact_path: format!("checkpoints/{name}"),
            });
        }
        Ok(())
    }

    fn set_status(&mut self, status: RunStatus) -> Result<()> {
        let status = match status {
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Interrupted => "KILLED",
        };
        self.send(Record::End {
            status: status.into(),
            end_ms: now_ms(),
        });
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        let Some(channel) = self.channel.take() else {
            return Ok(());
        };
        let _ = channel.tx.send(Message::Finish);
        // The worker stops retrying at the flush timeout; one request may still be under way.
        let wait = self.flush_timeout + self.request_timeout + Duration::from_secs(2);
        match channel.done.recv_timeout(wait) {
            Ok(_) => {
                let _ = channel.thread.join();
            }
            Err(_) => console::warn(format!(
                "mlflow: still sending to {} after {:.0}s; what is unsent may be lost",
                self.uri,
                wait.as_secs_f64()
            )),
        }
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        let run_id = self.shared.lock().ok().and_then(|s| s.run_id.clone());
        serde_json::json!({ "run_id": run_id })
    }

    fn resume(&mut self, run: &RunInfo, state: &serde_json::Value) -> Result<()> {
        let run_id = state
            .get("run_id")
            .and_then(|r| r.as_str())
            .map(str::to_string);
        self.open(run, run_id)
    }
}

impl Drop for MlflowLogger {
    fn drop(&mut self) {
        // A run that ended without finish (a panic elsewhere): give the worker its end.
        if self.channel.is_some() {
            let _ = self.finish();
        }
    }
}
