//! `bf16-mixed` and `16-mixed`: float32 parameters, gradients and optimizer state; the matrix
//! products, convolutions and attention of the forward pass (and their backward) in bfloat16 or
//! float16, inside `stoker::native`'s layers (see `stoker_native::autocast`); normalization,
//! softmax, reductions and losses in float32. `16-mixed` scales the loss with a
//! [`GradScaler`](super::grad_scaler::GradScaler).

use serde::{Deserialize, Serialize};
use stoker::burn::optim::GradientsParams;
use stoker::burn::tensor::Tensor;
use stoker::console;
use stoker::error::{BuildError, Result};
use stoker::model::DynModel;
use stoker::precision::Precision;
use stoker::spec::{BuildContext, PrecisionSpec};
use stoker_derive::Component;
use stoker_native::autocast::{ComputeType, with_compute_type};

use super::grad_scaler::GradScaler;

/// Mixed precision in bfloat16 (Lightning's bf16-mixed; `bf16` is its old name): float32 parameters and optimizer state, matrix products, convolutions and attention of stoker::native's layers in bf16; no loss scaling.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(precision, name = "bf16-mixed")]
pub struct Bf16MixedSpec {}

/// Mixed precision in float16 with a loss scaler (Lightning's 16-mixed; `16` is its old name): float32 parameters and optimizer state, matrix products, convolutions and attention of stoker::native's layers in fp16, the loss scaled as torch.amp.GradScaler does.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(precision, name = "16-mixed")]
pub struct Fp16MixedSpec {
    /// The loss scaler's first scale (torch's GradScaler: 65536.0).
    #[serde(default = "init_scale")]
    pub init_scale: f64,
    /// What the scale is multiplied by after growth_interval steps without overflow (torch: 2.0).
    #[serde(default = "growth_factor")]
    pub growth_factor: f64,
    /// What the scale is multiplied by after a step whose gradients overflowed, which is skipped (torch: 0.5).
    #[serde(default = "backoff_factor")]
    pub backoff_factor: f64,
    /// Optimizer steps without overflow before the scale grows (torch: 2000).
    #[serde(default = "growth_interval")]
    pub growth_interval: u32,
}

fn init_scale() -> f64 {
    65536.0
}
fn growth_factor() -> f64 {
    2.0
}
fn backoff_factor() -> f64 {
    0.5
}
fn growth_interval() -> u32 {
    2000
}

impl Default for Fp16MixedSpec {
    fn default() -> Self {
        Fp16MixedSpec {
            init_scale: init_scale(),
            growth_factor: growth_factor(),
            backoff_factor: backoff_factor(),
            growth_interval: growth_interval(),
        }
    }
}

impl Fp16MixedSpec {
    /// Checks the arguments as torch's GradScaler would use them.
    fn validate(&self) -> std::result::Result<(), BuildError> {
        let at = |key: &str, why: &str| BuildError::at(key.to_string(), why.to_string());
        if !(self.init_scale.is_finite() && self.init_scale > 0.0) {
            return Err(at(
                "init_scale",
                "must be a positive number (torch's default: 65536.0)",
            ));
        }
        if !(self.growth_factor.is_finite() && self.growth_factor > 1.0) {
            return Err(at(
                "growth_factor",
                "must be above 1 (torch's default: 2.0)",
            ));
        }
        if !(self.backoff_factor > 0.0 && self.backoff_factor < 1.0) {
            return Err(at(
                "backoff_factor",
                "must be between 0 and 1 (torch's default: 0.5)",
            ));
        }
        if self.growth_interval == 0 {
            return Err(at(
                "growth_interval",
                "must be at least 1 (torch's default: 2000)",
            ));
        }
        Ok(())
    }
}

/// A built mixed precision.
pub struct MixedPrecision {
    compute: ComputeType,
    scaler: Option<GradScaler>,
}

impl Precision for MixedPrecision {
    fn forward(&self, forward: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        with_compute_type(Some(self.compute), forward)
    }

    fn scale_loss(&self, loss: Tensor<1>) -> Tensor<1> {
        match &self.scaler {
            Some(scaler) => scaler.scale_loss(loss),
            None => loss,
        }
    }

    fn unscale_gradients(
        &mut self,
        model: &dyn DynModel,
        grads: GradientsParams,
    ) -> Result<Option<GradientsParams>> {
        match &self.scaler {
            Some(scaler) => scaler.unscale(model, grads),
            None => Ok(Some(grads)),
        }
    }

    fn after_step(&mut self, stepped: bool) {
        if let Some(scaler) = &mut self.scaler {
            scaler.update(!stepped);
        }
    }

    fn state(&self) -> serde_json::Value {
        self.scaler
            .as_ref()
            .map_or(serde_json::Value::Null, GradScaler::state)
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        match &mut self.scaler {
            Some(scaler) => scaler.load_state(state),
            None => Ok(()),
        }
    }
}

/// Refuses a device whose layers are not LibTorch's (mixed precision lives in stoker::native's
/// LibTorch layers).
fn check_device(name: &str, ctx: &BuildContext) -> std::result::Result<(), BuildError> {
    if stoker_native::device::is_libtorch(&ctx.device) {
        return Ok(());
    }
    Err(BuildError::new(format!(
        "precision `{name}` runs on LibTorch devices (cpu, cuda:N), not on the pure-Rust `flex` device"
    ))
    .hint("set `environment.device: cpu` (or cuda), or `trainer.args.precision: 32-true`"))
}

impl PrecisionSpec for Bf16MixedSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Precision>, BuildError> {
        check_device("bf16-mixed", ctx)?;
        console::note(
            "precision bf16-mixed: matrix products, convolutions and attention in bfloat16; parameters, optimizer state, normalization and losses in float32",
        );
        Ok(Box::new(MixedPrecision {
            compute: ComputeType::BFloat16,
            scaler: None,
        }))
    }
}

impl PrecisionSpec for Fp16MixedSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Precision>, BuildError> {
        self.validate()?;
        check_device("16-mixed", ctx)?;
        let on_cpu = stoker_native::device::libtorch_cuda_index(&ctx.device).is_none();
        console::note(format!(
            "precision 16-mixed: matrix products, convolutions and attention in float16, the loss scaled (from {}); parameters, optimizer state, normalization and losses in float32{}",
            self.init_scale,
            if on_cpu {
                " (on the CPU float16 products are slow on most processors: bf16-mixed is the usual choice there)"
            } else {
                ""
            }
        ));
        Ok(Box::new(MixedPrecision {
            compute: ComputeType::Float16,
            scaler: Some(GradScaler::new(self.clone())),
        }))
    }
}
