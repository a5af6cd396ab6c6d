//! `LearningRateMonitor`: logs the learning rate.

use serde::{Deserialize, Serialize};
use stoker::prelude::*;

/// When the learning rate is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoggingInterval {
    /// Every log_every_n_steps optimizer steps.
    Step,
    /// At the start of every epoch.
    #[default]
    Epoch,
}

/// Logs the learning rate as `lr-<optimizer>` (e.g. lr-adam) every epoch or every log_every_n_steps steps.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(callback, name = "LearningRateMonitor")]
pub struct LearningRateMonitorSpec {
    /// `step` or `epoch`.
    #[serde(default)]
    pub logging_interval: LoggingInterval,
}

/// The built callback.
pub struct LearningRateMonitor {
    interval: LoggingInterval,
}

impl Callback for LearningRateMonitor {
    fn logs(&self, name: &str) -> bool {
        name.starts_with("lr-")
    }

    fn on_train_epoch_start(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        if self.interval == LoggingInterval::Epoch {
            let name = format!("lr-{}", ctx.optimizer);
            ctx.control.log(name, ctx.lr);
        }
        Ok(())
    }

    fn on_before_optimizer_step(
        &mut self,
        ctx: &mut HookContext<'_>,
        _grads: &stoker::burn::optim::GradientsParams,
    ) -> Result<()> {
        // As Lightning: logged at the steps taken so far, the rate the coming step uses.
        if self.interval == LoggingInterval::Step
            && ctx
                .position
                .global_step
                .is_multiple_of(ctx.log_every_n_steps)
        {
            let name = format!("lr-{}", ctx.optimizer);
            ctx.control.log(name, ctx.lr);
        }
        Ok(())
    }
}

impl CallbackSpec for LearningRateMonitorSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn Callback>, BuildError> {
        Ok(Box::new(LearningRateMonitor {
            interval: self.logging_interval,
        }))
    }
}
