//! `SamplePredictions`: a few predictions next to their targets, every N epochs.

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::Tensor;
use stoker::data::{Order, Shard};
use stoker::fs::write_atomic;
use stoker::prelude::*;

/// Every N epochs writes the first num_samples predictions of a split next to their targets to samples/epoch=<E>.json in the run directory.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(callback, name = "SamplePredictions")]
pub struct SamplePredictionsSpec {
    /// Write every N epochs.
    #[serde(default = "one")]
    pub every_n_epochs: usize,
    /// How many samples.
    #[serde(default = "four")]
    pub num_samples: usize,
    /// The split they come from: val (train when there is no validation data), train or test.
    #[serde(default = "default_split")]
    pub split: String,
    /// The model output written.
    #[serde(default = "stoker::names::prediction")]
    pub pred: String,
    /// The batch tensor written next to it.
    #[serde(default = "stoker::names::target")]
    pub target: String,
}

fn one() -> usize {
    1
}
fn four() -> usize {
    4
}
fn default_split() -> String {
    "val".into()
}
/// The built callback.
pub struct SamplePredictions {
    spec: SamplePredictionsSpec,
    split: Split,
}

fn rows(tensor: Tensor<2>) -> Result<Vec<Vec<f32>>> {
    let [n, width] = tensor.dims();
    let values = tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| StokerError::msg(format!("SamplePredictions: {e:?}")))?;
    Ok((0..n)
        .map(|i| values[i * width..(i + 1) * width].to_vec())
        .collect())
}

impl SamplePredictions {
    fn write(&self, ctx: &mut HookContext<'_>) -> Result<()> {
        let info = ctx.data.info();
        let split = if info.len(self.split) == 0 {
            Split::Train
        } else {
            self.split
        };
        let model = ctx.model.for_eval();
        let mut batches = ctx.data.epoch(split, 0, Order::Sequential, Shard::WHOLE)?;
        let mut samples = Vec::new();
        let mut index = 0;
        while samples.len() < self.spec.num_samples && index < batches.len() {
            let batch = batches.batch(index)?;
            let output = model.forward(&batch)?;
            let preds = rows(output.float_flat(&self.spec.pred)?)?;
            let targets = if batch.contains(&self.spec.target) {
                match batch.float_flat(&self.spec.target) {
                    Ok(t) => rows(t)?,
                    Err(_) => rows(
                        batch
                            .int::<1>(&self.spec.target)?
                            .float()
                            .reshape([preds.len(), 1]),
                    )?,
                }
            } else {
                vec![Vec::new(); preds.len()]
            };
            for (pred, target) in preds.into_iter().zip(targets) {
                if samples.len() < self.spec.num_samples {
                    samples.push(serde_json::json!({ "index": samples.len(), "pred": pred, "target": target }));
                }
            }
            index += 1;
        }
        let dir = ctx.run_dir.join("samples");
        std::fs::create_dir_all(&dir).map_err(|e| StokerError::io(&dir, e))?;
        let report = serde_json::json!({
            "epoch": ctx.position.epoch,
            "step": ctx.position.global_step,
            "split": split.as_str(),
            "samples": samples,
        });
        let path = dir.join(format!("epoch={:03}.json", ctx.position.epoch));
        write_atomic(
            &path,
            serde_json::to_string_pretty(&report)
                .unwrap_or_default()
                .as_bytes(),
        )
    }
}

impl Callback for SamplePredictions {
    fn on_train_epoch_end(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        if ctx.is_global_zero && (ctx.position.epoch + 1).is_multiple_of(self.spec.every_n_epochs) {
            self.write(ctx)?;
        }
        Ok(())
    }
}

impl CallbackSpec for SamplePredictionsSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn Callback>, BuildError> {
        if self.every_n_epochs == 0 {
            return Err(BuildError::at("every_n_epochs", "must be at least 1"));
        }
        let split = match self.split.as_str() {
            "train" => Split::Train,
            "val" => Split::Val,
            "test" => Split::Test,
            other => {
                return Err(BuildError::at(
                    "split",
                    format!("`{other}` is not train, val or test"),
                ));
            }
        };
        Ok(Box::new(SamplePredictions {
            spec: self.clone(),
            split,
        }))
    }
}
