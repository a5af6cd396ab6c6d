//! Loggers checked against their real readers: TensorBoard's own event reader, a real MLflow
//! tracking server read back through its REST API, and JSON lines against `metrics.csv`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Scratch, csv_rows, train_ok};

/// The classifier of `configs/classification.yaml` for two short epochs: it logs step rows, epoch
/// rows, per-class metrics, a confusion matrix and the test split.
fn classification(loggers: &str) -> String {
    let config = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/classification.yaml"),
    )
    .unwrap()
    .replace("extends: presets/default.yaml\n", "")
    .replace("max_epochs: 15", "max_epochs: 2")
    .replace("device: auto", "device: cpu")
    .replace("output_dir: runs", "output_dir: out")
    .replace("loggers: [csv]", &format!("loggers: {loggers}"));
    assert!(
        config.contains(loggers),
        "the example config changed: {config}"
    );
    config
}

/// Every value of `metrics.csv` by (column, step), the columns `epoch` and `step` left out.
fn csv_values(run_dir: &Path) -> BTreeMap<(String, u64), f64> {
    let mut values = BTreeMap::new();
    for row in csv_rows(run_dir) {
        let step: u64 = row["step"].parse().unwrap();
        for (column, cell) in &row {
            if column != "epoch" && column != "step" {
                values.insert((column.clone(), step), cell.parse::<f64>().unwrap());
            }
        }
    }
    values
}

/// Reads a run's event files with TensorBoard's `EventAccumulator` and returns what it saw.
const READ_EVENTS: &str = r#"
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from google.protobuf import json_format

ea = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "images": 0, "histograms": 0, "tensors": 0})
ea.Reload()
tags = ea.Tags()
out = {
    "scalars": {t: [[e.step, e.value] for e in ea.Scalars(t)] for t in tags["scalars"]},
    "images": {t: [[e.step, e.width, e.height, e.encoded_image_string[:8].hex()] for e in ea.Images(t)] for t in tags["images"]},
    "histograms": {t: [[e.step, e.histogram_value.num, e.histogram_value.min, e.histogram_value.max] for e in ea.Histograms(t)] for t in tags["histograms"]},
    "texts": {t: [e.tensor_proto.string_val[0].decode() for e in ea.Tensors(t)] for t in tags["tensors"]},
    "hparams": {t: json_format.MessageToDict(plugin_data_pb2.HParamsPluginData.FromString(c)) for t, c in ea.PluginTagToContent("hparams").items()},
}
print(json.dumps(out))
"#;

