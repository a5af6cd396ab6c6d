//! Learning-rate schedulers: `constant` and `cosine`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stoker::prelude::*;

/// When a schedule advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    /// After every optimizer step.
    Step,
    /// At the end of every epoch (Lightning's default).
    #[default]
    Epoch,
}

/// A schedule that is a pure function of how many times it has advanced.
pub trait Curve: Send {
    /// The learning rate after `t` advances.
    fn at(&self, t: usize) -> f64;
}

/// A [`Curve`] advanced per step or per epoch, with its count as its whole state.
pub struct Scheduled<C: Curve> {
    curve: C,
    interval: Interval,
    t: usize,
}

impl<C: Curve> Scheduled<C> {
    /// Wraps a curve.
    pub fn new(curve: C, interval: Interval) -> Self {
        Scheduled {
            curve,
            interval,
            t: 0,
        }
    }
}

impl<C: Curve> LrScheduler for Scheduled<C> {
    fn lr(&self) -> f64 {
        self.curve.at(self.t)
    }

    fn on_optimizer_step(&mut self) {
        if self.interval == Interval::Step {
            self.t += 1;
        }
    }

    fn on_epoch_end(&mut self, _metrics: &BTreeMap<String, f64>) {
        if self.interval == Interval::Epoch {
            self.t += 1;
        }
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "t": self.t })
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        self.t = state
            .get("t")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| StokerError::msg(format!("scheduler state {state} has no count `t`")))?
            as usize;
        Ok(())
    }
}

/// The optimizer's learning rate, unchanged.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(scheduler, name = "constant")]
pub struct ConstantSpec {}

struct Constant(f64);

impl Curve for Constant {
    fn at(&self, _t: usize) -> f64 {
        self.0
    }
}

impl SchedulerSpec for ConstantSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn LrScheduler>, BuildError> {
        Ok(Box::new(Scheduled::new(
            Constant(ctx.base_lr()?),
            Interval::Epoch,
        )))
    }
}

/// Cosine annealing from the optimizer's learning rate to eta_min over t_max steps or epochs, as torch.optim.lr_scheduler.CosineAnnealingLR.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(scheduler, name = "cosine")]
pub struct CosineSpec {
    /// Length of the half cosine, in `interval` units; the whole run (max_epochs or all steps) when not given.
    #[serde(default)]
    pub t_max: Option<usize>,
    /// The final learning rate.
    #[serde(default)]
    pub eta_min: f64,
    /// Advance per `step` or per `epoch`.
    #[serde(default)]
    pub interval: Interval,
}

/// lr(t) = eta_min + (base - eta_min) (1 + cos(pi t / t_max)) / 2.
pub struct Cosine {
    base: f64,
    eta_min: f64,
    t_max: usize,
}

impl Curve for Cosine {
    fn at(&self, t: usize) -> f64 {
        let phase = std::f64::consts::PI * t as f64 / self.t_max as f64;
        self.eta_min + (self.base - self.eta_min) * (1.0 + phase.cos()) / 2.0
    }
}

impl SchedulerSpec for CosineSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn LrScheduler>, BuildError> {
        let base = ctx.base_lr()?;
        let horizon = ctx.horizon()?;
        let t_max = match (self.t_max, self.interval) {
            (Some(t), _) => t,
            (None, Interval::Epoch) => horizon.epochs.ok_or_else(|| {
                BuildError::at("t_max", "the run has no epoch limit to anneal over")
                    .hint("set t_max")
            })?,
            (None, Interval::Step) => horizon.total_steps.ok_or_else(|| {
                BuildError::at("t_max", "the run has no step limit to anneal over")
                    .hint("set t_max")
            })?,
        };
        if t_max == 0 {
            return Err(BuildError::at("t_max", "must be at least 1"));
        }
        if !(self.eta_min.is_finite() && self.eta_min >= 0.0) {
            return Err(BuildError::at("eta_min", "must be >= 0"));
        }
        Ok(Box::new(Scheduled::new(
            Cosine {
                base,
                eta_min: self.eta_min,
                t_max,
            },
            self.interval,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_matches_torch_closed_form() {
        // Values printed by torch 2.11: CosineAnnealingLR(SGD(lr=0.1), T_max=10, eta_min=0.001),
        // param_groups[0]["lr"] after 0, 2, 5 and 10 scheduler steps.
        let c = Cosine {
            base: 0.1,
            eta_min: 0.001,
            t_max: 10,
        };
        let expected = [(0, 0.1), (2, 0.0905463412215599), (5, 0.0505), (10, 0.001)];
        for (t, lr) in expected {
            assert!((c.at(t) - lr).abs() < 1e-15, "t={t}: {} vs {lr}", c.at(t));
        }
    }

    #[test]
    fn scheduled_advances_on_its_interval_and_restores() {
        let mut s = Scheduled::new(
            Cosine {
                base: 1.0,
                eta_min: 0.0,
                t_max: 4,
            },
            Interval::Step,
        );
        s.on_epoch_end(&BTreeMap::new());
        assert_eq!(s.lr(), 1.0);
        s.on_optimizer_step();
        s.on_optimizer_step();
        assert!((s.lr() - 0.5).abs() < 1e-12);
        let state = s.state();
        let mut t = Scheduled::new(
            Cosine {
                base: 1.0,
                eta_min: 0.0,
                t_max: 4,
            },
            Interval::Step,
        );
        t.load_state(&state).unwrap();
        assert_eq!(t.lr(), s.lr());
    }
}
