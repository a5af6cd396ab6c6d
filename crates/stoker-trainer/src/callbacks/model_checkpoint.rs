//! `ModelCheckpoint`: writes checkpoints on a schedule, keeps the best k by a monitored metric,
//! and optionally `last.safetensors`, as Lightning's callback of that name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stoker::callback::BestCheckpoint;
use stoker::prelude::*;

use crate::callbacks::template::Template;

/// Saves checkpoints every N epochs or steps, keeps the best save_top_k by a monitored metric (or the latest ones without a monitor), and last.safetensors when save_last is set.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(callback, name = "ModelCheckpoint")]
pub struct ModelCheckpointSpec {
    /// Directory of the checkpoints; the run's `checkpoints/` when not given.
    #[serde(default)]
    pub dirpath: Option<PathBuf>,
    /// File name (without extension) with `{epoch}`, `{step}` and logged metrics, Python-style formats allowed: `epoch{epoch:02d}-val_loss{val_loss:.4f}`.
    #[serde(default = "default_filename")]
    pub filename: String,
    /// The metric that ranks checkpoints; without one the latest are kept.
    #[serde(default)]
    pub monitor: Option<String>,
    /// Whether a lower (`min`) or higher (`max`) monitored value is better.
    #[serde(default)]
    pub mode: Mode,
    /// How many checkpoints to keep: the best k (-1 keeps every one, 0 none besides last).
    #[serde(default = "default_top_k")]
    pub save_top_k: i64,
    /// Also write `last.safetensors` at every save.
    #[serde(default)]
    pub save_last: bool,
    /// Write the model weights only (such checkpoints cannot be resumed from).
    #[serde(default)]
    pub save_weights_only: bool,
    /// Save at the end of every N-th epoch (the default, N = 1, unless every_n_train_steps is set).
    #[serde(default)]
    pub every_n_epochs: Option<usize>,
    /// Save after every N-th optimizer step.
    #[serde(default)]
    pub every_n_train_steps: Option<usize>,
}

fn default_filename() -> String {
    "epoch={epoch}-step={step}".into()
}

fn default_top_k() -> i64 {
    1
}

/// The built callback.
pub struct ModelCheckpoint {
    spec: ModelCheckpointSpec,
    template: Template,
    /// Saved checkpoints still kept (file names in the checkpoint directory), with their
    /// monitored value (the step without a monitor).
    kept: Vec<(String, f64)>,
    last_check_step: Option<usize>,
    /// The checkpoint directory, known from the first hook on.
    dir: Option<PathBuf>,
}

impl ModelCheckpoint {
    /// Lightning's implicit checkpoint, which the loop adds when `enable_checkpointing` is on
    /// and no configured callback writes checkpoints: the best epoch by `monitor` (the latest
    /// without one), and `last.safetensors`.
    pub fn implicit(monitor: Option<String>) -> Self {
        let spec = ModelCheckpointSpec {
            dirpath: None,
            filename: default_filename(),
            monitor,
            mode: Mode::Min,
            save_top_k: 1,
            save_last: true,
            save_weights_only: false,
            every_n_epochs: None,
            every_n_train_steps: None,
        };
        spec.checked()
            .expect("the implicit checkpoint's arguments are valid")
    }

    /// The checkpoint directory (remembered for [`Callback::best_checkpoint`]).
    fn dir(&mut self, run_dir: &Path) -> PathBuf {
        let dir = self
            .spec
            .dirpath
            .clone()
            .unwrap_or_else(|| run_dir.join("checkpoints"));
        self.dir = Some(dir.clone());
        dir
    }

    /// How bad a kept checkpoint's score is (higher is worse): the oldest without a monitor,
    /// NaN the worst of all with one.
    fn badness(&self, score: f64) -> f64 {
        match (&self.spec.monitor, self.spec.mode) {
            (None, _) => -score,
            (Some(_), _) if score.is_nan() => f64::INFINITY,
            (Some(_), Mode::Min) => score,
            (Some(_), Mode::Max) => -score,
        }
    }

    fn worst(&self) -> Option<usize> {
        (0..self.kept.len()).max_by(|&a, &b| {
            self.badness(self.kept[a].1)
                .total_cmp(&self.badness(self.kept[b].1))
        })
    }