fn read_events(scratch: &Scratch, run_dir: &Path) -> serde_json::Value {
    let script = scratch.write("read_events.py", READ_EVENTS);
    let output = Command::new(std::env::var_os("STOKER_PYTHON").expect("STOKER_PYTHON is set"))
        .arg(script)
        .arg(run_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The scalars TensorBoard shows, by (tag, step); panics if a step shows twice.
fn scalar_points(events: &serde_json::Value) -> BTreeMap<(String, u64), f64> {
    let mut seen = BTreeMap::new();
    for (tag, points) in events["scalars"].as_object().unwrap() {
        for point in points.as_array().unwrap() {
            let key = (tag.clone(), point[0].as_u64().unwrap());
            let value = point[1].as_f64().unwrap();
            if let Some(before) = seen.insert(key.clone(), value) {
                panic!("{key:?} shows twice: {before} and {value}");
            }
        }
    }
    seen
}

#[test]
fn tensorboard_reads_back_scalars_hparams_text_histograms_and_images() {
    let scratch = Scratch::new("tensorboard");
    let (run_dir, _) = train_ok(
        &scratch,
        &classification("[csv, jsonl, {name: tensorboard, args: {histogram_every_n_steps: 20}}]"),
        &[],
    );
    let events = read_events(&scratch, &run_dir);

    // Scalars: exactly the values of metrics.csv, at the same steps (as float32).
    let expected = csv_values(&run_dir);
    let seen = scalar_points(&events);
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    // TensorBoard keeps float32; compared as such (the JSON in between is not bit-exact).
    for (key, value) in &expected {
        assert_eq!(seen[key] as f32, *value as f32, "{key:?}");
    }
    assert!(expected.contains_key(&("val_f1_macro".to_string(), 66)));
    assert!(expected.contains_key(&("test_accuracy".to_string(), 66)));

    // Hyperparameters: the flattened config with its types, the metrics, and a finished session.
    let hparams = &events["hparams"];
    let start = &hparams["_hparams_/session_start_info"]["sessionStartInfo"]["hparams"];
    // (protobuf's JSON form writes a `Value` as the plain JSON number, string or bool).
    assert_eq!(start["optimizer.args.lr"], 0.003);
    assert_eq!(start["trainer.args.max_epochs"], 2.0);
    assert_eq!(start["optimizer.name"], "adamw");
    assert_eq!(start["trainer.args.test_after_fit"], true);
    let metric_tags: Vec<&str> = hparams["_hparams_/experiment"]["experiment"]["metricInfos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"]["tag"].as_str().unwrap())
        .collect();
    assert!(metric_tags.contains(&"val_loss"), "{metric_tags:?}");
    assert!(metric_tags.contains(&"test_f1_macro"), "{metric_tags:?}");
    assert_eq!(
        hparams["_hparams_/session_end_info"]["sessionEndInfo"]["status"],
        "STATUS_SUCCESS"
    );

    // Text: the resolved config and the summary.
    let config = events["texts"]["config/text_summary"][0].as_str().unwrap();
    assert!(config.contains("SyntheticClassification"), "{config}");
    assert!(config.contains("max_epochs: 2"), "{config}");
    let summary = events["texts"]["summary/text_summary"][0].as_str().unwrap();
    assert!(summary.contains("best_checkpoint"), "{summary}");

    // Histograms every 20 steps (66 steps), of every weight and gradient; 16 x 64 weights.
    let histogram = &events["histograms"]["weights/layers.0.weight"];
    let steps: Vec<u64> = histogram
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [20, 40, 60]);
    assert_eq!(histogram[0][1], 1024.0);
    assert!(histogram[0][2].as_f64().unwrap() < histogram[0][3].as_f64().unwrap());
    assert_eq!(
        events["histograms"]["gradients/layers.2.bias"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Images: the confusion matrices and the learning curves, as PNG.
    for tag in [
        "confusion_matrix_val",
        "confusion_matrix_test",
        "learning_curves",
    ] {
        let image = &events["images"][tag][0];
        assert!(image[1].as_u64().unwrap() > 100, "{tag}: {image}");
        assert!(image[2].as_u64().unwrap() > 100, "{tag}: {image}");
        assert_eq!(image[3], "89504e470d0a1a0a", "{tag} is not a PNG");
    }
}

#[test]
fn a_resumed_run_shows_each_step_once_in_tensorboard() {
    let scratch = Scratch::new("tensorboard-resume");
    let config = scratch.write(
        "exp.yaml",
        &common::SMALL.replace(
            "args: {max_epochs: 3}}",
            "args: {max_epochs: 3, log_every_n_steps: 4}}\n\
             callbacks: [{name: ModelCheckpoint, args: {every_n_train_steps: 5, save_top_k: -1}}]\n\
             loggers: [csv, tensorboard]",
        ),
    );
    let config = config.to_str().unwrap();
    let full = scratch.stoker(&["train", config]);
    full.expect_code(0);
    let run_dir = full.run_dir(&scratch.dir);
    let uninterrupted = scalar_points(&read_events(&scratch, &run_dir));

    // Resume the finished run from step 15 (mid-epoch 1): steps 16.. are logged again, into a
    // second event file that TensorBoard reads after the first.
    let checkpoint = run_dir.join("checkpoints/epoch=1-step=15.safetensors");
    assert!(checkpoint.is_file());
    scratch
        .stoker(&["train", config, "--resume", checkpoint.to_str().unwrap()])
        .expect_code(0);
    let files = std::fs::read_dir(&run_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .count();
    assert_eq!(files, 2);
    let resumed = scalar_points(&read_events(&scratch, &run_dir));
    assert_eq!(resumed, uninterrupted);
}

#[test]
fn jsonl_holds_the_rows_of_metrics_csv() {
    let scratch = Scratch::new("jsonl");
    let (run_dir, _) = train_ok(&scratch, &classification("[csv, jsonl]"), &[]);
    let text = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    let rows = csv_rows(&run_dir);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), rows.len());
    for (line, row) in lines.iter().zip(&rows) {
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).unwrap();
        assert_eq!(
            object.keys().collect::<Vec<_>>(),
            row.keys().collect::<Vec<_>>(),
            "{line}"
        );
        // Equal up to the last bit that serde_json's (fast, not correctly rounded) parser keeps.
        for (key, cell) in row {
            let (got, want) = (object[key].as_f64().unwrap(), cell.parse::<f64>().unwrap());
            assert!(
                (got - want).abs() <= 1e-15 * want.abs(),
                "{key}: {got} vs {want}"
            );
        }
    }
}

/// A real `mlflow server` on a free port of 127.0.0.1, stopped (with its workers) when dropped.
struct MlflowServer {
    child: Child,
    uri: String,
}

