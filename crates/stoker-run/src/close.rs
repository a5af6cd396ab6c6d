//! The end of a run, whatever ended it: the report, then the loggers get the summary, the
//! learning curves, the run's files and its status, and are closed. Nothing here changes the
//! exit status: a logger or report that fails at this point is a warning, the run's files stay.

use std::path::{Path, PathBuf};

use stoker::console;
use stoker::logger::{Loggers, RunStatus};

/// The files of the run the loggers keep as artifacts, those that exist.
fn artifacts(dir: &Path, report: Option<&stoker_report::Written>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["config.yaml", "summary.json"]
        .iter()
        .map(|name| dir.join(name))
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut tables: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("confusion_matrix_") && n.ends_with(".csv"))
            })
            .collect();
        tables.sort();
        files.extend(tables);
    }
    if let Some(report) = report {
        files.push(report.html.clone());
        files.extend(report.pngs.iter().cloned());
    }
    files.retain(|p| p.is_file());
    files
}

/// Writes the report of the run in `dir` (unless `with_report` is false) and closes `loggers`
/// with `status`. `summary` is `summary.json`'s content when the fit returned; `step` the last
/// optimizer step.
pub fn close_run(
    dir: &Path,
    loggers: &Loggers,
    status: RunStatus,
    summary: Option<&serde_json::Value>,
    step: usize,
    with_report: bool,
) {
    let started = std::time::Instant::now();
    let written = match with_report {
        true => stoker_report::write_report(dir).map(Some),
        false => Ok(None),
    };
    let report = match written {
        Ok(None) => None,
        Ok(Some(written)) => {
            tracing::info!(
                "report written in {:.2}s: {}",
                started.elapsed().as_secs_f64(),
                written.html.display()
            );
            Some(written)
        }
        Err(e) => {
            console::warn(format!("no report.html: {e}"));
            None
        }
    };
    let mut problems = Vec::new();
    let mut check = |result: stoker::Result<()>| {
        if let Err(e) = result {
            problems.push(e.to_string());
        }
    };
    if let Some(summary) = summary {
        check(loggers.each(|_, l| l.log_summary(summary)));
    }
    if report.is_some()
        && let Ok(Some(png)) = stoker_report::learning_curves_png(dir)
    {
        check(loggers.each(|_, l| l.log_image("learning_curves", step, &png)));
    }
    for file in artifacts(dir, report.as_ref()) {
        check(loggers.each(|_, l| l.log_artifact(&file)));
    }
    check(loggers.each(|_, l| l.set_status(status)));
    check(loggers.each(|_, l| l.finish()));
    for problem in problems {
        console::warn(problem);
    }
    if let Some(report) = report {
        console::note(format!("report {}", report.html.display()));
    }
}
