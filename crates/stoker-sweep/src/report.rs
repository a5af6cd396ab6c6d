//! What a sweep leaves beside its study: `sweep.json` (every trial, its parameters as written,
//! its values per epoch, the best trial, the importance estimate), `best.yaml` (the best trial's
//! complete experiment, to retrain it with `cargo xtask train best.yaml`) and `report.html`
//! (the trials' table, the optimisation history, parallel coordinates of the parameters and the
//! importance estimate, as inline SVG in one file).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};
use stoker::sweep::{Direction, Trial, TrialState};

use crate::importance::importance;
use crate::journal::replay::Replay;
use crate::study;
use crate::sweep_file::{Reduce, SweepFile, set_text};

/// The best complete trial (the first of equal ones).
pub fn best(trials: &[Trial], direction: Direction) -> Option<&Trial> {
    trials
        .iter()
        .filter(|t| t.state == TrialState::Complete && t.value.is_some())
        .fold(None, |best: Option<&Trial>, t| match best {
            Some(b)
                if !direction.better(t.value.unwrap_or(f64::NAN), b.value.unwrap_or(f64::NAN)) =>
            {
                Some(b)
            }
            _ => Some(t),
        })
}

fn state_name(state: TrialState) -> &'static str {
    match state {
        TrialState::Running => "RUNNING",
        TrialState::Complete => "COMPLETE",
        TrialState::Pruned => "PRUNED",
        TrialState::Fail => "FAIL",
        TrialState::Waiting => "WAITING",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn number(v: f64) -> String {
    if v == 0.0 || (1e-3..1e5).contains(&v.abs()) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

/// Writes `sweep.json`, `best.yaml` (once a trial is complete) and `report.html` in `dir`.
pub fn write(
    sweep: &SweepFile,
    dir: &Path,
    replay: &Replay,
    study_id: usize,
) -> Result<(), String> {
    let space = sweep.distributions();
    let trials = study::trials(replay, study_id, &space);
    let stored: Vec<_> = replay
        .trials
        .iter()
        .filter(|t| t.study_id == study_id)
        .collect();
    let direction = sweep.objective.direction;
    let best = best(&trials, direction);
    let shares = importance(&space, &trials);
    let run_dir = |number: usize| -> Option<String> {
        stored
            .get(number)?
            .user_attrs
            .get("run_dir")?
            .as_str()
            .map(str::to_string)
    };
    let rows: Vec<Value> = trials
        .iter()
        .map(|t| {
            let s = stored[t.number];
            json!({
                "number": t.number,
                "state": state_name(t.state),
                "value": t.value,
                "params": sweep.values_for(&t.params),
                "intermediate": t.intermediate.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "run_dir": run_dir(t.number),
                "fail_reason": t.system_attrs.get(study::FAIL_REASON),
                "datetime_start": s.datetime_start,
                "datetime_complete": s.datetime_complete,
            })
        })
        .collect();
    let summary = json!({
        "name": sweep.name,
        "sweep_file": sweep.path.display().to_string(),
        "experiment": sweep.experiment.display().to_string(),
        "journal": dir.join("study.journal").display().to_string(),
        "objective": {
            "metric": sweep.objective.metric,
            "mode": if direction == Direction::Maximize { "max" } else { "min" },
            "reduce": if sweep.objective.reduce == Reduce::Best { "best" } else { "last" },
        },
        "sampler": sweep.sampler_name.name,
        "pruner": sweep.pruner_name.name,
        "trials": rows,
        "best": best.map(|b| json!({
            "number": b.number,
            "value": b.value,
            "params": sweep.values_for(&b.params),
            "run_dir": run_dir(b.number),
        })),
        "importance": shares.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
    });
    let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    crate::write_atomic(&dir.join("sweep.json"), &text)?;
    if let Some(b) = best
        && let Some(run) = run_dir(b.number)
    {
        write_best(sweep, dir, b, Path::new(&run))?;
    }
    crate::write_atomic(
        &dir.join("report.html"),
        &page(sweep, &trials, best, &shares, &run_dir),
    )
}

fn write_best(sweep: &SweepFile, dir: &Path, best: &Trial, run: &Path) -> Result<(), String> {
    let config = run.join("config.yaml");
    let text = std::fs::read_to_string(&config)
        .map_err(|e| format!("cannot read the best trial's {}: {e}", config.display()))?;
    let mut value: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", config.display()))?;
    if let serde_yaml::Value::Mapping(map) = &mut value {
        map.insert("name".into(), format!("{}_best", sweep.name).into());
        if let Some(serde_yaml::Value::Mapping(env)) = map.get_mut("environment") {
            env.insert(
                "output_dir".into(),
                sweep.output_dir.display().to_string().into(),
            );
        }
    }
    let params: String = sweep
        .values_for(&best.params)
        .iter()
        .map(|(k, v)| format!("#   {k}: {}\n", set_text(v)))
        .collect();
    let out = format!(
        "# The best trial of the sweep `{}` ({}): trial {}, {} {}.\n# Its parameters:\n{params}# Retrain it: cargo xtask train {}\n{}",
        sweep.name,
        sweep.path.display(),
        best.number,
        sweep.objective.metric,
        best.value.unwrap_or(f64::NAN),
        dir.join("best.yaml").display(),
        serde_yaml::to_string(&value).unwrap_or_default()
    );
    crate::write_atomic(&dir.join("best.yaml"), &out)
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1500px;color:#222;padding:0 16px}
h2{font-size:19px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}.meta{color:#555;font-size:14px}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f4f6f8}
svg{border:1px solid #e4e4e4;max-width:100%;height:auto}.COMPLETE{color:#1a7f37}.PRUNED{color:#9a6700}.FAIL{color:#cf222e}";

/// Scales `v` from `[lo, hi]` to `[a, b]`.
fn scale(v: f64, lo: f64, hi: f64, a: f64, b: f64) -> f64 {
    if hi > lo {
        a + (v - lo) / (hi - lo) * (b - a)
    } else {
        (a + b) / 2.0
    }
}

fn history_svg(trials: &[Trial], direction: Direction, metric: &str) -> String {
    let points: Vec<(f64, f64)> = trials
        .iter()
        .filter(|t| t.state == TrialState::Complete)
        .filter_map(|t| Some((t.number as f64, t.value.filter(|v| v.is_finite())?)))
        .collect();
    if points.is_empty() {
        return "<p>No trial is complete yet.</p>".into();
    }
    let (w, h, m) = (720.0, 320.0, 50.0);
    let x_max = trials.len().max(2) as f64 - 1.0;
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let x = |v: f64| scale(v, 0.0, x_max, m, w - 20.0);
    let y = |v: f64| scale(v, lo, hi, h - m, 20.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-size=\"12\">"
    );
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">trial</text>",
        w / 2.0,
        h - 8.0
    );
    let _ = write!(svg, "<text x=\"4\" y=\"14\">{}</text>", escape(metric));
    let _ = write!(
        svg,
        "<text x=\"4\" y=\"{}\">{}</text><text x=\"4\" y=\"{}\">{}</text>",
        y(hi) + 4.0,
        number(hi),
        y(lo) + 4.0,
        number(lo)
    );
    let mut best: Option<f64> = None;
    let mut line = String::new();
    for (i, v) in &points {
        best = Some(match best {
            Some(b) if !direction.better(*v, b) => b,
            _ => *v,
        });
        let _ = write!(line, "{:.1},{:.1} ", x(*i), y(best.unwrap_or(*v)));
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#1f77b4\"><title>trial {i}: {}</title></circle>",
            x(*i),
            y(*v),
            number(*v)
        );
    }
    let _ = write!(
        svg,
        "<polyline points=\"{line}\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\"/>"
    );
    svg.push_str(
        "</svg><p class=\"meta\">Blue: each complete trial's value; red: the best so far.</p>",
    );
    svg
}

fn parallel_svg(sweep: &SweepFile, trials: &[Trial], direction: Direction) -> String {
    let space = sweep.distributions();
    let complete: Vec<&Trial> = trials
        .iter()
        .filter(|t| t.state == TrialState::Complete && t.value.is_some_and(f64::is_finite))
        .collect();
    if complete.is_empty() {
        return "<p>No trial is complete yet.</p>".into();
    }
    let axes = space.len() + 1;
    let (w, h, top, bottom) = ((axes as f64 * 170.0).max(400.0), 340.0, 40.0, 300.0);
    let ax = |i: usize| scale(i as f64, 0.0, (axes - 1).max(1) as f64, 60.0, w - 60.0);
    // Each axis' range, in the parameter's own scale (log ranges in ln, choices by index).
    let coordinate = |d: usize, t: &Trial| -> f64 {
        if d == space.len() {
            return t.value.unwrap_or(0.0);
        }
        let (name, dist) = &space[d];
        let v = t.params[name];
        match dist {
            stoker::sweep::Distribution::Float { log: true, .. }
            | stoker::sweep::Distribution::Int { log: true, .. } => v.ln(),
            _ => v,
        }
    };
    let ranges: Vec<(f64, f64)> = (0..axes)
        .map(|d| {
            if d < space.len()
                && let stoker::sweep::Distribution::Categorical { choices } = &space[d].1
            {
                return (0.0, (choices.len().max(2) - 1) as f64);
            }
            let vs = complete.iter().map(|t| coordinate(d, t));
            let lo = vs.clone().fold(f64::INFINITY, f64::min);
            let hi = vs.fold(f64::NEG_INFINITY, f64::max);
            (lo, hi)
        })
        .collect();
    let (vlo, vhi) = ranges[space.len()];
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-size=\"11\">"
    );
    for t in &complete {
        let v = t.value.unwrap_or(0.0);
        // Better trials darker and on top of the colour scale.
        let good = match direction {
            Direction::Minimize => scale(v, vlo, vhi, 1.0, 0.0),
            Direction::Maximize => scale(v, vlo, vhi, 0.0, 1.0),
        };
        let colour = format!(
            "rgb({},{},{})",
            (230.0 - 200.0 * good) as u8,
            (120.0 - 60.0 * good) as u8,
            (60.0 + 160.0 * good) as u8
        );
        let points: String = (0..axes)
            .map(|d| {
                format!(
                    "{:.1},{:.1} ",
                    ax(d),
                    scale(coordinate(d, t), ranges[d].0, ranges[d].1, bottom, top)
                )
            })
            .collect();
        let _ = write!(
            svg,
            "<polyline points=\"{points}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" opacity=\"0.8\"><title>trial {}: {}</title></polyline>",
            t.number,
            number(v)
        );
    }
    for d in 0..axes {
        let x = ax(d);
        let label = if d == space.len() {
            sweep.objective.metric.clone()
        } else {
            space[d].0.clone()
        };
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"#444\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            top - 14.0,
            escape(&label)
        );
        let (lo, hi) = ranges[d];
        let shown = |v: f64| -> String {
            if d < space.len() {
                let (name, dist) = &space[d];
                let _ = name;
                let raw = match dist {
                    stoker::sweep::Distribution::Float { log: true, .. }
                    | stoker::sweep::Distribution::Int { log: true, .. } => v.exp(),
                    _ => v,
                };
                if let stoker::sweep::Distribution::Categorical { choices } = dist {
                    return choices
                        .get(raw as usize)
                        .map(|c| c.to_string())
                        .unwrap_or_default();
                }
                return number(raw);
            }
            number(v)
        };
        let _ = write!(
            svg,
            "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            bottom + 16.0,
            escape(&shown(lo)),
            top - 2.0,
            escape(&shown(hi))
        );
    }
    svg.push_str("</svg><p class=\"meta\">One line per complete trial; blue lines are the better trials. Log ranges are drawn in log scale.</p>");
    svg
}

fn importance_svg(shares: &[(String, f64)]) -> String {
    if shares.is_empty() {
        return "<p>Too few complete trials (at least 4 with different values) for an estimate.</p>".into();
    }
    let (w, row) = (640.0, 26.0);
    let h = row * shares.len() as f64 + 10.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-size=\"12\">"
    );
    for (i, (name, share)) in shares.iter().enumerate() {
        let y = 5.0 + i as f64 * row;
        let _ = write!(
            svg,
            "<text x=\"4\" y=\"{:.1}\">{}</text><rect x=\"240\" y=\"{y:.1}\" width=\"{:.1}\" height=\"18\" fill=\"#1f77b4\"/><text x=\"{:.1}\" y=\"{:.1}\">{:.2}</text>",
            y + 14.0,
            escape(name),
            340.0 * share,
            246.0 + 340.0 * share,
            y + 14.0,
            share
        );
    }
    svg.push_str("</svg><p class=\"meta\">The share of the objective's variance over complete trials that each parameter explains alone (eta squared, numeric parameters in quantile bins), normalised to sum to 1: a first-order estimate without interactions, noisy with few trials.</p>");
    svg
}

