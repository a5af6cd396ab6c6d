//! MLflow's REST API (`/api/2.0/mlflow/...`), the calls stoker makes: find or create the
//! experiment, create or reopen the run, log batches of params, metrics and tags, upload
//! artifacts, and end the run.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

/// Why a call failed: worth retrying (the server is down, slow or overloaded) or not (the
/// server refused the request itself).
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Connection refused, a timeout, a 5xx or 429: try again later.
    Transient(String),
    /// A 4xx: sending it again will not help.
    Refused(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transient(m) | Failure::Refused(m) => f.write_str(m),
        }
    }
}

/// One metric point.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricPoint {
    /// The name.
    pub key: String,
    /// The value.
    pub value: f64,
    /// Milliseconds since the epoch.
    pub timestamp: u64,
    /// The optimizer step.
    pub step: u64,
}

/// A client of one tracking server.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

/// A value as proto3's JSON mapping writes doubles: NaN and the infinities as strings.
fn number(value: f64) -> Value {
    if value.is_finite() {
        json!(value)
    } else if value.is_nan() {
        json!("NaN")
    } else if value > 0.0 {
        json!("Infinity")
    } else {
        json!("-Infinity")
    }
}

impl Client {
    /// A client of the server at `tracking_uri` (`http://127.0.0.1:5000`), whose requests give
    /// up after `timeout`.
    pub fn new(tracking_uri: &str, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(3))))
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            base: tracking_uri.trim_end_matches('/').to_string(),
            agent,
        }
    }

    fn answer(
        &self,
        what: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, Failure> {
        let mut response = result.map_err(|e| Failure::Transient(format!("{what}: {e}")))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        match status {
            200..=299 => Ok(serde_json::from_str(&text).unwrap_or(Value::Null)),
            429 | 500.. => Err(Failure::Transient(format!("{what}: HTTP {status} {text}"))),
            _ => Err(Failure::Refused(format!("{what}: HTTP {status} {text}"))),
        }
    }

    fn post(&self, endpoint: &str, body: Value) -> Result<Value, Failure> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        self.answer(endpoint, self.agent.post(&url).send_json(&body))
    }

    fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<Value, Failure> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        let mut request = self.agent.get(&url);
        for (k, v) in query {
            request = request.query(*k, *v);
        }
        self.answer(endpoint, request.call())
    }

    /// The id of experiment `name`, created when missing.
    pub fn experiment_id(&self, name: &str) -> Result<String, Failure> {
        match self.get("experiments/get-by-name", &[("experiment_name", name)]) {
            Ok(found) => found["experiment"]["experiment_id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| Failure::Refused(format!("experiments/get-by-name: {found}"))),
            Err(Failure::Refused(m))
                if m.contains("RESOURCE_DOES_NOT_EXIST") || m.contains("404") =>
            {
                let created = self.post("experiments/create", json!({ "name": name }))?;
                created["experiment_id"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Failure::Refused(format!("experiments/create: {created}")))
            }
            Err(e) => Err(e),
        }
    }

    /// Creates a run; returns its id and artifact URI.
    pub fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        tags: &[(String, String)],
        start_ms: u64,
    ) -> Result<(String, String), Failure> {
        let tags: Vec<Value> = tags
            .iter()
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect();
        let created = self.post(
            "runs/create",
            json!({
                "experiment_id": experiment_id,
                "run_name": run_name,
                "start_time": start_ms,
                "tags": tags,
            }),
        )?;
        let info = &created["run"]["info"];
        match (info["run_id"].as_str(), info["artifact_uri"].as_str()) {
            (Some(id), Some(uri)) => Ok((id.to_string(), uri.to_string())),
            _ => Err(Failure::Refused(format!("runs/create: {created}"))),
        }
    }

    /// Reopens run `run_id` (a resumed training): its artifact URI.
    pub fn reopen_run(&self, run_id: &str) -> Result<String, Failure> {
        let found = self.get("runs/get", &[("run_id", run_id)])?;
        self.post(
            "runs/update",
            json!({ "run_id": run_id, "status": "RUNNING" }),
        )?;
        found["run"]["info"]["artifact_uri"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Failure::Refused(format!("runs/get: {found}")))
    }

    /// Logs params, metrics and tags in one request (the server's limits: 100 params, 1000
    /// metrics, 1000 in all).
    pub fn log_batch(
        &self,
        run_id: &str,
        params: &[(String, String)],
        metrics: &[MetricPoint],
        tags: &[(String, String)],
    ) -> Result<(), Failure> {
        let pairs = |list: &[(String, String)]| -> Vec<Value> {
            list.iter()
                .map(|(k, v)| json!({ "key": k, "value": v }))
                .collect()
        };
        let metrics: Vec<Value> = metrics
            .iter()
            .map(|m| {
                json!({ "key": m.key, "value": number(m.value), "timestamp": m.timestamp, "step": m.step })
            })
            .collect();
        self.post(
            "runs/log-batch",
            json!({ "run_id": run_id, "params": pairs(params), "metrics": metrics, "tags": pairs(tags) }),
        )
        .map(|_| ())
    }

    /// Ends the run with `status` (`FINISHED`, `FAILED`, `KILLED`).
    pub fn end_run(&self, run_id: &str, status: &str, end_ms: u64) -> Result<(), Failure> {
        self.post(
            "runs/update",
            json!({ "run_id": run_id, "status": status, "end_time": end_ms }),
        )
        .map(|_| ())
    }

    /// Stores `file` as artifact `artifact_path` (`plots/loss.png`) of the run whose artifacts
    /// live at `artifact_uri`: uploaded through the server (`mlflow-artifacts:`), or copied
    /// (a local `file:` store, as a server started with `--default-artifact-root DIR` has).
    pub fn upload(
        &self,
        artifact_uri: &str,
        file: &Path,
        artifact_path: &str,
    ) -> Result<(), Failure> {
        if let Some(rest) = artifact_uri.strip_prefix("mlflow-artifacts:") {
            // `mlflow-artifacts:/1/<run>/artifacts` or `mlflow-artifacts://host:port/1/...`.
            let rest = match rest.strip_prefix("//") {
                Some(with_host) => with_host.split_once('/').map_or("", |(_, p)| p),
                None => rest.trim_start_matches('/'),
            };
            let bytes = std::fs::read(file)
                .map_err(|e| Failure::Refused(format!("{}: {e}", file.display())))?;
            let url = format!(
                "{}/api/2.0/mlflow-artifacts/artifacts/{rest}/{artifact_path}",
                self.base
            );
            return self
                .answer(
                    &format!("artifact {artifact_path}"),
                    self.agent.put(&url).send(&bytes[..]),
                )
                .map(|_| ());
        }
        let local = artifact_uri
            .strip_prefix("file://")
            .or_else(|| artifact_uri.starts_with('/').then_some(artifact_uri));
        let Some(root) = local else {
            return Err(Failure::Refused(format!(
                "artifact store {artifact_uri} is not one stoker writes to; start the server with --serve-artifacts (MLflow's default) so artifacts go through it"
            )));
        };
        let target = Path::new(root).join(artifact_path);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::Refused(format!("{}: {e}", dir.display())))?;
        }
        std::fs::copy(file, &target)
            .map(|_| ())
            .map_err(|e| Failure::Refused(format!("{}: {e}", target.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_follow_the_proto3_json_mapping() {
        assert_eq!(number(0.5), json!(0.5));
        assert_eq!(number(f64::NAN), json!("NaN"));
        assert_eq!(number(f64::NEG_INFINITY), json!("-Infinity"));
    }

    #[test]
    fn a_closed_port_is_a_transient_failure() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = Client::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2));
        assert!(matches!(
            client.experiment_id("x"),
            Err(Failure::Transient(_))
        ));
    }
}
