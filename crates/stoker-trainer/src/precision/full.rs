//! `32-true`: every step in float32, the way parameters are stored; nothing scaled or cast.

use serde::{Deserialize, Serialize};
use stoker::error::BuildError;
use stoker::precision::Precision;
use stoker::spec::{BuildContext, PrecisionSpec};
use stoker_derive::Component;

/// Float32 throughout (Lightning's 32-true): the forward pass, the gradients and the optimizer state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(precision, name = "32-true")]
pub struct FullPrecisionSpec {}

/// The built `32-true` precision.
pub struct FullPrecision;

impl Precision for FullPrecision {}

impl PrecisionSpec for FullPrecisionSpec {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Precision>, BuildError> {
        Ok(Box::new(FullPrecision))
    }
}
