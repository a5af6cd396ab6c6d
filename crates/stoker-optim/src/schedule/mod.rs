//! Learning-rate schedulers. Every schedule but `plateau` is a [`Curve`]: the rate as a pure
//! function of how many times it has advanced, per optimizer step or per epoch ([`Interval`]);
//! [`Scheduled`] advances it and saves the count in checkpoints.

pub mod curves;
pub mod plateau;
pub mod warmup;

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

impl Interval {
    /// The planned length of training in this unit, if known.
    pub fn length(self, horizon: &Horizon) -> Option<usize> {
        match self {
            Interval::Step => horizon.total_steps,
            Interval::Epoch => horizon.epochs,
        }
    }
}

/// `explicit`, else the run's length in `interval` units, else an error naming `arg`.
pub fn length_or_horizon(
    explicit: Option<usize>,
    interval: Interval,
    ctx: &BuildContext,
    arg: &str,
) -> Result<usize, BuildError> {
    let length = match explicit {
        Some(n) => n,
        None => interval.length(&ctx.horizon()?).ok_or_else(|| {
            BuildError::at(
                arg,
                format!(
                    "the run has no {} limit to take it from",
                    if interval == Interval::Step {
                        "step"
                    } else {
                        "epoch"
                    }
                ),
            )
            .hint(format!("set {arg}"))
        })?,
    };
    if length == 0 {
        return Err(BuildError::at(arg, "must be at least 1"));
    }
    Ok(length)
}

pub(crate) fn step_interval() -> Interval {
    Interval::Step
}

/// A schedule that is a pure function of how many times it has advanced.
pub trait Curve: Send + Sync {
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

    fn on_epoch_end(&mut self, _metrics: &BTreeMap<String, f64>) -> Result<()> {
        if self.interval == Interval::Epoch {
            self.t += 1;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::curves::Cosine;
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
        s.on_epoch_end(&BTreeMap::new()).unwrap();
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
