//! `Default_trainer`: epochs of training with validation after each, checkpoints of the last
//! and the best epoch, and one line per epoch on stdout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use stoker::checkpoint;
use stoker::data::Split;
use stoker::prelude::*;
use stoker::rng::derive_seed;
use stoker::trainer::{FitReport, Trainer, TrainingParts};

use crate::best::Mode;
use crate::evaluate::{collect, evaluate};

/// The standard loop: max_epochs of training, validation after every epoch without autodiff, checkpoints of the last and the best epoch, seeded so two runs of one config give identical metrics.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(trainer, name = "Default_trainer")]
pub struct DefaultTrainerSpec {
    /// Epochs to train.
    #[serde(default = "default_max_epochs")]
    pub max_epochs: usize,
    /// The metric that picks the best epoch and `best.safetensors`; `val_loss`, or `train_loss` when there is no validation split.
    #[serde(default)]
    pub monitor: Option<String>,
    /// Whether a lower (`min`) or higher (`max`) monitored value is better.
    #[serde(default)]
    pub mode: Mode,
}

fn default_max_epochs() -> usize {
    10
}

/// The built loop.
pub struct DefaultTrainer {
    max_epochs: usize,
    monitor: String,
    mode: Mode,
}

impl TrainerSpec for DefaultTrainerSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Trainer>, BuildError> {
        if self.max_epochs == 0 {
            return Err(BuildError::at("max_epochs", "must be at least 1"));
        }
        let has_val = ctx.data()?.len(Split::Val) > 0;
        let monitor = match &self.monitor {
            Some(m) => {
                if m.starts_with("val_") && !has_val {
                    return Err(BuildError::at("monitor", format!("`{m}` is a validation metric but the data has no validation split"))
                        .hint("hold out validation samples (data.args.val_fraction or data.args.val), or monitor a train_ metric"));
                }
                m.clone()
            }
            None if has_val => "val_loss".into(),
            None => "train_loss".into(),
        };
        Ok(Box::new(DefaultTrainer {
            max_epochs: self.max_epochs,
            monitor,
            mode: self.mode,
        }))
    }

    fn horizon(&self, data: &DataInfo) -> Horizon {
        let steps_per_epoch = data.len(Split::Train).div_ceil(data.batch_size.max(1));
        Horizon {
            epochs: Some(self.max_epochs),
            steps_per_epoch,
            total_steps: Some(steps_per_epoch * self.max_epochs),
        }
    }
}

/// A value as the epoch line prints it.
pub fn format_value(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 || (1e-3..1e4).contains(&magnitude) {
        format!("{value:.4}")
    } else {
        format!("{value:.3e}")
    }
}

struct Best {
    value: Option<f64>,
    epoch: Option<usize>,
    metrics: BTreeMap<String, f64>,
}

fn save_checkpoint(path: &Path, parts: &TrainingParts, state: &serde_json::Value) -> Result<()> {
    let weights = parts.model.to_safetensors()?;
    let optimizer = parts
        .optimizer
        .into_bytes()
        .map_err(|e| StokerError::msg(format!("could not serialize the optimizer state: {e}")))?;
    checkpoint::save(path, &weights, Some(&optimizer), state)
}

impl DefaultTrainer {
    fn train_epoch(
        &self,
        parts: &mut TrainingParts,
        epoch: usize,
        global_step: &mut usize,
    ) -> Result<Vec<(String, f64)>> {
        for metric in parts.metrics.train.iter_mut() {
            metric.reset();
        }
        let mut batches = parts.data.epoch(Split::Train, epoch)?;
        for index in 0..batches.len() {
            let at = |e: StokerError| {
                StokerError::msg(format!("epoch {epoch}, train batch {index}: {e}"))
            };
            // Randomness inside the step (dropout) depends only on the seed and the step.
            parts
                .device
                .seed(derive_seed(&[parts.seed, *global_step as u64]));
            let batch = batches.batch(index).map_err(at)?;
            let output = parts.model.forward(&batch).map_err(at)?;
            let loss = parts.loss.forward(&output, &batch).map_err(at)?;
            let view = StepView {
                batch: &batch,
                output: &output,
                loss: &loss,
            };
            for metric in parts.metrics.train.iter_mut() {
                metric.update(&view).map_err(at)?;
            }
            let grads = parts.model.backward(loss.total);
            let lr = parts.scheduler.lr();
            parts.model.optimizer_step(&mut parts.optimizer, lr, grads);
            parts.scheduler.on_optimizer_step();
            *global_step += 1;
        }
        collect(Split::Train, &mut parts.metrics.train)
    }
}

