//! `GradientMonitor`: gradient norms, globally and per parameter, with warnings when they
//! vanish or explode.

use serde::{Deserialize, Serialize};
use stoker::burn::optim::GradientsParams;
use stoker::burn::tensor::Tensor;
use stoker::prelude::*;

/// Logs the global L2 norm of the gradients (grad_norm_total) and each parameter's (grad_norm/<path>) before the optimizer step, and flags vanishing or exploding gradients.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(callback, name = "GradientMonitor")]
pub struct GradientMonitorSpec {
    /// Check every N optimizer steps; trainer.args.log_every_n_steps when not given.
    #[serde(default)]
    pub every_n_steps: Option<usize>,
    /// Also log each parameter's norm.
    #[serde(default = "yes")]
    pub per_layer: bool,
    /// A global norm below this is flagged as vanishing.
    #[serde(default = "default_vanishing")]
    pub vanishing_threshold: f64,
    /// A global norm above this is flagged as exploding.
    #[serde(default = "default_exploding")]
    pub exploding_threshold: f64,
}

fn yes() -> bool {
    true
}

fn default_vanishing() -> f64 {
    1e-7
}

fn default_exploding() -> f64 {
    1e3
}

/// The built callback.
pub struct GradientMonitor {
    spec: GradientMonitorSpec,
}

/// Each gradient's squared L2 norm, read from the device in one transfer, by path.
pub fn squared_norms(model: &dyn DynModel, grads: &GradientsParams) -> Result<Vec<(String, f64)>> {
    let flat = model.gradients_flat(grads);
    if flat.is_empty() {
        return Ok(Vec::new());
    }
    let (paths, sums): (Vec<String>, Vec<Tensor<1>>) =
        flat.into_iter().map(|(p, g)| (p, g.square().sum())).unzip();
    let values = Tensor::cat(sums, 0)
        .into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .map_err(|e| StokerError::msg(format!("gradient norms: {e:?}")))?;
    Ok(paths.into_iter().zip(values).collect())
}

impl Callback for GradientMonitor {
    fn logs(&self, name: &str) -> bool {
        matches!(
            name,
            "grad_norm_total" | "grad_vanishing" | "grad_exploding"
        ) || name.starts_with("grad_norm/")
    }

    fn on_before_optimizer_step(
        &mut self,
        ctx: &mut HookContext<'_>,
        grads: &GradientsParams,
    ) -> Result<()> {
        let every = self
            .spec
            .every_n_steps
            .unwrap_or(ctx.log_every_n_steps)
            .max(1);
        // The step about to be taken is global_step + 1.
        let step = ctx.position.global_step + 1;
        if !step.is_multiple_of(every) {
            return Ok(());
        }
        let norms = squared_norms(ctx.model, grads)?;
        let total = norms.iter().map(|(_, s)| s).sum::<f64>().sqrt();
        ctx.control.log("grad_norm_total", total);
        if self.spec.per_layer {
            for (path, squared) in &norms {
                ctx.control.log(format!("grad_norm/{path}"), squared.sqrt());
            }
        }
        if total < self.spec.vanishing_threshold {
            ctx.control.log("grad_vanishing", 1.0);
            ctx.control.notes.push(format!("GradientMonitor: vanishing gradients at step {step}: global norm {total:.3e} < {:.1e}", self.spec.vanishing_threshold));
        }
        if total > self.spec.exploding_threshold || !total.is_finite() {
            ctx.control.log("grad_exploding", 1.0);
            ctx.control.notes.push(format!("GradientMonitor: exploding gradients at step {step}: global norm {total:.3e} > {:.1e}", self.spec.exploding_threshold));
        }
        Ok(())
    }
}

impl CallbackSpec for GradientMonitorSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn Callback>, BuildError> {
        if self.every_n_steps == Some(0) {
            return Err(BuildError::at("every_n_steps", "must be at least 1"));
        }
        if self.vanishing_threshold >= self.exploding_threshold {
            return Err(BuildError::at(
                "vanishing_threshold",
                "must be below exploding_threshold",
            ));
        }
        Ok(Box::new(GradientMonitor { spec: self.clone() }))
    }
}
