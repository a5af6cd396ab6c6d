//! `MetricsTracker`: every epoch's metrics, and each metric's best, mean and last.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stoker::fs::write_atomic;
use stoker::prelude::*;

/// Keeps every epoch's metrics and writes metrics_history.json at the end: the history, and for each metric its best value and epoch, mean and last value.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(callback, name = "MetricsTracker")]
pub struct MetricsTrackerSpec {
    /// Metrics where higher is better; by default those whose name has accuracy, f1, precision, recall, r2 or auc in it.
    #[serde(default)]
    pub maximize: Vec<String>,
    /// The file written in the run directory.
    #[serde(default = "default_filename")]
    pub filename: String,
}

fn default_filename() -> String {
    "metrics_history.json".into()
}

/// The built callback.
pub struct MetricsTracker {
    spec: MetricsTrackerSpec,
    history: Vec<BTreeMap<String, f64>>,
}

impl MetricsTracker {
    fn mode(&self, name: &str) -> Mode {
        let higher = ["accuracy", "f1", "precision", "recall", "r2", "auc"];
        if self.spec.maximize.iter().any(|m| m == name) || higher.iter().any(|h| name.contains(h)) {
            Mode::Max
        } else {
            Mode::Min
        }
    }

    /// Each metric's best value and epoch, mean and last value over the history.
    pub fn summary(&self) -> BTreeMap<String, serde_json::Value> {
        let mut names: Vec<&String> = self.history.iter().flat_map(|row| row.keys()).collect();
        names.sort();
        names.dedup();
        let mut out = BTreeMap::new();
        for name in names {
            if name == "epoch" {
                continue;
            }
            let mode = self.mode(name);
            let values: Vec<(f64, f64)> = self
                .history
                .iter()
                .filter_map(|row| {
                    Some((
                        row.get("epoch").copied().unwrap_or(f64::NAN),
                        *row.get(name)?,
                    ))
                })
                .collect();
            let best = values.iter().copied().reduce(|a, b| {
                if mode.better(b.1, a.1) || a.1.is_nan() {
                    b
                } else {
                    a
                }
            });
            let mean = values.iter().map(|v| v.1).sum::<f64>() / values.len() as f64;
            out.insert(
                name.clone(),
                serde_json::json!({
                    "mode": mode,
                    "best": best.map(|b| b.1),
                    "best_epoch": best.map(|b| b.0 as usize),
                    "mean": mean,
                    "last": values.last().map(|v| v.1),
                }),
            );
        }
        out
    }
}

impl Callback for MetricsTracker {
    fn on_train_epoch_end(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        let mut row = ctx.metrics.clone();
        row.insert("epoch".into(), ctx.position.epoch as f64);
        self.history.push(row);
        Ok(())
    }

    fn on_fit_end(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        if !ctx.is_global_zero {
            return Ok(());
        }
        let report = serde_json::json!({ "history": self.history, "summary": self.summary() });
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        write_atomic(&ctx.run_dir.join(&self.spec.filename), text.as_bytes())
    }

    fn on_save_checkpoint(&mut self) -> Result<serde_json::Value> {
        Ok(serde_json::json!(self.history))
    }

    fn on_load_checkpoint(&mut self, state: &serde_json::Value) -> Result<()> {
        self.history = serde_json::from_value(state.clone())
            .map_err(|e| StokerError::msg(format!("MetricsTracker state: {e}")))?;
        Ok(())
    }
}

impl CallbackSpec for MetricsTrackerSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn Callback>, BuildError> {
        if self.filename.is_empty() || self.filename.contains('/') {
            return Err(BuildError::at("filename", "must be a plain file name"));
        }
        Ok(Box::new(MetricsTracker {
            spec: self.clone(),
            history: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_picks_best_by_mode() {
        let tracker = MetricsTracker {
            spec: MetricsTrackerSpec {
                maximize: vec![],
                filename: default_filename(),
            },
            history: vec![
                BTreeMap::from([
                    ("epoch".into(), 0.0),
                    ("val_loss".into(), 0.5),
                    ("val_accuracy".into(), 0.7),
                ]),
                BTreeMap::from([
                    ("epoch".into(), 1.0),
                    ("val_loss".into(), 0.3),
                    ("val_accuracy".into(), 0.9),
                ]),
                BTreeMap::from([
                    ("epoch".into(), 2.0),
                    ("val_loss".into(), 0.4),
                    ("val_accuracy".into(), 0.8),
                ]),
            ],
        };
        let s = tracker.summary();
        assert_eq!(s["val_loss"]["best"], 0.3);
        assert_eq!(s["val_loss"]["best_epoch"], 1);
        assert_eq!(s["val_accuracy"]["best"], 0.9);
        assert_eq!(s["val_accuracy"]["mode"], "max");
        assert!((s["val_loss"]["mean"].as_f64().unwrap() - 0.4).abs() < 1e-12);
        assert_eq!(s["val_loss"]["last"], 0.4);
    }
}
