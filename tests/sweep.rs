//! `stoker sweep`: trials as runs, pruning, the study in Optuna's journal format (checked by
//! Optuna 5.0.0 itself), `best.yaml` retraining the best trial, `kill -9` and `--resume`, and bad
//! sweep files refused before any trial.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Scratch;

/// A small regression: 3 epochs of an MLP take well under a second.
const EXPERIMENT: &str = "\
name: reg
environment: {seed: 7, device: cpu, output_dir: out}
data:
  name: SyntheticRegression
  args: {n_samples: 512, n_features: 8, noise: 0.05, val_fraction: 0.25, batch_size: 64}
model: {name: MLP, args: {sizes: [8, 32, 1], activation: gelu}}
loss: mse
metrics: [mse]
optimizer: {name: adam, args: {lr: 1.0e-3}}
trainer: {name: Default_trainer, args: {max_epochs: 4}}
loggers: [csv]
";

fn sweep_json(scratch: &Scratch, name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(scratch.path(&format!("out/{name}/sweep.json")))
        .expect("sweep.json exists");
    serde_json::from_str(&text).unwrap()
}

/// `column`'s values per epoch in a run's metrics.csv.
fn epoch_values(run_dir: &Path, column: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == column).unwrap();
    lines
        .filter_map(|l| {
            l.split(',')
                .nth(at)
                .filter(|v| !v.is_empty())
                .map(|v| v.parse().unwrap())
        })
        .collect()
}

