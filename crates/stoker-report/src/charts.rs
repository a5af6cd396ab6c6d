//! Which charts a run's logged values make: one per metric (its train, val and step series
//! together), one for the loss terms, one for the learning rate.

use crate::data::RunData;
use crate::plot::LineChart;

/// A chart's key and title for a logged name; `None` for names not charted (test metrics,
/// logged once, go to the table).
pub fn group_of(name: &str) -> Option<(String, String)> {
    if name == "lr" || name.starts_with("lr-") || name.starts_with("lr_") {
        return Some(("lr".into(), "learning rate".into()));
    }
    if name.starts_with("test_") {
        return None;
    }
    let rest = ["train_", "val_"]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    let rest = rest
        .strip_suffix("_step")
        .or_else(|| rest.strip_suffix("_epoch"))
        .unwrap_or(rest);
    if rest.starts_with("loss_") {
        return Some(("loss_terms".into(), "loss terms".into()));
    }
    Some((file_safe(rest), rest.replace('_', " ")))
}

/// `name` with every character a file name might not take replaced by `_`.
pub fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One chart: its key (the PNG's file stem) and what it draws.
#[derive(Debug, Clone)]
pub struct Chart {
    /// `loss`, `accuracy`, `lr`: the PNG is `plots/<key>.png`.
    pub key: String,
    /// The chart.
    pub chart: LineChart,
}

fn order(key: &str) -> u8 {
    match key {
        "loss" => 0,
        "lr" => 3,
        "loss_terms" => 1,
        _ => 2,
    }
}

/// The charts of several runs; with more than one run each series is named after its run.
/// `skip_step_series` leaves out step-level series (`train_loss_step`) where epoch-level ones
/// exist, to keep overlays of several runs readable.
pub fn charts(runs: &[&RunData], skip_step_series: bool) -> Vec<Chart> {
    let mut charts: Vec<Chart> = Vec::new();
    for run in runs {
        let names = run.names();
        for name in &names {
            let Some((key, title)) = group_of(name) else {
                continue;
            };
            if skip_step_series
                && let Some(base) = name.strip_suffix("_step")
                && names.iter().any(|n| n == base)
            {
                continue;
            }
            let points = run.series(name);
            if points.is_empty() {
                continue;
            }
            let label = if runs.len() > 1 {
                format!("{} {name}", run.label)
            } else {
                name.clone()
            };
            let chart = match charts.iter_mut().find(|c| c.key == key) {
                Some(c) => c,
                None => {
                    charts.push(Chart {
                        key: key.clone(),
                        chart: LineChart {
                            title,
                            x_label: "step".into(),
                            series: Vec::new(),
                            markers: false,
                        },
                    });
                    charts.last_mut().expect("just pushed")
                }
            };
            chart.chart.series.push((label, points));
        }
    }
    for chart in charts.iter_mut() {
        chart.chart.markers = chart.chart.series.iter().all(|(_, p)| p.len() <= 3);
    }
    charts.sort_by_key(|c| order(&c.key));
    charts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_splits_of_one_metric_together() {
        assert_eq!(group_of("train_loss_step").unwrap().0, "loss");
        assert_eq!(group_of("val_loss").unwrap().0, "loss");
        assert_eq!(group_of("train_accuracy").unwrap().0, "accuracy");
        assert_eq!(group_of("val_accuracy").unwrap().1, "accuracy");
        assert_eq!(group_of("train_loss_physics").unwrap().0, "loss_terms");
        assert_eq!(group_of("lr-adam").unwrap().0, "lr");
        assert_eq!(group_of("val_top_2_accuracy").unwrap().1, "top 2 accuracy");
        assert_eq!(group_of("test_accuracy"), None);
    }
}
