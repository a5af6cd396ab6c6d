//! The background sender: training hands records to a channel and never waits on the server.
//! The worker sends them in order, retries what fails for want of a server (with growing
//! pauses, taking in new records meanwhile), warns once, and at the end writes what it could
//! not send to `mlflow_unsent.jsonl` in the run directory.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use stoker::console;

use super::client::{Client, Failure, MetricPoint};

/// What the logger hands the worker, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "record", content = "data")]
pub enum Record {
    /// Find or create the experiment, then create the run (or reopen `resume_run_id`).
    Open {
        /// The experiment's name.
        experiment: String,
        /// The run's name.
        run_name: String,
        /// Tags set on the run.
        tags: Vec<(String, String)>,
        /// Params logged once the run exists.
        params: Vec<(String, String)>,
        /// The run a resumed training continues.
        resume_run_id: Option<String>,
    },
    /// Params (what remains of [`Record::Open`]'s once the run exists).
    Params(Vec<(String, String)>),
    /// Metric points.
    Metrics(Vec<MetricPoint>),
    /// Tags.
    Tags(Vec<(String, String)>),
    /// A file of the run, stored as `artifact_path`.
    Artifact {
        /// The file.
        file: PathBuf,
        /// Where it goes among the run's artifacts (`plots/loss.png`).
        artifact_path: String,
    },
    /// The run's end: `FINISHED`, `FAILED` or `KILLED`.
    End {
        /// The status.
        status: String,
        /// Milliseconds since the epoch.
        end_ms: u64,
    },
}

/// A message to the worker.
pub enum Message {
    /// Send this.
    Record(Record),
    /// Send what is left, for at most the flush timeout, then stop.
    Finish,
}

/// How the worker runs.
pub struct Settings {
    /// The tracking server, for messages.
    pub uri: String,
    /// How long the end of a run keeps retrying.
    pub flush_timeout: Duration,
    /// Where unsent records go.
    pub unsent: PathBuf,
}

/// What the worker knows that the logger reports in its checkpoint state.
#[derive(Debug, Default, Clone)]
pub struct Shared {
    /// The run, once created.
    pub run_id: Option<String>,
}

/// The most metric points in one request (MLflow's limit).
const MAX_METRICS: usize = 1000;
/// The most params in one request (MLflow's limit).
const MAX_PARAMS: usize = 100;
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

struct Worker {
    client: Client,
    settings: Settings,
    shared: Arc<Mutex<Shared>>,
    queue: VecDeque<Record>,
    refused: Vec<(Record, String)>,
    artifact_uri: Option<String>,
    deadline: Option<Instant>,
    warned: bool,
    refusal_warned: bool,
}

/// Runs the worker until it is finished (or its sender is gone), then writes what is unsent.
pub fn run(
    client: Client,
    settings: Settings,
    shared: Arc<Mutex<Shared>>,
    rx: Receiver<Message>,
    done: Sender<usize>,
) {
    let mut worker = Worker {
        client,
        settings,
        shared,
        queue: VecDeque::new(),
        refused: Vec::new(),
        artifact_uri: None,
        deadline: None,
        warned: false,
        refusal_warned: false,
    };
    worker.work(&rx);
    while let Ok(message) = rx.try_recv() {
        worker.take(message);
    }
    let unsent = worker.keep_unsent();
    let _ = done.send(unsent);
}

impl Worker {
    fn take(&mut self, message: Message) {
        match message {
            Message::Record(record) => self.queue.push_back(record),
            Message::Finish => {
                self.deadline
                    .get_or_insert(Instant::now() + self.settings.flush_timeout);
            }
        }
    }