fn page(
    sweep: &SweepFile,
    trials: &[Trial],
    best: Option<&Trial>,
    shares: &[(String, f64)],
    run_dir: &dyn Fn(usize) -> Option<String>,
) -> String {
    let direction = sweep.objective.direction;
    let count = |s: TrialState| trials.iter().filter(|t| t.state == s).count();
    let mut body = format!(
        "<h1>Sweep {}</h1>\n<p class=\"meta\">{} · experiment {} · objective {} ({}) · sampler {} · pruner {} · {} trials: {} complete, {} pruned, {} failed, {} running</p>\n",
        escape(&sweep.name),
        escape(&sweep.path.display().to_string()),
        escape(&sweep.experiment.display().to_string()),
        escape(&sweep.objective.metric),
        if direction == Direction::Maximize {
            "max"
        } else {
            "min"
        },
        escape(&sweep.sampler_name.name),
        escape(&sweep.pruner_name.name),
        trials.len(),
        count(TrialState::Complete),
        count(TrialState::Pruned),
        count(TrialState::Fail),
        count(TrialState::Running),
    );
    if let Some(b) = best {
        let _ = writeln!(
            body,
            "<p><b>Best:</b> trial {} with {} {} · retrain it: <code>cargo xtask train {}</code></p>",
            b.number,
            escape(&sweep.objective.metric),
            number(b.value.unwrap_or(f64::NAN)),
            escape(
                &sweep
                    .output_dir
                    .join(&sweep.name)
                    .join("best.yaml")
                    .display()
                    .to_string()
            )
        );
    }
    body.push_str("<h2>Optimisation history</h2>\n");
    body.push_str(&history_svg(trials, direction, &sweep.objective.metric));
    body.push_str("<h2>Parallel coordinates</h2>\n");
    body.push_str(&parallel_svg(sweep, trials, direction));
    body.push_str("<h2>Parameter importance (estimate)</h2>\n");
    body.push_str(&importance_svg(shares));
    body.push_str(
        "<h2>Trials</h2>\n<table><tr><th>trial</th><th>state</th><th>value</th><th>epochs</th>",
    );
    for p in &sweep.space {
        let _ = write!(body, "<th>{}</th>", escape(&p.key));
    }
    body.push_str("<th>run</th></tr>\n");
    for t in trials {
        let state = state_name(t.state);
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"{state}\">{state}</td><td>{}</td><td>{}</td>",
            t.number,
            t.value.map(number).unwrap_or_default(),
            t.intermediate.len()
        );
        for (_, v) in sweep.values_for(&t.params) {
            let _ = write!(body, "<td>{}</td>", escape(&set_text(&v)));
        }
        let _ = writeln!(
            body,
            "<td>{}</td></tr>",
            escape(&run_dir(t.number).unwrap_or_default())
        );
    }
    body.push_str("</table>\n");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Sweep {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(&sweep.name)
    )
}
