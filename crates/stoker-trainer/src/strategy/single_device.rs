//! `single_device` (and `auto`, which picks it for one process): training in this process on
//! the experiment's device. Every seam of the strategy is the identity here.

use serde::{Deserialize, Serialize};
use stoker::error::BuildError;
use stoker::spec::{BuildContext, StrategySpec};
use stoker::strategy::Strategy;
use stoker_derive::Component;

/// One process on one device (environment.device): nothing is shared, reduced or broadcast.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(strategy, name = "single_device")]
pub struct SingleDeviceSpec {}

/// Picks the strategy for how the process was started: single_device for one process.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(strategy, name = "auto")]
pub struct AutoStrategySpec {}

/// The built `single_device` strategy.
pub struct SingleDevice;

impl Strategy for SingleDevice {}

impl StrategySpec for SingleDeviceSpec {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Strategy>, BuildError> {
        Ok(Box::new(SingleDevice))
    }
}

impl StrategySpec for AutoStrategySpec {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Strategy>, BuildError> {
        Ok(Box::new(SingleDevice))
    }
}
