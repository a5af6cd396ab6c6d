//! `EarlyStopping`: stops training when a monitored metric stops improving.

use serde::{Deserialize, Serialize};
use stoker::checkpoint;
use stoker::prelude::*;

/// Stops when the monitored metric has not improved by min_delta for patience checks, is not finite, crosses stopping_threshold (good enough) or divergence_threshold (hopeless); can restore the best weights at the end.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(callback, name = "EarlyStopping")]
pub struct EarlyStoppingSpec {
    /// The metric watched; `val_*` metrics are checked after each validation, others at each epoch end.
    #[serde(default = "default_monitor")]
    pub monitor: String,
    /// Whether a lower (`min`) or higher (`max`) value is better.
    #[serde(default)]
    pub mode: Mode,
    /// Checks without improvement before stopping.
    #[serde(default = "default_patience")]
    pub patience: usize,
    /// The least change that counts as an improvement.
    #[serde(default)]
    pub min_delta: f64,
    /// Fail when the monitored metric is not logged (instead of skipping the check).
    #[serde(default = "yes")]
    pub strict: bool,
    /// Stop when the monitored metric becomes NaN or infinite.
    #[serde(default = "yes")]
    pub check_finite: bool,
    /// Stop as soon as the metric is better than this.
    #[serde(default)]
    pub stopping_threshold: Option<f64>,
    /// Stop as soon as the metric is worse than this.
    #[serde(default)]
    pub divergence_threshold: Option<f64>,
    /// Put the weights of the best check back when training ends.
    #[serde(default)]
    pub restore_best_weights: bool,
}

fn default_monitor() -> String {
    "val_loss".into()
}

fn default_patience() -> usize {
    3
}

fn yes() -> bool {
    true
}

/// The built callback.
pub struct EarlyStopping {
    spec: EarlyStoppingSpec,
    best: Option<f64>,
    wait: usize,
    /// Whether the best weights were saved (to `checkpoints/early_stopping_best.safetensors`).
    best_weights: bool,
}

fn best_weights_path(run_dir: &std::path::Path) -> std::path::PathBuf {
    run_dir
        .join("checkpoints")
        .join("early_stopping_best.safetensors")
}

impl EarlyStopping {
    fn check(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        let monitor = &self.spec.monitor;
        let Some(&value) = ctx.metrics.get(monitor) else {
            if self.spec.strict {
                return Err(StokerError::msg(format!(
                    "callbacks: EarlyStopping monitors `{monitor}`, which is not logged; logged metrics are: {} (set strict: false to skip such checks)",
                    ctx.metrics.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            return Ok(());
        };
        let mode = self.spec.mode;
        if self.spec.check_finite && !value.is_finite() {
            ctx.control
                .stop(format!("EarlyStopping: {monitor} = {value} is not finite"));
            return Ok(());
        }
        if let Some(threshold) = self.spec.stopping_threshold
            && mode.better(value, threshold)
        {
            ctx.control.stop(format!(
                "EarlyStopping: {monitor} = {value} reached stopping_threshold {threshold}"
            ));
        }
        if let Some(threshold) = self.spec.divergence_threshold
            && mode.better(threshold, value)
        {
            ctx.control.stop(format!(
                "EarlyStopping: {monitor} = {value} is beyond divergence_threshold {threshold}"
            ));
        }
        if mode.improves(value, self.best, self.spec.min_delta) {
            self.best = Some(value);
            self.wait = 0;
            if self.spec.restore_best_weights {
                ctx.control.save(best_weights_path(ctx.run_dir), true);
                self.best_weights = true;
            }
        } else {
            self.wait += 1;
            if self.wait >= self.spec.patience {
                ctx.control.stop(format!(
                    "EarlyStopping: {monitor} did not improve for {} checks (best {})",
                    self.wait,
                    self.best.map_or("none".into(), |b| b.to_string())
                ));
            }
        }
        Ok(())
    }
}

impl Callback for EarlyStopping {
    fn on_validation_end(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        if self.spec.monitor.starts_with("val_") {
            self.check(ctx)?;
        }
        Ok(())
    }

    fn on_train_epoch_end(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        if !self.spec.monitor.starts_with("val_") {
            self.check(ctx)?;
        }
        Ok(())
    }

    /// Only the global rank 0 wrote the best weights; the strategy gives them to the other
    /// processes after the fit.
    fn on_fit_end(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        if self.best_weights && ctx.is_global_zero {
            let weights = checkpoint::load(&best_weights_path(ctx.run_dir))?.weights;
            ctx.model.load_safetensors(weights)?;
            ctx.control.notes.push(format!(
                "EarlyStopping: restored the weights of the best check ({} = {})",
                self.spec.monitor,
                self.best.unwrap_or(f64::NAN)
            ));
        }
        Ok(())
    }

    fn on_save_checkpoint(&mut self) -> Result<serde_json::Value> {
        Ok(
            serde_json::json!({ "best": self.best, "wait": self.wait, "best_weights": self.best_weights }),
        )
    }

    fn on_load_checkpoint(&mut self, state: &serde_json::Value) -> Result<()> {
        self.best = state["best"].as_f64();
        self.wait = state["wait"].as_u64().unwrap_or(0) as usize;
        self.best_weights = state["best_weights"].as_bool().unwrap_or(false);
        Ok(())
    }

    fn runs_last(&self) -> bool {
        true
    }
}

impl CallbackSpec for EarlyStoppingSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn Callback>, BuildError> {
        if !(self.min_delta.is_finite() && self.min_delta >= 0.0) {
            return Err(BuildError::at("min_delta", "must be >= 0"));
        }
        Ok(Box::new(EarlyStopping {
            spec: self.clone(),
            best: None,
            wait: 0,
            best_weights: false,
        }))
    }
}