#[test]
fn a_tpe_sweep_prunes_and_optuna_reads_its_study_and_best_yaml_retrains_the_best_trial() {
    let scratch = Scratch::new("sweep-tpe");
    scratch.write("reg.yaml", EXPERIMENT);
    scratch.write(
        "tpe.yaml",
        "\
experiment: reg.yaml
objective: {metric: val_mse, mode: min}
sampler: {name: tpe, args: {seed: 1, n_startup_trials: 3}}
pruner: {name: median, args: {n_startup_trials: 2, n_warmup_epochs: 1}}
trials: 8
space:
  optimizer.args.lr: {log_uniform: [1.0e-5, 3.0e-2]}
  model.args.sizes: {choice: [[8, 16, 1], [8, 32, 32, 1]]}
  data.args.batch_size: {int: [32, 128], step: 32}
",
    );
    let run = scratch.stoker(&["sweep", "tpe.yaml"]);
    run.expect_code(0);
    let summary = sweep_json(&scratch, "tpe");
    let trials = summary["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 8);
    let states: Vec<&str> = trials
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert!(
        states.iter().all(|s| ["COMPLETE", "PRUNED"].contains(s)),
        "{states:?}"
    );
    assert!(
        states.contains(&"PRUNED"),
        "the median pruner stopped no trial: {states:?}"
    );
    for t in trials {
        // Each trial is a run of its own, and what it reported is what its run logged.
        let run_dir = scratch.dir.join(t["run_dir"].as_str().unwrap());
        assert!(run_dir.ends_with(format!("out/tpe/trial_{}/version_0", t["number"])));
        let logged = epoch_values(&run_dir, "val_mse");
        let reported: Vec<f64> = t["intermediate"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(logged, reported, "trial {}", t["number"]);
        if t["state"] == "PRUNED" {
            assert!(
                reported.len() < 4 && reported.len() >= 2,
                "pruned after the warm-up: {reported:?}"
            );
        } else {
            assert_eq!(reported.len(), 4);
            let best = reported.iter().copied().fold(f64::INFINITY, f64::min);
            assert_eq!(t["value"].as_f64().unwrap(), best);
        }
        let sizes = &t["params"]["model.args.sizes"];
        let config = std::fs::read_to_string(run_dir.join("config.yaml")).unwrap();
        let config: serde_yaml::Value = serde_yaml::from_str(&config).unwrap();
        assert_eq!(
            serde_json::to_value(&config["model"]["args"]["sizes"]).unwrap(),
            *sizes
        );
    }

    // Optuna opens the study and sees what stoker's summary says.
    let check = scratch.python(
        r#"
import json, optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
assert optuna.__version__ == "5.0.0", optuna.__version__
study = optuna.load_study(study_name="tpe", storage=JournalStorage(JournalFileBackend("out/tpe/study.journal")))
summary = json.load(open("out/tpe/sweep.json"))
assert study.direction == optuna.study.StudyDirection.MINIMIZE
assert len(study.trials) == len(summary["trials"])
for t, s in zip(study.trials, summary["trials"]):
    assert t.number == s["number"]
    assert t.state.name == s["state"], (t.state, s["state"])
    assert t.value == s["value"], (t.value, s["value"])
    assert {str(k): v for k, v in t.intermediate_values.items()} == s["intermediate"]
    assert t.params["optimizer.args.lr"] == s["params"]["optimizer.args.lr"]
    assert t.params["data.args.batch_size"] == s["params"]["data.args.batch_size"]
    assert json.loads(t.params["model.args.sizes"]) == s["params"]["model.args.sizes"]
    assert t.user_attrs["run_dir"] == s["run_dir"]
    assert t.datetime_start is not None and t.datetime_complete is not None
assert study.best_trial.number == summary["best"]["number"]
# What optuna-dashboard and Optuna's own tools compute from a study works on it.
importance = optuna.importance.get_param_importances(study)
assert set(importance) == {"optimizer.args.lr", "model.args.sizes", "data.args.batch_size"}
# optuna-dashboard serves the study and every trial with its parameters.
import io, warnings
warnings.simplefilter("ignore")
from optuna_dashboard import wsgi
app = wsgi(JournalStorage(JournalFileBackend("out/tpe/study.journal")))
def get(url):
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": url, "QUERY_STRING": "", "SERVER_NAME": "x",
           "SERVER_PORT": "80", "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http",
           "wsgi.errors": io.StringIO()}
    status = []
    body = b"".join(app(env, lambda s, h, *a: status.append(s)))
    return status[0], body
status, body = get("/api/studies/0")
assert status.startswith("200"), (status, body[:500])
served = json.loads(body)["trials"]
assert [t["state"] for t in served] == [s["state"].capitalize() for s in summary["trials"]]
assert all(len(t["params"]) == 3 for t in served)
print("optuna ok", len(study.trials))
"#,
    );
    check.expect_code(0);
    assert!(check.stdout.contains("optuna ok 8"), "{}", check.stdout);

    // best.yaml is a complete experiment that retrains the best trial to the same values.
    let best = &summary["best"];
    let retrain = scratch.stoker(&["train", "out/tpe/best.yaml"]);
    retrain.expect_code(0);
    let again = epoch_values(&retrain.run_dir(&scratch.dir), "val_mse");
    let best_trial = &trials[best["number"].as_u64().unwrap() as usize];
    let reported: Vec<f64> = best_trial["intermediate"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(again, reported);
    assert!(
        retrain
            .run_dir(&scratch.dir)
            .ends_with("out/tpe_best/version_0")
    );
    let report = std::fs::read_to_string(scratch.path("out/tpe/report.html")).unwrap();
    for part in [
        "Optimisation history",
        "Parallel coordinates",
        "Parameter importance",
        "<svg",
    ] {
        assert!(report.contains(part), "report.html lacks {part}");
    }
}

#[test]
fn a_grid_sweep_trains_every_point_once() {
    let scratch = Scratch::new("sweep-grid");
    scratch.write("reg.yaml", EXPERIMENT);
    scratch.write(
        "grid.yaml",
        "\
experiment: reg.yaml
objective: {metric: val_mse, mode: min}
sampler: grid
set: {trainer.args.max_epochs: 1}
space:
  model.args.sizes: {choice: [[8, 4, 1], [8, 8, 1]]}
  optimizer.args.lr: {uniform: [0.001, 0.003], step: 0.001}
",
    );
    scratch
        .stoker(&["sweep", "grid.yaml", "--jobs", "2"])
        .expect_code(0);
    let summary = sweep_json(&scratch, "grid");
    let mut points: Vec<String> = summary["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["state"], "COMPLETE");
            t["params"].to_string()
        })
        .collect();
    assert_eq!(points.len(), 6);
    points.sort();
    points.dedup();
    assert_eq!(points.len(), 6, "a point was trained twice");
    // Running it again trains nothing new: the grid is done.
    let again = scratch.stoker(&["sweep", "grid.yaml", "--resume"]);
    again.expect_code(0);
    assert_eq!(
        sweep_json(&scratch, "grid")["trials"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
}

/// How many trials of the journal were created (`op_code` 4 lines) and have ended (6).
fn created_and_finished(journal: &Path) -> (usize, usize) {
    let text = std::fs::read_to_string(journal).unwrap_or_default();
    let count = |op: &str| text.lines().filter(|l| l.contains(op)).count();
    (count("\"op_code\":4"), count("\"op_code\":6"))
}

#[test]
fn a_sweep_killed_with_sigkill_resumes_without_repeating_a_finished_trial() {
    let scratch = Scratch::new("sweep-kill");
    scratch.write(
        "reg.yaml",
        &EXPERIMENT
            .replace("n_samples: 512", "n_samples: 4096")
            .replace("max_epochs: 4", "max_epochs: 12"),
    );
    scratch.write(
        "kill.yaml",
        "\
experiment: reg.yaml
objective: {metric: val_mse, mode: min}
sampler: {name: random, args: {seed: 3}}
trials: 6
space:
  optimizer.args.lr: {log_uniform: [1.0e-4, 1.0e-2]}
",
    );
    let journal = scratch.path("out/kill/study.journal");
    let mut child = scratch
        .command(&["sweep", "kill.yaml", "--jobs", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Killed once two trials have finished and another is running.
    loop {
        let (created, finished) = created_and_finished(&journal);
        if finished >= 2 && created > finished {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no trial finished in 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = std::fs::read_to_string(&journal).unwrap();
    let finished_before: Vec<String> = before
        .lines()
        .filter(|l| l.contains("\"op_code\":6"))
        .map(str::to_string)
        .collect();

    // Without --resume the study is not touched.
    let refused = scratch.stoker(&["sweep", "kill.yaml"]);
    refused.expect_code(2);
    assert!(refused.stderr.contains("--resume"), "{}", refused.stderr);

    let resumed = scratch.stoker(&["sweep", "kill.yaml", "--resume", "--jobs", "2"]);
    resumed.expect_code(0);
    let after = std::fs::read_to_string(&journal).unwrap();
    assert!(
        after.starts_with(&before),
        "the journal was rewritten, not appended to"
    );
    let summary = sweep_json(&scratch, "kill");
    let trials = summary["trials"].as_array().unwrap();
    let complete = trials.iter().filter(|t| t["state"] == "COMPLETE").count();
    let orphaned: Vec<&serde_json::Value> = trials
        .iter()
        .filter(|t| t["fail_reason"] == "orphaned")
        .collect();
    // The trials that were running were marked failed and ran again with their parameters;
    // the finished ones were kept and not repeated; the budget counts neither twice.
    assert!(!orphaned.is_empty() && orphaned.len() <= 2, "{trials:?}");
    assert_eq!(complete, 6, "{trials:?}");
    assert_eq!(trials.len(), 6 + orphaned.len());
    let lines: Vec<serde_json::Value> = after
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for o in &orphaned {
        let number = o["number"].as_u64().unwrap();
        let rerun = lines
            .iter()
            .find(|l| l["op_code"] == 4 && l["system_attrs"]["failed_trial"] == number)
            .unwrap_or_else(|| panic!("trial {number} did not run again"));
        let rerun_params = &rerun["params"]["optimizer.args.lr"];
        let original = lines
            .iter()
            .filter(|l| l["op_code"] == 4)
            .nth(number as usize)
            .unwrap();
        assert_eq!(rerun_params, &original["params"]["optimizer.args.lr"]);
    }
    for line in finished_before {
        assert_eq!(after.matches(&line).count(), 1);
    }
}

#[test]
fn mistakes_in_a_sweep_file_stop_it_before_any_trial() {
    let scratch = Scratch::new("sweep-bad");
    scratch.write("reg.yaml", EXPERIMENT);
    let base = "experiment: reg.yaml\nobjective: {metric: val_mse, mode: min}\ntrials: 3\n";
    let cases = [
        (
            "space:\n  optimizer.args.lrr: {log_uniform: [1.0e-4, 1.0e-2]}\n",
            "space.optimizer.args.lrr",
            "not a key of the experiment",
        ),
        (
            "space:\n  optimizer.args.lr: {log_uniform: [1.0e-2, 1.0e-4]}\n",
            "space.optimizer.args.lr",
            "low is above high",
        ),
        (
            "space:\n  model.args.sizes: {choice: []}\n",
            "space.model.args.sizes.choice",
            "has no values",
        ),
        (
            "space:\n  model.args.sizes: {choice: [[8, 4, 1], 3]}\n",
            "space.model.args.sizes",
            "does not fit the experiment",
        ),
        (
            "space:\n  optimizer.args.lr: {log_uniforme: [1.0e-4, 1.0e-2]}\n",
            "space.optimizer.args.lr",
            "did you mean `log_uniform`",
        ),
        (
            "sampler: tpee\nspace:\n  optimizer.args.lr: {log_uniform: [1.0e-4, 1.0e-2]}\n",
            "sampler",
            "unknown sampler `tpee`",
        ),
        (
            "sampler: grid\nspace:\n  optimizer.args.lr: {log_uniform: [1.0e-4, 1.0e-2]}\n",
            "space.optimizer.args.lr",
            "finite set of values",
        ),
        (
            "pruner: {name: median, args: {n_warmup_steps: 2}}\nspace:\n  optimizer.args.lr: {log_uniform: [1.0e-4, 1.0e-2]}\n",
            "pruner.args.n_warmup_steps",
            "unknown field",
        ),
    ];
    for (i, (space, path, message)) in cases.iter().enumerate() {
        let file = format!("bad{i}.yaml");
        scratch.write(&file, &format!("{base}{space}"));
        let run = scratch.stoker(&["sweep", &file]);
        run.expect_code(2);
        assert!(run.stderr.contains(&file), "case {i}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("at: {path}")),
            "case {i}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(message), "case {i}: {}", run.stderr);
    }
    // An objective no trial would log.
    scratch.write(
        "metric.yaml",
        "experiment: reg.yaml\nobjective: {metric: val_f1_macro, mode: max}\ntrials: 3\nspace:\n  optimizer.args.lr: {log_uniform: [1.0e-4, 1.0e-2]}\n",
    );
    let run = scratch.stoker(&["sweep", "metric.yaml"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("at: objective.metric") && run.stderr.contains("val_mse"),
        "{}",
        run.stderr
    );
    assert!(!scratch.path("out").exists(), "a trial ran");
}

#[test]
fn every_shipped_sweep_file_passes_its_checks() {
    let dir = common::workspace().join("configs/sweeps");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let run = common::Run::from(
            std::process::Command::new(common::stoker_bin())
                .current_dir(common::workspace())
                .arg("sweep")
                .arg(&file)
                .arg("--check")
                .env("OMP_NUM_THREADS", "1")
                .output()
                .unwrap(),
        );
        run.expect_code(0);
        assert!(run.stdout.contains("trials of configs/"), "{}", run.stdout);
    }
}