    fn check(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        let step = ctx.position.global_step;
        if step == 0 || self.last_check_step == Some(step) {
            return Ok(());
        }
        let mut values: BTreeMap<String, f64> = ctx.metrics.clone();
        values.insert("epoch".into(), ctx.position.epoch as f64);
        values.insert("step".into(), step as f64);
        let score = match &self.spec.monitor {
            None => step as f64,
            Some(monitor) => match values.get(monitor) {
                Some(v) => *v,
                None => {
                    let prefix = monitor.split('_').next().unwrap_or("");
                    if ctx
                        .metrics
                        .keys()
                        .any(|k| k.starts_with(&format!("{prefix}_")))
                    {
                        return Err(StokerError::msg(format!(
                            "callbacks: ModelCheckpoint monitors `{monitor}`, which is not logged; logged metrics are: {}",
                            ctx.metrics.keys().cloned().collect::<Vec<_>>().join(", ")
                        )));
                    }
                    // Not logged yet (no validation so far): nothing to rank by.
                    return Ok(());
                }
            },
        };
        self.last_check_step = Some(step);
        let dir = self.dir(ctx.run_dir);
        let name = self.template.render(&values).map_err(|missing| {
            StokerError::msg(format!(
                "callbacks: ModelCheckpoint's filename `{}` names `{missing}`, which is not logged",
                self.spec.filename
            ))
        })?;
        let mut file = format!("{name}.safetensors");
        let mut version = 1;
        while self.kept.iter().any(|(f, _)| *f == file) {
            file = format!("{name}-v{version}.safetensors");
            version += 1;
        }
        let k = self.spec.save_top_k;
        let keep = match k {
            0 => false,
            -1 => true,
            _ if self.kept.len() < k as usize => true,
            _ => {
                let worst = self.worst().expect("k > 0 checkpoints are kept");
                let keep = self.badness(score) < self.badness(self.kept[worst].1);
                if keep {
                    let (old, _) = self.kept.remove(worst);
                    ctx.control.deletes.push(dir.join(old));
                }
                keep
            }
        };
        if keep {
            ctx.control
                .save(dir.join(&file), self.spec.save_weights_only);
            self.kept.push((file, score));
        }
        if self.spec.save_last {
            ctx.control
                .save(dir.join("last.safetensors"), self.spec.save_weights_only);
        }
        Ok(())
    }
}

impl Callback for ModelCheckpoint {
    fn on_fit_start(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        self.dir(ctx.run_dir);
        Ok(())
    }

    fn on_train_epoch_end(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        if self.spec.every_n_train_steps.is_some() {
            return Ok(());
        }
        let n = self.spec.every_n_epochs.unwrap_or(1);
        if (ctx.position.epoch + 1).is_multiple_of(n) {
            self.check(ctx)?;
        }
        Ok(())
    }

    fn on_train_batch_end(
        &mut self,
        ctx: &mut HookContext<'_>,
        _step: &StepView<'_>,
        stepped: bool,
    ) -> Result<()> {
        match self.spec.every_n_train_steps {
            Some(n) if stepped && ctx.position.global_step.is_multiple_of(n) => self.check(ctx),
            _ => Ok(()),
        }
    }

    fn on_save_checkpoint(&mut self) -> Result<serde_json::Value> {
        Ok(serde_json::json!({ "kept": self.kept, "last_check_step": self.last_check_step }))
    }

    fn on_load_checkpoint(&mut self, state: &serde_json::Value) -> Result<()> {
        self.kept = serde_json::from_value(state["kept"].clone())
            .map_err(|e| StokerError::msg(format!("ModelCheckpoint state: {e}")))?;
        self.last_check_step = state["last_check_step"].as_u64().map(|s| s as usize);
        Ok(())
    }

    fn runs_last(&self) -> bool {
        true
    }

    fn writes_checkpoints(&self) -> bool {
        true
    }

    fn best_checkpoint(&self) -> Option<BestCheckpoint> {
        let monitor = self.spec.monitor.clone()?;
        let dir = self.dir.as_ref()?;
        let mode = self.spec.mode;
        self.kept
            .iter()
            .filter(|(_, v)| !v.is_nan())
            .reduce(|a, b| if mode.better(b.1, a.1) { b } else { a })
            .map(|(file, value)| BestCheckpoint {
                path: dir.join(file),
                monitor,
                value: *value,
            })
    }
}

impl CallbackSpec for ModelCheckpointSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn Callback>, BuildError> {
        Ok(Box::new(self.checked()?))
    }
}

impl ModelCheckpointSpec {
    /// The callback, once its arguments are checked.
    fn checked(&self) -> std::result::Result<ModelCheckpoint, BuildError> {
        let template =
            Template::parse(&self.filename).map_err(|e| BuildError::at("filename", e))?;
        if self.save_top_k < -1 {
            return Err(BuildError::at(
                "save_top_k",
                "must be -1 (all), 0, or a count",
            ));
        }
        if self.save_top_k > 1 && self.monitor.is_none() {
            return Err(BuildError::at(
                "save_top_k",
                "keeping more than one checkpoint needs a monitor to rank them",
            )
            .hint("set monitor (e.g. val_loss), or save_top_k: -1 to keep every checkpoint"));
        }
        if self.every_n_epochs.is_some() && self.every_n_train_steps.is_some() {
            return Err(BuildError::at(
                "every_n_train_steps",
                "every_n_epochs and every_n_train_steps are both set",
            )
            .hint("choose one schedule"));
        }
        if self.every_n_epochs == Some(0) || self.every_n_train_steps == Some(0) {
            return Err(BuildError::new(
                "every_n_epochs / every_n_train_steps must be at least 1",
            ));
        }
        Ok(ModelCheckpoint {
            spec: self.clone(),
            template,
            kept: Vec::new(),
            last_check_step: None,
            dir: None,
        })
    }
}
