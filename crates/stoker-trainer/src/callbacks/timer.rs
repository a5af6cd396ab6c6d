//! `Timer`: epoch and batch times, and a wall-clock budget. The loop adds one for `max_time`
//! (without the times), as Lightning does.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use stoker::duration::WallTime;
use stoker::prelude::*;

/// Logs each epoch's duration (time_epoch_s) and mean batch time (time_batch_ms), and stops training once the total training time reaches duration.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(callback, name = "Timer")]
pub struct TimerSpec {
    /// The budget: "DD:HH:MM:SS", "HH:MM:SS", "MM:SS" or seconds; none for timing only.
    #[serde(default)]
    pub duration: Option<WallTime>,
    /// Check the budget after every `step` or only at epoch ends (`epoch`).
    #[serde(default = "default_interval")]
    pub interval: String,
}

fn default_interval() -> String {
    "step".into()
}

/// The built callback. The budget is checked against the loop's training time
/// ([`HookContext::elapsed`], which a resume carries on).
pub struct Timer {
    spec: TimerSpec,
    /// The stop reason (`max_time reached`); `None` for a configured Timer, whose reason names
    /// its budget.
    reason: Option<&'static str>,
    /// Whether it logs the epoch and batch times.
    log_times: bool,
    per_step: bool,
    epoch_started: Option<Instant>,
    batches: usize,
}

impl Timer {
    /// The timer of `trainer.args.max_time`: it checks the budget after every step and logs
    /// nothing.
    pub fn max_time(budget: WallTime) -> Self {
        Timer {
            spec: TimerSpec {
                duration: Some(budget),
                interval: default_interval(),
            },
            reason: Some("max_time reached"),
            log_times: false,
            per_step: true,
            epoch_started: None,
            batches: 0,
        }
    }

    fn check_budget(&self, ctx: &mut HookContext<'_>) {
        if let Some(budget) = self.spec.duration
            && ctx.elapsed >= budget.0.as_secs_f64()
        {
            ctx.control.stop(match self.reason {
                Some(reason) => reason.to_string(),
                None => format!("Timer: the time budget of {budget} is spent"),
            });
        }
    }
}

impl Callback for Timer {
    fn logs(&self, name: &str) -> bool {
        matches!(name, "time_epoch_s" | "time_batch_ms")
    }

    fn on_fit_start(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        // A resumed run whose budget is already spent trains no further.
        self.check_budget(ctx);
        Ok(())
    }

    fn on_train_epoch_start(&mut self, _ctx: &mut HookContext<'_>) -> Result<()> {
        self.epoch_started = Some(Instant::now());
        self.batches = 0;
        Ok(())
    }

    fn on_train_batch_end(
        &mut self,
        ctx: &mut HookContext<'_>,
        _step: &StepView<'_>,
        _stepped: bool,
    ) -> Result<()> {
        self.batches += 1;
        if self.per_step {
            self.check_budget(ctx);
        }
        Ok(())
    }

    fn on_train_epoch_end(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        if let Some(started) = self.epoch_started.take()
            && self.log_times
        {
            let seconds = started.elapsed().as_secs_f64();
            ctx.control.log("time_epoch_s", seconds);
            if self.batches > 0 {
                ctx.control
                    .log("time_batch_ms", 1000.0 * seconds / self.batches as f64);
            }
        }
        self.check_budget(ctx);
        Ok(())
    }
}

impl CallbackSpec for TimerSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn Callback>, BuildError> {
        let per_step = match self.interval.as_str() {
            "step" => true,
            "epoch" => false,
            other => {
                return Err(BuildError::at(
                    "interval",
                    format!("`{other}` is neither `step` nor `epoch`"),
                ));
            }
        };
        Ok(Box::new(Timer {
            spec: self.clone(),
            reason: None,
            log_times: true,
            per_step,
            epoch_started: None,
            batches: 0,
        }))
    }
}
