//! `warmup`: a linear warm-up in front of any other schedule.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stoker::prelude::*;
use stoker::registry::{self, AnySpec, Kind};

use super::curves::warmup_length;
use super::{Interval, step_interval};

/// A schedule named inside another one: `{name: cosine, args: {eta_min: 1.0e-5}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NestedSchedule {
    /// The scheduler's name.
    pub name: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Option<serde_yaml::Value>,
}

/// Linear warm-up from start_factor x the rate to the rate over warmup_steps (or warmup_ratio of the run), then `after` (constant when not given) over the rest, as torch's SequentialLR(LinearLR, after).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(scheduler, name = "warmup")]
pub struct WarmupSpec {
    /// Warm-up length.
    #[serde(default)]
    pub warmup_steps: Option<usize>,
    /// Warm-up length as a fraction of the run (rounded up).
    #[serde(default)]
    pub warmup_ratio: Option<f64>,
    /// The rate at the start, as a fraction of the optimizer's.
    #[serde(default)]
    pub start_factor: f64,
    /// The schedule after the warm-up, `{name, args}`; it runs over what is left of the run, in the warm-up's interval unless its args set one.
    #[serde(default)]
    pub after: Option<NestedSchedule>,
    /// Advance per `step` (the usual) or per `epoch`.
    #[serde(default = "step_interval")]
    pub interval: Interval,
}

/// The built scheduler.
pub struct Warmup {
    base: f64,
    start: f64,
    warmup: usize,
    interval: Interval,
    t: usize,
    after: Box<dyn LrScheduler>,
}

impl LrScheduler for Warmup {
    fn lr(&self) -> f64 {
        if self.t < self.warmup {
            self.base * (self.start + (1.0 - self.start) * self.t as f64 / self.warmup as f64)
        } else {
            self.after.lr()
        }
    }

    fn on_optimizer_step(&mut self) {
        if self.t >= self.warmup {
            self.after.on_optimizer_step();
        } else if self.interval == Interval::Step {
            self.t += 1;
        }
    }

    fn on_epoch_end(&mut self, metrics: &BTreeMap<String, f64>) -> Result<()> {
        if self.t >= self.warmup {
            self.after.on_epoch_end(metrics)
        } else {
            if self.interval == Interval::Epoch {
                self.t += 1;
            }
            Ok(())
        }
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "t": self.t, "after": self.after.state() })
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        self.t = state["t"]
            .as_u64()
            .ok_or_else(|| StokerError::msg(format!("warmup state {state} has no count")))?
            as usize;
        self.after.load_state(&state["after"])
    }
}

impl WarmupSpec {
    fn build_after(
        &self,
        ctx: &BuildContext,
        warmup: usize,
    ) -> std::result::Result<Box<dyn LrScheduler>, BuildError> {
        let nested = self.after.clone().unwrap_or(NestedSchedule {
            name: "constant".into(),
            args: None,
        });
        let takes_interval = registry::find(Kind::Scheduler, &nested.name)
            .is_some_and(|r| (r.args)().iter().any(|a| a.name == "interval"));
        let mut args = match nested.args.clone() {
            None | Some(serde_yaml::Value::Null) => {
                Some(serde_yaml::Value::Mapping(serde_yaml::Mapping::new()))
            }
            other => other,
        };
        if takes_interval
            && let Some(serde_yaml::Value::Mapping(m)) = args.as_mut()
            && !m.contains_key("interval")
        {
            let interval =
                serde_yaml::to_value(self.interval).map_err(|e| BuildError::new(e.to_string()))?;
            m.insert("interval".into(), interval);
        }
        let AnySpec::Scheduler(spec) =
            registry::parse_nested(Kind::Scheduler, &nested.name, args, "after")?.spec
        else {
            return Err(BuildError::at(
                "after.name",
                format!("`{}` is not a scheduler", nested.name),
            ));
        };
        // What follows the warm-up runs over the rest of the run; over one step (or epoch) when
        // the warm-up fills a run that `limit_train_batches` or `overfit_batches` shortened.
        let mut rest = ctx.clone();
        if let Some(h) = rest.horizon.as_mut() {
            let after = |length: usize| length.saturating_sub(warmup).max(1);
            match self.interval {
                Interval::Step => h.total_steps = h.total_steps.map(after),
                Interval::Epoch => h.epochs = h.epochs.map(after),
            }
        }
        spec.build(&rest).map_err(|mut e| {
            e.arg = Some(match e.arg.take() {
                Some(arg) => format!("after.args.{arg}"),
                None => "after".into(),
            });
            e
        })
    }
}

impl SchedulerSpec for WarmupSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn LrScheduler>, BuildError> {
        let total = self.interval.length(&ctx.horizon()?);
        let warmup = match (self.warmup_ratio, total) {
            (Some(_), None) => {
                return Err(BuildError::at(
                    "warmup_ratio",
                    "the run has no length to take a ratio of",
                )
                .hint("set warmup_steps"));
            }
            (_, total) => warmup_length(self.warmup_steps, self.warmup_ratio, total.unwrap_or(0))?,
        };
        if warmup == 0 {
            return Err(BuildError::at("warmup_steps", "the warm-up is empty")
                .hint("set warmup_steps (or warmup_ratio) above 0"));
        }
        if !(0.0..=1.0).contains(&self.start_factor) {
            return Err(BuildError::at("start_factor", "must be in [0, 1]"));
        }
        let after = self.build_after(ctx, warmup)?;
        Ok(Box::new(Warmup {
            base: ctx.base_lr()?,
            start: self.start_factor,
            warmup,
            interval: self.interval,
            t: 0,
            after,
        }))
    }
}
