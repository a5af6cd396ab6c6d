//! `bf16-true`: everything in bfloat16, as Lightning's bf16-true: the parameters, the
//! gradients, the optimizer state, the data and every operation. Half the memory of float32
//! and no casts, at bfloat16's 8-bit mantissa (small updates to large weights can round away).
//! The runner makes bfloat16 the device's default float type before the data and the model
//! are built (`TrainerSpec::float_dtype`), so nothing is left to cast during a step.

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::FloatDType;
use stoker::console;
use stoker::error::BuildError;
use stoker::precision::Precision;
use stoker::spec::{BuildContext, PrecisionSpec};
use stoker_derive::Component;

/// Everything in bfloat16 (Lightning's bf16-true): parameters, gradients, optimizer state, data and computation; checkpoints hold bf16 weights.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(precision, name = "bf16-true")]
pub struct Bf16TrueSpec {}

/// The built `bf16-true` precision: the device computes in bfloat16 already.
pub struct Bf16True;

impl Precision for Bf16True {}

impl PrecisionSpec for Bf16TrueSpec {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Precision>, BuildError> {
        if ctx.device.settings().float_dtype != FloatDType::BF16 {
            return Err(BuildError::new(
                "bf16-true needs the device's float type set to bfloat16 before the data and the model are built, which this trainer did not ask for",
            )
            .hint("a trainer plugin returns `loop_args.float_dtype()` from `TrainerSpec::float_dtype`, as Default_trainer does"));
        }
        console::note(
            "precision bf16-true: parameters, gradients, optimizer state, data and computation in bfloat16",
        );
        Ok(Box::new(Bf16True))
    }
}