impl MlflowServer {
    fn start(scratch: &Scratch) -> MlflowServer {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let uri = format!("http://127.0.0.1:{port}");
        let store = scratch.path("mlflow");
        std::fs::create_dir_all(&store).unwrap();
        let child = Command::new(std::env::var_os("STOKER_PYTHON").expect("STOKER_PYTHON is set"))
            .args(["-m", "mlflow", "server", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}/mlflow.db", store.display()))
            .arg("--artifacts-destination")
            .arg(store.join("artifacts"))
            .args(["--workers", "1"])
            // No background job runner (a dozen worker processes this test does not need).
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(store.join("server.log")).unwrap())
            .process_group(0)
            .spawn()
            .expect("mlflow server starts");
        let server = MlflowServer { child, uri };
        let started = Instant::now();
        while server.get("/health").is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "mlflow server did not answer in 120 s:\n{}",
                std::fs::read_to_string(store.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        server
    }

    /// A GET of `path` (with its query), answered with the body.
    fn get(&self, path: &str) -> std::io::Result<String> {
        self.request("GET", path, "")
    }

    /// A request with a JSON `body` (empty for none), answered with the body; an error unless
    /// the status is 200.
    fn request(&self, method: &str, path: &str, body: &str) -> std::io::Result<String> {
        use std::io::{Read, Write};
        let address = self.uri.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: {address}\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no HTTP response"))?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return Err(std::io::Error::other(format!("{path}: {head}")));
        }
        Ok(body.to_string())
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let body = self.get(path).unwrap();
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        // The server and its uvicorn worker share the process group; TERM, then KILL.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--", &group])
            .status();
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn mlflow_run_reads_back_from_a_real_server() {
    let scratch = Scratch::new("mlflow");
    let server = MlflowServer::start(&scratch);
    let loggers = format!(
        "[csv, {{name: mlflow, args: {{tracking_uri: \"{}\", experiment_name: stoker-e2e, tags: {{team: fluids}}, log_model: true}}}}]",
        server.uri
    );
    let (run_dir, run) = train_ok(&scratch, &classification(&loggers), &[]);
    assert!(!run.stdout.contains("mlflow:"), "{}", run.stdout);
    assert!(!run_dir.join("mlflow_unsent.jsonl").exists());

    let experiment =
        server.json("/api/2.0/mlflow/experiments/get-by-name?experiment_name=stoker-e2e");
    let experiment_id = experiment["experiment"]["experiment_id"].as_str().unwrap();
    let search = server
        .request(
            "POST",
            "/api/2.0/mlflow/runs/search",
            &format!("{{\"experiment_ids\": [\"{experiment_id}\"]}}"),
        )
        .unwrap();
    let runs: serde_json::Value = serde_json::from_str(&search).unwrap();
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "one run in the experiment: {search}");
    let run_id = runs[0]["info"]["run_id"].as_str().unwrap().to_string();
    let got = server.json(&format!("/api/2.0/mlflow/runs/get?run_id={run_id}"));
    let info = &got["run"]["info"];
    assert_eq!(info["status"], "FINISHED");
    assert_eq!(info["experiment_id"], experiment_id);
    assert_eq!(info["run_name"], "classification/version_0");

    let data = &got["run"]["data"];
    let params: BTreeMap<&str, &str> = data["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["key"].as_str().unwrap(), p["value"].as_str().unwrap()))
        .collect();
    assert_eq!(params["optimizer.name"], "adamw");
    assert_eq!(params["optimizer.args.lr"], "0.003");
    assert_eq!(params["data.args.n_classes"], "4");
    let tags: BTreeMap<&str, &str> = data["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["key"].as_str().unwrap(), p["value"].as_str().unwrap()))
        .collect();
    assert_eq!(tags["team"], "fluids");
    let best = common::summary(&run_dir)["best_checkpoint"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        tags["stoker.best_checkpoint"].ends_with(&best),
        "{tags:?} vs {best}"
    );

    // Every metric, by step, equal to metrics.csv (MLflow keeps doubles).
    let expected = csv_values(&run_dir);
    let keys: std::collections::BTreeSet<&String> = expected.keys().map(|(k, _)| k).collect();
    for key in keys {
        let history = server.json(&format!(
            "/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key={key}&max_results=10000"
        ));
        let points = history["metrics"].as_array().unwrap();
        let mut got: Vec<(u64, f64)> = points
            .iter()
            .map(|p| {
                (
                    p["step"].as_u64().unwrap_or(0),
                    p["value"].as_f64().unwrap(),
                )
            })
            .collect();
        got.sort_by_key(|p| p.0);
        let want: Vec<(u64, f64)> = expected
            .iter()
            .filter(|((k, _), _)| k == key)
            .map(|((_, step), value)| (*step, *value))
            .collect();
        assert_eq!(got.len(), want.len(), "{key}");
        for ((gs, gv), (ws, wv)) in got.iter().zip(&want) {
            assert_eq!(gs, ws, "{key}");
            assert!(
                (gv - wv).abs() <= 1e-12 * wv.abs().max(1.0),
                "{key}: {gv} vs {wv}"
            );
        }
    }

    // Artifacts: the config, summary, report and plots, and (log_model) the best checkpoint.
    let list = |path: &str| -> Vec<String> {
        server.json(&format!(
            "/api/2.0/mlflow-artifacts/artifacts?path={experiment_id}/{run_id}/artifacts/{path}"
        ))["files"]
            .as_array()
            .map(|files| {
                files
                    .iter()
                    .map(|f| f["path"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let top = list("");
    for file in [
        "config.yaml",
        "summary.json",
        "report.html",
        "confusion_matrix_val.csv",
    ] {
        assert!(top.iter().any(|f| f == file), "{file} not in {top:?}");
    }
    assert!(
        list("plots").iter().any(|f| f == "loss.png"),
        "{:?}",
        list("plots")
    );
    let checkpoint_name = Path::new(&best).file_name().unwrap().to_str().unwrap();
    assert!(
        list("checkpoints").iter().any(|f| f == checkpoint_name),
        "{:?}",
        list("checkpoints")
    );
    let config = server
        .get(&format!(
            "/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/config.yaml"
        ))
        .unwrap();
    assert_eq!(
        config,
        std::fs::read_to_string(run_dir.join("config.yaml")).unwrap()
    );
}

#[test]
fn a_down_mlflow_server_neither_stops_nor_stalls_training() {
    let scratch = Scratch::new("mlflow-down");
    let port = free_port(); // Nobody listens there.
    let loggers = format!(
        "[csv, {{name: mlflow, args: {{tracking_uri: \"http://127.0.0.1:{port}\", flush_timeout_s: 1, request_timeout_s: 1}}}}]"
    );
    let started = Instant::now();
    let (run_dir, run) = train_ok(&scratch, &classification(&loggers), &[]);
    let took = started.elapsed();
    let all = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(
        all.matches("does not answer").count(),
        1,
        "the warning is said once:\n{all}"
    );
    assert!(
        all.contains("kept in") && all.contains("mlflow_unsent.jsonl"),
        "{all}"
    );
    // Everything it could not send is kept, metrics included.
    let unsent = std::fs::read_to_string(run_dir.join("mlflow_unsent.jsonl")).unwrap();
    assert!(unsent.contains("train_loss_step"), "{unsent}");
    assert!(unsent.contains("val_f1_macro"), "{unsent}");
    for line in unsent.lines() {
        let _: serde_json::Value = serde_json::from_str(line).unwrap();
    }
    // Well inside the flush timeout plus a generous margin: training did not wait on retries.
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert!(run_dir.join("checkpoints/last.safetensors").is_file());
}

#[test]
fn report_regenerates_and_compare_overlays_runs() {
    let scratch = Scratch::new("report");
    let (first, _) = train_ok(&scratch, &classification("[csv]"), &[]);
    let (second, _) = train_ok(
        &scratch,
        &classification("[csv]"),
        &["optimizer.args.lr=0.01"],
    );
    std::fs::remove_file(first.join("report.html")).unwrap();
    std::fs::remove_dir_all(first.join("plots")).unwrap();
    scratch
        .stoker(&["report", first.to_str().unwrap()])
        .expect_code(0);
    let page = std::fs::read_to_string(first.join("report.html")).unwrap();
    for part in [
        "<svg",
        "confusion matrix",
        "val_f1_macro",
        "learning rate",
        "SyntheticClassification",
    ] {
        assert!(page.contains(part), "report.html lacks {part}");
    }
    assert!(
        !page.contains("src=\"http"),
        "report.html must open offline"
    );
    for plot in [
        "loss.png",
        "lr.png",
        "accuracy.png",
        "confusion_matrix_val.png",
    ] {
        let bytes = std::fs::read(first.join("plots").join(plot))
            .unwrap_or_else(|_| panic!("plots/{plot} is missing"));
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    }

    let compare = scratch.stoker(&[
        "compare",
        first.to_str().unwrap(),
        second.to_str().unwrap(),
        "--output",
        "both.html",
    ]);
    compare.expect_code(0);
    let page = std::fs::read_to_string(scratch.path("both.html")).unwrap();
    assert!(page.contains("version_0") && page.contains("version_1"));
    assert!(page.contains("<svg"));

    let missing = scratch.stoker(&["report", "no/such/run"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("no/such/run"), "{}", missing.stderr);
}