impl Trainer for DefaultTrainer {
    fn fit(&mut self, mut parts: TrainingParts, run: &RunInfo) -> Result<FitReport> {
        for logger in parts.loggers.iter_mut() {
            logger.start(run)?;
        }
        let checkpoints = run.dir.join("checkpoints");
        std::fs::create_dir_all(&checkpoints).map_err(|e| StokerError::io(&checkpoints, e))?;
        let last_path = checkpoints.join("last.safetensors");
        let best_path = checkpoints.join("best.safetensors");
        let has_val = parts.data.info().len(Split::Val) > 0;

        let mut global_step = 0;
        let mut best = Best {
            value: None,
            epoch: None,
            metrics: BTreeMap::new(),
        };
        let mut last_metrics = BTreeMap::new();
        let mut last_checkpoint: Option<PathBuf> = None;
        let mut best_checkpoint: Option<PathBuf> = None;
        let width = self.max_epochs.to_string().len();

        for epoch in 0..self.max_epochs {
            let started = Instant::now();
            let lr = parts.scheduler.lr();
            let mut values = self.train_epoch(&mut parts, epoch, &mut global_step)?;
            if has_val {
                let eval = parts.model.for_eval();
                values.extend(evaluate(
                    eval.as_ref(),
                    parts.data.as_ref(),
                    Split::Val,
                    parts.loss.as_ref(),
                    &mut parts.metrics.val,
                )?);
            }
            let metrics: BTreeMap<String, f64> = values.iter().cloned().collect();
            for logger in parts.loggers.iter_mut() {
                logger.log(&LogRow {
                    epoch,
                    step: global_step,
                    values: values.clone(),
                })?;
            }
            parts.scheduler.on_epoch_end(&metrics);

            let monitored = *metrics.get(&self.monitor).ok_or_else(|| {
                StokerError::msg(format!(
                    "trainer.args.monitor: `{}` was not logged; logged metrics are: {}",
                    self.monitor,
                    metrics.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            let improved = self.mode.improves(monitored, best.value);
            if improved {
                best = Best {
                    value: Some(monitored),
                    epoch: Some(epoch),
                    metrics: metrics.clone(),
                };
            }
            let state = serde_json::json!({
                "epoch": epoch + 1,
                "global_step": global_step,
                "scheduler": parts.scheduler.state(),
                "monitor": self.monitor,
                "best_value": best.value,
                "best_epoch": best.epoch,
                "metrics": metrics,
                "seed": parts.seed,
            });
            save_checkpoint(&last_path, &parts, &state)?;
            last_checkpoint = Some(last_path.clone());
            if improved {
                save_checkpoint(&best_path, &parts, &state)?;
                best_checkpoint = Some(best_path.clone());
            }

            let mut line = format!("epoch {:>width$}/{}", epoch + 1, self.max_epochs);
            for (name, value) in &values {
                line.push_str(&format!("  {name} {}", format_value(*value)));
            }
            line.push_str(&format!(
                "  lr {lr:.2e}  {:.2}s{}",
                started.elapsed().as_secs_f64(),
                if improved { "  *" } else { "" }
            ));
            println!("{line}");
            last_metrics = metrics;
        }
        for logger in parts.loggers.iter_mut() {
            logger.finish()?;
        }
        Ok(FitReport {
            final_metrics: last_metrics,
            best_metrics: best.metrics,
            monitor: self.monitor.clone(),
            best_epoch: best.epoch,
            epochs: self.max_epochs,
            global_step,
            best_checkpoint,
            last_checkpoint,
        })
    }
}
