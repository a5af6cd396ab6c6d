//! The self-contained HTML page: inline SVG charts, tables and the config; no script, no
//! network, nothing outside the file.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::charts::Chart;
use crate::data::RunData;
use crate::plot;

const STYLE: &str = "
body { font-family: 'DejaVu Sans', Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1500px; color: #222; padding: 0 16px; }
h1 { font-size: 24px; margin-bottom: 4px; }
h2 { font-size: 19px; margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #555; font-size: 14px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }
.chart svg { width: 100%; height: auto; border: 1px solid #e4e4e4; }
table { border-collapse: collapse; font-size: 14px; margin-top: 8px; }
th, td { border: 1px solid #ddd; padding: 5px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f6f8; }
pre { background: #f6f8fa; padding: 12px; font-size: 13px; overflow-x: auto; }
.matrix { max-width: 520px; }
.matrix svg { width: 100%; height: auto; }
";

/// `text` escaped for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn number(value: Option<f64>) -> String {
    match value {
        None => "".into(),
        Some(v) if v == 0.0 || (1e-3..1e5).contains(&v.abs()) => format!("{v:.4}"),
        Some(v) => format!("{v:.4e}"),
    }
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

fn charts_section(out: &mut String, charts: &[Chart]) -> Result<(), String> {
    out.push_str("<h2>Learning curves</h2>\n");
    if charts.is_empty() {
        out.push_str("<p>Nothing was logged.</p>\n");
        return Ok(());
    }
    out.push_str("<div class=\"charts\">\n");
    for chart in charts {
        let svg = plot::line_svg(&chart.chart)?;
        let _ = writeln!(
            out,
            "<div class=\"chart\" id=\"chart-{}\">{svg}</div>",
            escape(&chart.key)
        );
    }
    out.push_str("</div>\n");
    Ok(())
}

fn metrics_of(summary: Option<&serde_json::Value>, key: &str) -> BTreeMap<String, f64> {
    summary
        .and_then(|s| s.get(key))
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// The last logged value of every name (for runs without a summary: a failed run).
fn last_values(run: &RunData) -> BTreeMap<String, f64> {
    let mut last = BTreeMap::new();
    for row in &run.rows {
        for (k, v) in &row.values {
            last.insert(k.clone(), *v);
        }
    }
    last
}

fn metrics_table(out: &mut String, run: &RunData) {
    let summary = run.summary.as_ref();
    let mut final_metrics = metrics_of(summary, "final_metrics");
    if final_metrics.is_empty() {
        final_metrics = last_values(run);
    }
    let best = metrics_of(summary, "best_metrics");
    let test = metrics_of(summary, "test_metrics");
    let monitor = summary
        .and_then(|s| s.get("monitor"))
        .and_then(|m| m.as_str());
    let best_epoch = summary
        .and_then(|s| s.get("best_epoch"))
        .and_then(|m| m.as_u64());
    out.push_str("<h2>Final and best metrics</h2>\n");
    if let Some(monitor) = monitor {
        let _ = writeln!(
            out,
            "<p class=\"meta\">Best: the checkpoint with the best <b>{}</b>{}; test: {}.</p>",
            escape(monitor),
            best_epoch.map_or(String::new(), |e| format!(", at epoch {}", e + 1)),
            if test.is_empty() {
                "not run"
            } else {
                "evaluated after fit"
            }
        );
    }
    let table = MetricsTable::new(&final_metrics, &best, &test);
    out.push_str(
        "<table id=\"metrics\">\n<tr><th>metric</th><th>train</th><th>val</th>\
         <th>best: train</th><th>best: val</th><th>test</th></tr>\n",
    );
    let mut rows: Vec<_> = table.rows.iter().collect();
    rows.sort_by_key(|(metric, _)| (!metric.starts_with("loss"), metric.as_str()));
    for (metric, cells) in rows {
        let _ = write!(out, "<tr><td>{}</td>", escape(metric));
        for cell in cells {
            let _ = write!(out, "<td>{}</td>", number(*cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    if !table.others.is_empty() {
        out.push_str(
            "<h3>Other logged values (last)</h3>\n<table id=\"other-values\">\n<tr><th>name</th><th>value</th></tr>\n",
        );
        for (name, value) in &table.others {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(name),
                number(Some(*value))
            );
        }
        out.push_str("</table>\n");
    }
}

/// The metrics of a run as one row per metric (`loss`, `f1_macro`, ...) with its train, val,
/// best-checkpoint and test values side by side; the rest (`lr`, step-level values) apart.
struct MetricsTable {
    /// Metric name and its cells: train, val, best train, best val, test.
    rows: BTreeMap<String, [Option<f64>; 5]>,
    /// Values that are not a split's metric, with their last value.
    others: BTreeMap<String, f64>,
}

impl MetricsTable {
    fn new(
        final_metrics: &BTreeMap<String, f64>,
        best: &BTreeMap<String, f64>,
        test: &BTreeMap<String, f64>,
    ) -> MetricsTable {
        let mut table = MetricsTable {
            rows: BTreeMap::new(),
            others: BTreeMap::new(),
        };
        let columns: [(&BTreeMap<String, f64>, &str, usize); 5] = [
            (final_metrics, "train_", 0),
            (final_metrics, "val_", 1),
            (best, "train_", 2),
            (best, "val_", 3),
            (test, "test_", 4),
        ];
        for (values, prefix, column) in columns {
            for (name, value) in values {
                match name.strip_prefix(prefix) {
                    Some(metric) if !metric.ends_with("_step") => {
                        table.rows.entry(metric.to_string()).or_default()[column] = Some(*value);
                    }
                    _ => {}
                }
            }
        }
        for (name, value) in final_metrics.iter().chain(test) {
            let split_metric = ["train_", "val_", "test_"]
                .iter()
                .any(|p| name.strip_prefix(p).is_some_and(|m| !m.ends_with("_step")));
            if !split_metric {
                table.others.insert(name.clone(), *value);
            }
        }
        table
    }
}

fn confusion_section(out: &mut String, run: &RunData) -> Result<(), String> {
    if run.confusion.is_empty() {
        return Ok(());
    }
    out.push_str("<h2>Confusion matrices</h2>\n<div class=\"charts\">\n");
    let mut splits: Vec<_> = run.confusion.iter().collect();
    splits.sort_by_key(|(split, _)| match split.as_str() {
        "val" => 0,
        "test" => 1,
        "train" => 2,
        _ => 3,
    });
    for (split, matrix) in splits {
        let svg = plot::heatmap_svg(&format!("confusion matrix ({split})"), matrix)?;
        let _ = writeln!(
            out,
            "<div class=\"matrix\" id=\"confusion-{}\">{svg}</div>",
            escape(split)
        );
    }
    out.push_str("</div>\n");
    Ok(())
}

fn run_facts(run: &RunData) -> String {
    let Some(s) = &run.summary else {
        return "no summary.json: the run did not finish".into();
    };
    let mut facts = Vec::new();
    let text = |k: &str| s.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let count = |k: &str| s.get(k).and_then(|v| v.as_u64());
    if let Some(device) = text("device") {
        facts.push(format!("device {device}"));
    }
    if let Some(e) = count("epochs") {
        facts.push(format!("{e} epochs"));
    }
    if let Some(n) = count("global_step") {
        facts.push(format!("{n} steps"));
    }
    if let Some(t) = s.get("wall_seconds").and_then(|v| v.as_f64()) {
        facts.push(format!("{t:.1} s"));
    }
    if let Some(reason) = text("stopped_early") {
        facts.push(format!("stopped early: {reason}"));
    }
    if s.get("interrupted").and_then(|v| v.as_bool()) == Some(true) {
        facts.push("interrupted (resumable)".into());
    }
    facts.join(" · ")
}

/// The report page of one run.
pub fn run_page(run: &RunData, charts: &[Chart]) -> Result<String, String> {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>{}</h1>\n<p class=\"meta\">{}</p>\n<p class=\"meta\">{}</p>",
        escape(&run.label),
        escape(&run_facts(run)),
        escape(&run.dir.display().to_string())
    );
    if let Some(best) = run
        .summary
        .as_ref()
        .and_then(|s| s.get("best_checkpoint"))
        .and_then(|v| v.as_str())
    {
        let _ = writeln!(
            body,
            "<p class=\"meta\">best checkpoint: {}</p>",
            escape(best)
        );
    }
    metrics_table(&mut body, run);
    charts_section(&mut body, charts)?;
    confusion_section(&mut body, run)?;
    if let Some(config) = &run.config {
        let _ = writeln!(
            body,
            "<h2>Config</h2>\n<details><summary>config.yaml</summary><pre>{}</pre></details>",
            escape(config)
        );
    }
    Ok(page(&format!("stoker report: {}", run.label), &body))
}

/// The page overlaying several runs: their curves in shared charts, their final metrics side
/// by side.
pub fn comparison_page(runs: &[&RunData], charts: &[Chart]) -> Result<String, String> {
    let mut body = String::new();
    let _ = writeln!(body, "<h1>stoker comparison: {} runs</h1>", runs.len());
    body.push_str("<table id=\"runs\">\n<tr><th>run</th><th>summary</th><th>directory</th></tr>\n");
    for run in runs {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&run.label),
            escape(&run_facts(run)),
            escape(&run.dir.display().to_string())
        );
    }
    body.push_str("</table>\n");
    let finals: Vec<BTreeMap<String, f64>> = runs
        .iter()
        .map(|r| {
            let m = metrics_of(r.summary.as_ref(), "final_metrics");
            if m.is_empty() { last_values(r) } else { m }
        })
        .collect();
    let mut names: Vec<&String> = finals.iter().flat_map(|m| m.keys()).collect();
    names.sort();
    names.dedup();
    body.push_str("<h2>Final metrics</h2>\n<table id=\"metrics\">\n<tr><th>metric</th>");
    for run in runs {
        let _ = write!(body, "<th>{}</th>", escape(&run.label));
    }
    body.push_str("</tr>\n");
    for name in names {
        let _ = write!(body, "<tr><td>{}</td>", escape(name));
        for m in &finals {
            let _ = write!(body, "<td>{}</td>", number(m.get(name).copied()));
        }
        body.push_str("</tr>\n");
    }
    body.push_str("</table>\n");
    charts_section(&mut body, charts)?;
    Ok(page("stoker comparison", &body))
}
