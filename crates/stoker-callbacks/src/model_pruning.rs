//! `ModelPruning`: L1 unstructured magnitude pruning at chosen epochs, as
//! `torch.nn.utils.prune.l1_unstructured` / `global_unstructured`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::{Tensor, TensorData};
use stoker::prelude::*;

/// Whether weights are ranked across all pruned parameters or within each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One ranking across all pruned parameters (`global_unstructured`).
    #[default]
    Global,
    /// Each parameter pruned by the same fraction on its own.
    Layer,
}

/// Prunes the smallest-magnitude weights (l1_unstructured) at the start of chosen epochs, across all selected parameters or per parameter; pruned weights are zero and stay zero for the rest of training.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(callback, name = "ModelPruning")]
pub struct ModelPruningSpec {
    /// The pruning method; `l1_unstructured` is the one available.
    #[serde(default = "default_fn")]
    pub pruning_fn: String,
    /// Fraction of the still-unpruned weights removed each time pruning runs.
    pub amount: f64,
    /// `global` (rank across parameters) or `layer` (each parameter on its own).
    #[serde(default)]
    pub scope: Scope,
    /// Epochs (0-based) at whose start pruning runs; every epoch when empty.
    #[serde(default)]
    pub epochs: Vec<usize>,
    /// Parameters pruned: those whose path ends with one of these.
    #[serde(default = "default_parameters")]
    pub parameters: Vec<String>,
}

fn default_fn() -> String {
    "l1_unstructured".into()
}

fn default_parameters() -> Vec<String> {
    vec!["weight".into()]
}

/// The built callback.
pub struct ModelPruning {
    spec: ModelPruningSpec,
    /// Keep-masks (1 kept, 0 pruned) by parameter path, on the host.
    masks: BTreeMap<String, Vec<bool>>,
    /// The same masks on the device, as floats, for re-applying after each step.
    device_masks: BTreeMap<String, Tensor<1>>,
    /// Parameters pruned before a resume, whose masks are rebuilt from their zeros.
    restored: Vec<String>,
}

/// Which of `values` to prune: the `k` of smallest magnitude among those `keep` still keeps.
/// Returns the new keep-masks. Ties go to the earlier entry, in parameter then index order.
pub fn l1_prune(values: &[Vec<f32>], keep: &[Vec<bool>], amount: f64) -> Vec<Vec<bool>> {
    let mut candidates: Vec<(f32, usize, usize)> = Vec::new();
    for (p, (v, m)) in values.iter().zip(keep).enumerate() {
        for (i, (&x, &kept)) in v.iter().zip(m).enumerate() {
            if kept {
                candidates.push((x.abs(), p, i));
            }
        }
    }
    // As PyTorch: round(amount * n), halves to even.
    let k = (amount * candidates.len() as f64).round_ties_even() as usize;
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    let mut out: Vec<Vec<bool>> = keep.to_vec();
    for &(_, p, i) in candidates.iter().take(k) {
        out[p][i] = false;
    }
    out
}

impl ModelPruning {
    fn selected(&self, path: &str) -> bool {
        self.spec
            .parameters
            .iter()
            .any(|suffix| path.ends_with(suffix.as_str()))
    }

