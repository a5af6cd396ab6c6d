//! `MultiTFR_trainer`: the bearing seed's multi time-frequency-representation training. The
//! model gives one set of scores per representation (`pred_stft`, `pred_cwt`, `pred_wvd`, as
//! `MultiTFR_CNN` does) besides the combined `pred`; each step trains every branch on the
//! experiment's loss, weighted by `tfr_weights`, so that each representation learns to classify
//! on its own, and logs each branch's loss.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stoker::prelude::*;
use stoker::trainer::Trainer;
use stoker::training::{
    Loop, LoopArgs, StepContext, StepOutput, StepTrainer, TrainingStep, ValidationContext,
};

/// Multi-TFR training: the loss is sum over representations r of tfr_weights[r] x loss(pred_r), computed on each branch's scores `<pred>_<r>` in place of `pred` and logged as train_loss_<r> / val_loss_<r>; without tfr_weights every branch the model gives weighs 1. Validation and test score the branches the same way; the metrics see the model's combined `pred` (add `{name: accuracy, args: {pred: pred_stft, label: stft}}` for a branch's own).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[component(trainer, name = "MultiTFR_trainer")]
pub struct MultiTfrTrainerSpec {
    /// The loop's arguments, as Default_trainer takes them.
    #[serde(flatten)]
    pub loop_args: LoopArgs,
    /// The weight of each representation's loss, by name: `{stft: 1.0, cwt: 1.0, wvd: 0.5}` (none given: each branch of the model at 1).
    #[serde(default)]
    pub tfr_weights: BTreeMap<String, f64>,
    /// The model's combined scores; a branch's are `<pred>_<representation>`.
    #[serde(default = "stoker::names::prediction")]
    pub pred: String,
}

impl TrainerSpec for MultiTfrTrainerSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Trainer>, BuildError> {
        for (name, w) in &self.tfr_weights {
            if !(w.is_finite() && *w >= 0.0) {
                return Err(BuildError::at(
                    format!("tfr_weights.{name}"),
                    "must be a number >= 0",
                ));
            }
        }
        if !self.tfr_weights.is_empty() && self.tfr_weights.values().all(|w| *w == 0.0) {
            return Err(BuildError::at(
                "tfr_weights",
                "every weight is 0: nothing would train",
            ));
        }
        let step = BranchStep {
            weights: self.tfr_weights.clone(),
            pred: self.pred.clone(),
        };
        Ok(Box::new(StepTrainer::new(
            Loop::build(&self.loop_args, ctx)?,
            step,
        )))
    }

    stoker::training::loop_args_methods!();
}

/// The step: the experiment's loss on every branch, weighted.
struct BranchStep {
    weights: BTreeMap<String, f64>,
    pred: String,
}

impl BranchStep {
    /// The branches `output` holds (`<pred>_<name>`) with their weights.
    fn branches(&self, output: &Output) -> Result<Vec<(String, f64)>> {
        let prefix = format!("{}_", self.pred);
        let found: Vec<String> = output
            .names()
            .filter_map(|n| n.strip_prefix(&prefix))
            .map(String::from)
            .collect();
        if found.is_empty() {
            return Err(StokerError::msg(format!(
                "MultiTFR_trainer: the model gives no `{prefix}<representation>` scores; it trains a model with one output per representation, such as MultiTFR_CNN"
            )));
        }
        if self.weights.is_empty() {
            return Ok(found.into_iter().map(|name| (name, 1.0)).collect());
        }
        for name in self.weights.keys() {
            if !found.contains(name) {
                return Err(StokerError::msg(format!(
                    "MultiTFR_trainer: trainer.args.tfr_weights names `{name}`, but the model's representations are: {}",
                    found.join(", ")
                )));
            }
        }
        Ok(self
            .weights
            .iter()
            .filter(|(_, w)| **w > 0.0)
            .map(|(n, w)| (n.clone(), *w))
            .collect())
    }

    /// `output` with branch `name`'s scores as `pred`.
    fn branch(&self, output: &Output, name: &str) -> Result<Output> {
        let mut branch = output.clone();
        branch.insert_bridge(
            self.pred.clone(),
            output.bridge(&format!("{}_{name}", self.pred))?,
        );
        Ok(branch)
    }
}

/// The weighted sum of `losses` (`(name, weight, value)`), each logged as a term.
fn weighted(losses: Vec<(String, f64, Tensor<1>)>) -> LossValue {
    let mut total: Option<Tensor<1>> = None;
    let mut terms = Vec::new();
    for (name, weight, value) in losses {
        let part = value.clone().mul_scalar(weight);
        total = Some(match total {
            Some(t) => t + part,
            None => part,
        });
        terms.push((name, value));
    }
    LossValue {
        total: total.expect("at least one branch"),
        terms,
    }
}

impl TrainingStep for BranchStep {
    fn training_step(&mut self, ctx: &mut StepContext<'_>) -> Result<StepOutput> {
        let output = ctx.forward()?;
        let mut losses = Vec::new();
        for (name, weight) in self.branches(&output)? {
            let branch = self.branch(&output, &name)?;
            let value = ctx.compute_loss(&branch)?.total;
            losses.push((name, weight, value));
        }
        let loss = weighted(losses);
        let grads = ctx.backward(loss.total.clone());
        Ok(StepOutput {
            output,
            loss,
            grads,
            batch: None,
        })
    }

    fn validation_step(&mut self, ctx: &ValidationContext<'_>) -> Result<(Output, LossValue)> {
        let output = ctx.model.forward(ctx.batch)?;
        let mut losses = Vec::new();
        for (name, weight) in self.branches(&output)? {
            let branch = self.branch(&output, &name)?;
            losses.push((name, weight, ctx.loss.forward(&branch, ctx.batch)?.total));
        }
        Ok((output, weighted(losses)))
    }
}
