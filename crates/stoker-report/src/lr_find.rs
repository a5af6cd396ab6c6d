//! The learning-rate finder's curve (`lr_find.csv`, written by `auto_lr_find` into the run and
//! by `lr-find` into its own folder) as a chart: the smoothed loss against log10 of the rate,
//! the suggested rate in the title.

use std::path::{Path, PathBuf};

use crate::charts::Chart;
use crate::plot::{self, LineChart};

/// The chart of `dir/lr_find.csv`, when there is one.
pub fn chart(dir: &Path) -> Option<Chart> {
    let text = std::fs::read_to_string(dir.join("lr_find.csv")).ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (lr, smoothed, suggested) = (
        column("lr")?,
        column("smoothed_loss")?,
        column("suggested")?,
    );
    let mut points = Vec::new();
    let mut suggestion = None;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let number = |i: usize| cells.get(i).and_then(|c| c.parse::<f64>().ok());
        let (Some(rate), Some(loss)) = (number(lr), number(smoothed)) else {
            continue;
        };
        if cells.get(suggested) == Some(&"1") {
            suggestion = Some(rate);
        }
        if rate > 0.0 && loss.is_finite() {
            points.push((rate.log10(), loss));
        }
    }
    let title = match suggestion {
        Some(rate) => format!("learning-rate finder: suggested {rate:.3e}"),
        None => "learning-rate finder: no suggestion".into(),
    };
    Some(Chart {
        key: "lr_find".into(),
        chart: LineChart {
            title,
            x_label: "log10(learning rate)".into(),
            series: vec![("smoothed loss".into(), points)],
            markers: false,
        },
    })
}

/// Writes `dir/lr_find.html` and `dir/lr_find.png` from `dir/lr_find.csv`; returns the page.
pub fn write_page(dir: &Path) -> Result<PathBuf, String> {
    let chart =
        chart(dir).ok_or_else(|| format!("{} has no readable lr_find.csv", dir.display()))?;
    let svg = plot::line_svg(&chart.chart)?;
    let page = dir.join("lr_find.html");
    let html = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>{}</title><body style=\"font-family: sans-serif; max-width: 760px\"><h1>{}</h1>{svg}<p>lr_find.csv holds the curve.</p></body>\n",
        crate::html::escape(&chart.chart.title),
        crate::html::escape(&chart.chart.title)
    );
    std::fs::write(&page, html).map_err(|e| format!("{}: {e}", page.display()))?;
    let png = dir.join("lr_find.png");
    std::fs::write(&png, plot::line_png(&chart.chart)?)
        .map_err(|e| format!("{}: {e}", png.display()))?;
    Ok(page)
}