    fn host(tensor: Tensor<1>) -> Result<Vec<f32>> {
        tensor
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| StokerError::msg(format!("ModelPruning: {e:?}")))
    }

    /// Rebuilds masks of parameters pruned before a resume: their zeros are the pruned entries.
    fn rebuild(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        if self.restored.is_empty() {
            return Ok(());
        }
        for (path, value) in ctx.model.parameters_flat() {
            if self.restored.contains(&path) {
                let mask: Vec<bool> = Self::host(value)?.iter().map(|&x| x != 0.0).collect();
                self.install(&path, mask, ctx.device);
            }
        }
        self.restored.clear();
        Ok(())
    }

    fn install(&mut self, path: &str, mask: Vec<bool>, device: &Device) {
        let floats: Vec<f32> = mask.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
        let n = floats.len();
        self.device_masks.insert(
            path.to_string(),
            Tensor::from_data(TensorData::new(floats, [n]), device),
        );
        self.masks.insert(path.to_string(), mask);
    }

    fn apply(&self, model: &mut dyn DynModel) {
        let masks = &self.device_masks;
        model.map_parameters(&mut |path, value| match masks.get(path) {
            Some(mask) => value * mask.clone(),
            None => value,
        });
    }

    fn prune(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        self.rebuild(ctx)?;
        let mut paths = Vec::new();
        let mut values = Vec::new();
        for (path, value) in ctx.model.parameters_flat() {
            if self.selected(&path) {
                values.push(Self::host(value)?);
                paths.push(path);
            }
        }
        if paths.is_empty() {
            return Err(StokerError::msg(format!(
                "callbacks: ModelPruning found no parameter ending with {:?}",
                self.spec.parameters
            )));
        }
        let keep: Vec<Vec<bool>> = paths
            .iter()
            .zip(&values)
            .map(|(p, v)| {
                self.masks
                    .get(p)
                    .cloned()
                    .unwrap_or_else(|| vec![true; v.len()])
            })
            .collect();
        let new_masks = match self.spec.scope {
            Scope::Global => l1_prune(&values, &keep, self.spec.amount),
            Scope::Layer => values
                .iter()
                .zip(&keep)
                .flat_map(|(v, k)| {
                    l1_prune(
                        std::slice::from_ref(v),
                        std::slice::from_ref(k),
                        self.spec.amount,
                    )
                })
                .collect(),
        };
        let (mut pruned, mut total) = (0usize, 0usize);
        for (path, mask) in paths.iter().zip(new_masks) {
            pruned += mask.iter().filter(|k| !**k).count();
            total += mask.len();
            self.install(path, mask, ctx.device);
        }
        self.apply(ctx.model);
        let sparsity = pruned as f64 / total.max(1) as f64;
        ctx.control.log("pruning_sparsity", sparsity);
        ctx.control.notes.push(format!(
            "ModelPruning: epoch {}: {:.1}% of the selected weights are zero",
            ctx.position.epoch,
            100.0 * sparsity
        ));
        Ok(())
    }
}

impl Callback for ModelPruning {
    fn logs(&self, name: &str) -> bool {
        name == "pruning_sparsity"
    }

    fn on_train_epoch_start(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        if self.spec.epochs.is_empty() || self.spec.epochs.contains(&ctx.position.epoch) {
            self.prune(ctx)?;
        }
        Ok(())
    }

    fn on_train_batch_end(
        &mut self,
        ctx: &mut HookContext<'_>,
        _step: &StepView<'_>,
        stepped: bool,
    ) -> Result<()> {
        self.rebuild(ctx)?;
        if stepped && !self.device_masks.is_empty() {
            // The optimizer moved the pruned weights; put them back to zero.
            self.apply(ctx.model);
        }
        Ok(())
    }

    fn on_save_checkpoint(&mut self) -> Result<serde_json::Value> {
        let mut pruned: Vec<String> = self.masks.keys().cloned().collect();
        pruned.extend(self.restored.iter().cloned());
        Ok(serde_json::json!({ "pruned": pruned }))
    }

    fn on_load_checkpoint(&mut self, state: &serde_json::Value) -> Result<()> {
        self.restored = serde_json::from_value(state["pruned"].clone()).unwrap_or_default();
        Ok(())
    }
}

impl CallbackSpec for ModelPruningSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn Callback>, BuildError> {
        if self.pruning_fn != "l1_unstructured" {
            return Err(BuildError::at(
                "pruning_fn",
                format!("`{}` is not available", self.pruning_fn),
            )
            .hint("use l1_unstructured"));
        }
        if !(0.0..=1.0).contains(&self.amount) {
            return Err(BuildError::at(
                "amount",
                format!("{} is not a fraction in [0, 1]", self.amount),
            ));
        }
        if self.parameters.is_empty() {
            return Err(BuildError::at(
                "parameters",
                "name at least one parameter suffix, e.g. [weight]",
            ));
        }
        Ok(Box::new(ModelPruning {
            spec: self.clone(),
            masks: BTreeMap::new(),
            device_masks: BTreeMap::new(),
            restored: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prunes_the_smallest_magnitudes_globally_and_iteratively() {
        let values = vec![vec![0.5, -0.1, 2.0], vec![-0.05, 1.0, 0.2]];
        let all = vec![vec![true; 3], vec![true; 3]];
        // 50% of 6 = 3 smallest magnitudes: 0.05, 0.1, 0.2.
        let masks = l1_prune(&values, &all, 0.5);
        assert_eq!(
            masks,
            vec![vec![true, false, true], vec![false, true, false]]
        );
        // Again 50% of the 3 left (round(1.5) = 2): 0.5 and 1.0 go, 2.0 stays.
        let again = l1_prune(&values, &masks, 0.5);
        assert_eq!(
            again,
            vec![vec![false, false, true], vec![false, false, false]]
        );
    }
}
