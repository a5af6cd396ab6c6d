//! `single_device` (and `auto`, which picks it for one process, and `ddp` for several):
//! training in this process on the experiment's device. Every seam of the strategy is the
//! identity here.

use serde::{Deserialize, Serialize};
use stoker::error::BuildError;
use stoker::spec::{BuildContext, StrategySpec};
use stoker::strategy::Strategy;
use stoker_derive::Component;

use super::ddp::DdpSpec;
use super::environment::ClusterEnvironment;

/// One process on one device (environment.device): nothing is shared, reduced or broadcast.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(strategy, name = "single_device")]
pub struct SingleDeviceSpec {}

/// Picks the strategy for how the process was started: single_device for one process, ddp (with its defaults) for one of several (WORLD_SIZE > 1 or SLURM_NTASKS > 1).
#[derive(Debug, Clone, Default, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(strategy, name = "auto")]
pub struct AutoStrategySpec {}

/// The built `single_device` strategy.
pub struct SingleDevice;

impl Strategy for SingleDevice {}

/// The launcher's description of this process, when it is one of several.
fn several() -> Result<Option<ClusterEnvironment>, BuildError> {
    let env = ClusterEnvironment::from_process().map_err(BuildError::new)?;
    Ok(env.filter(|e| e.world_size > 1))
}

impl StrategySpec for SingleDeviceSpec {
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Strategy>, BuildError> {
        if let Some(env) = several()? {
            return Err(BuildError::new(format!(
                "strategy single_device in a process started as rank {} of {}: every process would train alone and write the same run directory",
                env.rank, env.world_size
            ))
            .hint("use strategy ddp (or auto) to train the processes together, or start one process"));
        }
        Ok(Box::new(SingleDevice))
    }
}

impl StrategySpec for AutoStrategySpec {
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Strategy>, BuildError> {
        match several()? {
            Some(env) => Ok(Box::new(DdpSpec::default().connect(&env, ctx)?)),
            None => Ok(Box::new(SingleDevice)),
        }
    }
}
