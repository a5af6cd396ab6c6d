//! stoker's run reports: `report.html` (self-contained: inline SVG charts, the final and best
//! metrics, confusion matrices, the config) and the same charts as PNG files under `plots/`,
//! regenerated from a run directory alone; and comparisons overlaying several runs.
//!
//! - [`data`]: what a run directory holds (`metrics.csv` or `metrics.jsonl`, `summary.json`).
//! - [`charts`]: which charts its logged values make.
//! - [`plot`]: drawing them (plotters, with a bundled font).
//! - [`html`]: the page.

pub mod charts;
pub mod data;
pub mod html;
pub mod lr_find;
pub mod plot;

use std::path::{Path, PathBuf};

use data::RunData;

/// What [`write_report`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// `report.html`.
    pub html: PathBuf,
    /// The PNG files, one per chart and confusion matrix.
    pub pngs: Vec<PathBuf>,
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    stoker::fs::write_atomic(path, bytes).map_err(|e| e.to_string())
}

/// Writes `report.html` and `plots/*.png` into the run directory `dir`, from what it holds.
pub fn write_report(dir: &Path) -> Result<Written, String> {
    let run = RunData::load(dir)?;
    let mut charts = charts::charts(&[&run], false);
    charts.extend(lr_find::chart(dir));
    let html = dir.join("report.html");
    write(&html, html::run_page(&run, &charts)?.as_bytes())?;
    let plots = dir.join("plots");
    std::fs::create_dir_all(&plots).map_err(|e| format!("{}: {e}", plots.display()))?;
    let mut pngs = Vec::new();
    for chart in &charts {
        let path = plots.join(format!("{}.png", chart.key));
        write(&path, &plot::line_png(&chart.chart)?)?;
        pngs.push(path);
    }
    for (split, matrix) in &run.confusion {
        let path = plots.join(format!("confusion_matrix_{split}.png"));
        write(
            &path,
            &plot::heatmap_png(&format!("confusion matrix ({split})"), matrix)?,
        )?;
        pngs.push(path);
    }
    Ok(Written { html, pngs })
}

/// The learning curves of the run in `dir` as one PNG (the loss chart, or the first chart),
/// for loggers that keep images; `None` when nothing was logged.
pub fn learning_curves_png(dir: &Path) -> Result<Option<Vec<u8>>, String> {
    let run = RunData::load(dir)?;
    let mut charts = charts::charts(&[&run], false);
    charts.extend(lr_find::chart(dir));
    match charts.first() {
        Some(chart) => plot::line_png(&chart.chart).map(Some),
        None => Ok(None),
    }
}

/// Writes one page overlaying the curves of the runs in `dirs` to `output`.
pub fn write_comparison(dirs: &[PathBuf], output: &Path) -> Result<(), String> {
    let runs = dirs
        .iter()
        .map(|d| RunData::load(d))
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&RunData> = runs.iter().collect();
    let charts = charts::charts(&refs, true);
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    write(output, html::comparison_page(&refs, &charts)?.as_bytes())
}