    fn work(&mut self, rx: &Receiver<Message>) {
        let mut pause = FIRST_PAUSE;
        loop {
            if self.queue.is_empty() {
                if self.deadline.is_some() {
                    return;
                }
                match rx.recv() {
                    Ok(message) => self.take(message),
                    Err(_) => return,
                }
                continue;
            }
            while let Ok(message) = rx.try_recv() {
                self.take(message);
            }
            match self.send_next() {
                Ok(()) => pause = FIRST_PAUSE,
                Err(Failure::Refused(reason)) => {
                    let record = self.queue.pop_front().expect("sent from a non-empty queue");
                    if !self.refusal_warned {
                        self.refusal_warned = true;
                        console::warn(format!(
                            "mlflow: {} refused a record ({reason}); refused records are kept in {}",
                            self.settings.uri,
                            self.settings.unsent.display()
                        ));
                    }
                    self.refused.push((record, reason));
                }
                Err(Failure::Transient(reason)) => {
                    if !self.warned {
                        self.warned = true;
                        console::warn(format!(
                            "mlflow: {} does not answer ({reason}); training goes on, the logger retries in the background and keeps what it cannot send",
                            self.settings.uri
                        ));
                    }
                    let mut wait = pause;
                    if let Some(deadline) = self.deadline {
                        wait = wait.min(deadline.saturating_duration_since(Instant::now()));
                    }
                    match rx.recv_timeout(wait) {
                        Ok(message) => self.take(message),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => {
                            self.deadline.get_or_insert_with(Instant::now);
                        }
                    }
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return;
            }
        }
    }

    fn run_id(&self) -> Result<String, Failure> {
        self.shared
            .lock()
            .ok()
            .and_then(|s| s.run_id.clone())
            .ok_or_else(|| Failure::Refused("the MLflow run was never created".into()))
    }

    /// Sends the queue's first record (with the metric records right after it, batched).
    fn send_next(&mut self) -> Result<(), Failure> {
        let record = self.queue.front().expect("non-empty").clone();
        match record {
            Record::Open {
                experiment,
                run_name,
                tags,
                params,
                resume_run_id,
            } => {
                let reopened = match &resume_run_id {
                    Some(id) => match self.client.reopen_run(id) {
                        Ok(uri) => Some((id.clone(), uri)),
                        Err(Failure::Refused(_)) => None,
                        Err(e) => return Err(e),
                    },
                    None => None,
                };
                let (run_id, uri) = match reopened {
                    Some(found) => found,
                    None => {
                        let experiment_id = self.client.experiment_id(&experiment)?;
                        self.client
                            .create_run(&experiment_id, &run_name, &tags, now_ms())?
                    }
                };
                if let Ok(mut shared) = self.shared.lock() {
                    shared.run_id = Some(run_id);
                }
                self.artifact_uri = Some(uri);
                self.queue[0] = Record::Params(params);
                Ok(())
            }
            Record::Params(params) => {
                let run_id = self.run_id()?;
                let n = params.len().min(MAX_PARAMS);
                self.client.log_batch(&run_id, &params[..n], &[], &[])?;
                if n == params.len() {
                    self.queue.pop_front();
                } else {
                    self.queue[0] = Record::Params(params[n..].to_vec());
                }
                Ok(())
            }
            Record::Metrics(_) => {
                let run_id = self.run_id()?;
                // The metric records at the front go out together, up to the server's limit.
                let mut points = Vec::new();
                while let Some(Record::Metrics(more)) = self.queue.front() {
                    if !points.is_empty() && points.len() + more.len() > MAX_METRICS {
                        break;
                    }
                    points.extend(more.iter().cloned());
                    self.queue.pop_front();
                }
                let rest = points.split_off(points.len().min(MAX_METRICS));
                if !rest.is_empty() {
                    self.queue.push_front(Record::Metrics(rest));
                }
                self.queue.push_front(Record::Metrics(points.clone()));
                self.client.log_batch(&run_id, &[], &points, &[])?;
                self.queue.pop_front();
                Ok(())
            }
            Record::Tags(tags) => {
                let run_id = self.run_id()?;
                self.client.log_batch(&run_id, &[], &[], &tags)?;
                self.queue.pop_front();
                Ok(())
            }
            Record::Artifact {
                file,
                artifact_path,
            } => {
                let uri = self
                    .artifact_uri
                    .clone()
                    .ok_or_else(|| Failure::Refused("the MLflow run was never created".into()))?;
                self.client.upload(&uri, &file, &artifact_path)?;
                self.queue.pop_front();
                Ok(())
            }
            Record::End { status, end_ms } => {
                let run_id = self.run_id()?;
                self.client.end_run(&run_id, &status, end_ms)?;
                self.queue.pop_front();
                Ok(())
            }
        }
    }

    /// Appends what was not sent to the unsent file; returns how many records that was.
    fn keep_unsent(&mut self) -> usize {
        let mut lines = String::new();
        let pending = std::mem::take(&mut self.queue)
            .into_iter()
            .map(|r| (r, "not sent before the end of the run".to_string()));
        let all: Vec<(Record, String)> = std::mem::take(&mut self.refused)
            .into_iter()
            .chain(pending)
            .collect();
        for (record, reason) in &all {
            let line = serde_json::json!({ "reason": reason, "record": record });
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
        if all.is_empty() {
            return 0;
        }
        use std::io::Write;
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.settings.unsent)
            .and_then(|mut f| f.write_all(lines.as_bytes()));
        match written {
            Ok(()) => console::warn(format!(
                "mlflow: {} record(s) were not sent to {}; they are kept in {}",
                all.len(),
                self.settings.uri,
                self.settings.unsent.display()
            )),
            Err(e) => console::warn(format!(
                "mlflow: {} record(s) were not sent to {} and {} cannot be written: {e}",
                all.len(),
                self.settings.uri,
                self.settings.unsent.display()
            )),
        }
        all.len()
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_is_kept_as_one_json_line() {
        let records = [
            Record::Params(vec![("lr".into(), "0.1".into())]),
            Record::Metrics(vec![MetricPoint {
                key: "loss".into(),
                value: 0.5,
                timestamp: 1,
                step: 2,
            }]),
            Record::Tags(vec![("team".into(), "fluids".into())]),
            Record::Artifact {
                file: "runs/x/config.yaml".into(),
                artifact_path: "config.yaml".into(),
            },
            Record::End {
                status: "FINISHED".into(),
                end_ms: 3,
            },
        ];
        let lines: Vec<String> = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        assert_eq!(
            lines[1],
            r#"{"record":"metrics","data":[{"key":"loss","value":0.5,"timestamp":1,"step":2}]}"#
        );
        assert_eq!(
            lines[3],
            r#"{"record":"artifact","data":{"file":"runs/x/config.yaml","artifact_path":"config.yaml"}}"#
        );
    }
}
