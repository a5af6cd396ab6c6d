//! `none`: no pruning (Optuna's `NopPruner`).

use serde::{Deserialize, Serialize};
use stoker::spec::PrunerSpec;
use stoker::sweep::{Pruner, Pruning, Study, Trial};
use stoker::{BuildError, Component};

/// No pruning: every trial trains to its end.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(pruner, name = "none")]
pub struct NoneSpec {}

impl PrunerSpec for NoneSpec {
    fn build(&self) -> Result<Box<dyn Pruner>, BuildError> {
        Ok(Box::new(NoPruning))
    }
}

/// Never prunes.
#[derive(Debug, Clone, Copy)]
pub struct NoPruning;

impl Pruner for NoPruning {
    fn prune(&mut self, _study: &Study<'_>, _trial: &Trial) -> Pruning {
        Pruning::default()
    }
}
