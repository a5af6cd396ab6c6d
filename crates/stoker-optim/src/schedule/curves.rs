//! The schedules that are pure functions of their count: `constant`, `step`, `multistep`,
//! `exponential`, `cosine`, `cosine_restarts`, `onecycle`, `polynomial`, `warmup_cosine`,
//! `warmup_linear`, `noam`. Each is checked against `torch.optim.lr_scheduler` or the
//! `transformers` schedule functions (`tests/schedulers.rs`).

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};
use stoker::prelude::*;

use super::{Curve, Interval, Scheduled, length_or_horizon, step_interval};

fn boxed<C: Curve + 'static>(curve: C, interval: Interval) -> Box<dyn LrScheduler> {
    Box::new(Scheduled::new(curve, interval))
}

fn positive(arg: &str, value: f64) -> std::result::Result<(), BuildError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(BuildError::at(arg, format!("{value} must be positive")))
    }
}

fn ten_percent() -> f64 {
    0.1
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
        Ok(boxed(Constant(ctx.base_lr()?), Interval::Epoch))
    }
}

/// Multiplies the rate by gamma every step_size steps or epochs, as torch.optim.lr_scheduler.StepLR.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(scheduler, name = "step")]
pub struct StepSpec {
    /// Period of the decay, in `interval` units.
    pub step_size: usize,
    /// Factor of each decay.
    #[serde(default = "ten_percent")]
    pub gamma: f64,
    /// Advance per `step` or per `epoch`.
    #[serde(default)]
    pub interval: Interval,
}

struct StepDecay {
    base: f64,
    step_size: usize,
    gamma: f64,
}

impl Curve for StepDecay {
    fn at(&self, t: usize) -> f64 {
        self.base * self.gamma.powi((t / self.step_size) as i32)
    }
}

impl SchedulerSpec for StepSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn LrScheduler>, BuildError> {
        if self.step_size == 0 {
            return Err(BuildError::at("step_size", "must be at least 1"));
        }
        positive("gamma", self.gamma)?;
        Ok(boxed(
            StepDecay {
                base: ctx.base_lr()?,
                step_size: self.step_size,
                gamma: self.gamma,
            },
            self.interval,
        ))
    }
}

/// Multiplies the rate by gamma at each milestone, as torch.optim.lr_scheduler.MultiStepLR.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(scheduler, name = "multistep")]
pub struct MultiStepSpec {
    /// Counts (in `interval` units) at which the rate decays, increasing.
    pub milestones: Vec<usize>,
    /// Factor of each decay.
    #[serde(default = "ten_percent")]
    pub gamma: f64,
    /// Advance per `step` or per `epoch`.
    #[serde(default)]
    pub interval: Interval,
}

struct MultiStep {
    base: f64,
    milestones: Vec<usize>,
    gamma: f64,
}

impl Curve for MultiStep {
    fn at(&self, t: usize) -> f64 {
        let passed = self.milestones.iter().filter(|&&m| m <= t).count();
        self.base * self.gamma.powi(passed as i32)
    }
}

impl SchedulerSpec for MultiStepSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn LrScheduler>, BuildError> {
        if self.milestones.windows(2).any(|w| w[0] >= w[1]) {
            return Err(BuildError::at("milestones", "must increase"));
        }
        positive("gamma", self.gamma)?;
        Ok(boxed(
            MultiStep {
                base: ctx.base_lr()?,
                milestones: self.milestones.clone(),
                gamma: self.gamma,
            },
            self.interval,
        ))
    }
}

/// Multiplies the rate by gamma at every step or epoch, as torch.optim.lr_scheduler.ExponentialLR.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(scheduler, name = "exponential")]
pub struct ExponentialSpec {
    /// Factor per advance.
    pub gamma: f64,
    /// Advance per `step` or per `epoch`.
    #[serde(default)]
    pub interval: Interval,
}

struct Exponential {
    base: f64,
    gamma: f64,
}

impl Curve for Exponential {
    fn at(&self, t: usize) -> f64 {
        self.base * self.gamma.powi(t as i32)
    }
}

impl SchedulerSpec for ExponentialSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn LrScheduler>, BuildError> {
        positive("gamma", self.gamma)?;
        Ok(boxed(
            Exponential {
                base: ctx.base_lr()?,
                gamma: self.gamma,
            },
            self.interval,
        ))
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
    /// The starting rate.
    pub base: f64,
    /// The final rate.
    pub eta_min: f64,
    /// Length of the half cosine.
    pub t_max: usize,
}

impl Curve for Cosine {
    fn at(&self, t: usize) -> f64 {
        let phase = PI * t as f64 / self.t_max as f64;
        self.eta_min + (self.base - self.eta_min) * (1.0 + phase.cos()) / 2.0
    }
}

impl SchedulerSpec for CosineSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn LrScheduler>, BuildError> {
        let t_max = length_or_horizon(self.t_max, self.interval, ctx, "t_max")?;
        if !(self.eta_min.is_finite() && self.eta_min >= 0.0) {
            return Err(BuildError::at("eta_min", "must be >= 0"));
        }
        Ok(boxed(
            Cosine {
                base: ctx.base_lr()?,
                eta_min: self.eta_min,
                t_max,
            },
            self.interval,
        ))
    }
}

/// Cosine annealing with warm restarts every t_0 steps or epochs, each period t_mult times longer, as torch.optim.lr_scheduler.CosineAnnealingWarmRestarts.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(scheduler, name = "cosine_restarts")]
pub struct CosineRestartsSpec {
    /// Length of the first period.
    pub t_0: usize,
    /// Growth factor of the periods.
    #[serde(default = "one_usize")]
    pub t_mult: usize,
    /// The lowest rate.
    #[serde(default)]
    pub eta_min: f64,
    /// Advance per `step` or per `epoch`.
    #[serde(default)]
    pub interval: Interval,
}

fn one_usize() -> usize {
    1
}

struct CosineRestarts {
    base: f64,
    t_0: usize,
    t_mult: usize,
    eta_min: f64,
}

impl Curve for CosineRestarts {
    fn at(&self, t: usize) -> f64 {
        let (mut t_cur, mut t_i) = (t, self.t_0);
        while t_cur >= t_i {
            t_cur -= t_i;
            t_i *= self.t_mult;
        }
        self.eta_min
            + (self.base - self.eta_min) * (1.0 + (PI * t_cur as f64 / t_i as f64).cos()) / 2.0
    }
}

impl SchedulerSpec for CosineRestartsSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn LrScheduler>, BuildError> {
        if self.t_0 == 0 {
            return Err(BuildError::at("t_0", "must be at least 1"));
        }
        if self.t_mult == 0 {
            return Err(BuildError::at("t_mult", "must be at least 1"));
        }
        Ok(boxed(
            CosineRestarts {
                base: ctx.base_lr()?,
                t_0: self.t_0,
                t_mult: self.t_mult,
                eta_min: self.eta_min,
            },
            self.interval,
        ))
    }
}

/// How onecycle interpolates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anneal {
    /// Half cosines.
    #[default]
    Cos,
    /// Straight lines.
    Linear,
}

/// The one-cycle policy, as torch.optim.lr_scheduler.OneCycleLR (the rate only: momentum is not cycled): from max_lr / div_factor up to max_lr over pct_start of the steps, then down to max_lr / (div_factor * final_div_factor).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(scheduler, name = "onecycle")]
pub struct OneCycleSpec {
    /// The peak rate; the optimizer's when not given.
    #[serde(default)]
    pub max_lr: Option<f64>,
    /// Length of the cycle; the whole run when not given.
    #[serde(default)]
    pub total_steps: Option<usize>,
    /// Fraction of the cycle spent rising.
    #[serde(default = "default_pct_start")]
    pub pct_start: f64,
    /// `cos` or `linear`.
    #[serde(default)]
    pub anneal_strategy: Anneal,
    /// initial rate = max_lr / div_factor.
    #[serde(default = "default_div_factor")]
    pub div_factor: f64,
    /// final rate = initial rate / final_div_factor.
    #[serde(default = "default_final_div_factor")]
    pub final_div_factor: f64,
    /// Rise, fall back to the initial rate, then anneal to the final one.
    #[serde(default)]
    pub three_phase: bool,
    /// Advance per `step` (the usual) or per `epoch`.
    #[serde(default = "step_interval")]
    pub interval: Interval,
}

fn default_pct_start() -> f64 {
    0.3
}
fn default_div_factor() -> f64 {
    25.0
}
fn default_final_div_factor() -> f64 {
    1e4
}

struct OneCycle {
    /// (end step, start rate, end rate) of each phase.
    phases: Vec<(f64, f64, f64)>,
    anneal: Anneal,
}

impl Curve for OneCycle {
    fn at(&self, t: usize) -> f64 {
        let step = t as f64;
        let mut start_step = 0.0;
        for (i, &(end_step, start, end)) in self.phases.iter().enumerate() {
            if step <= end_step || i == self.phases.len() - 1 {
                let pct = (step - start_step) / (end_step - start_step);
                return match self.anneal {
                    Anneal::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
                    Anneal::Linear => (end - start) * pct + start,
                };
            }
            start_step = end_step;
        }
        unreachable!("the last phase takes every step")
    }
}

impl SchedulerSpec for OneCycleSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn LrScheduler>, BuildError> {
        let total = length_or_horizon(self.total_steps, self.interval, ctx, "total_steps")? as f64;
        let max_lr = match self.max_lr {
            Some(v) => v,
            None => ctx.base_lr()?,
        };
        positive("max_lr", max_lr)?;
        positive("div_factor", self.div_factor)?;
        positive("final_div_factor", self.final_div_factor)?;
        if !(self.pct_start > 0.0 && self.pct_start < 1.0) {
            return Err(BuildError::at("pct_start", "must be in (0, 1)"));
        }
        let initial = max_lr / self.div_factor;
        let min = initial / self.final_div_factor;
        let phases = if self.three_phase {
            vec![
                (self.pct_start * total - 1.0, initial, max_lr),
                (2.0 * self.pct_start * total - 2.0, max_lr, initial),
                (total - 1.0, initial, min),
            ]
        } else {
            vec![
                (self.pct_start * total - 1.0, initial, max_lr),
                (total - 1.0, max_lr, min),
            ]
        };
        Ok(boxed(
            OneCycle {
                phases,
                anneal: self.anneal_strategy,
            },
            self.interval,
        ))
    }
}

/// Polynomial decay to end_lr over total_iters, as torch.optim.lr_scheduler.PolynomialLR (end_lr 0) and transformers' polynomial decay (end_lr > 0).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(scheduler, name = "polynomial")]
pub struct PolynomialSpec {
    /// Length of the decay; the whole run when not given.
    #[serde(default)]
    pub total_iters: Option<usize>,
    /// Power of the polynomial.
    #[serde(default = "one_f64")]
    pub power: f64,
    /// The rate at and after the end.
    #[serde(default)]
    pub end_lr: f64,
    /// Advance per `step` or per `epoch`.
    #[serde(default)]
    pub interval: Interval,
}

fn one_f64() -> f64 {
    1.0
}

struct Polynomial {
    base: f64,
    total: usize,
    power: f64,
    end: f64,
}

impl Curve for Polynomial {
    fn at(&self, t: usize) -> f64 {
        let t = t.min(self.total) as f64;
        (self.base - self.end) * (1.0 - t / self.total as f64).powf(self.power) + self.end
    }
}

impl SchedulerSpec for PolynomialSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn LrScheduler>, BuildError> {
        let total = length_or_horizon(self.total_iters, self.interval, ctx, "total_iters")?;
        let base = ctx.base_lr()?;
        if !(self.end_lr >= 0.0 && self.end_lr <= base) {
            return Err(BuildError::at(
                "end_lr",
                format!("must be in [0, {base}] (the optimizer's rate)"),
            ));
        }
        positive("power", self.power)?;
        Ok(boxed(
            Polynomial {
                base,
                total,
                power: self.power,
                end: self.end_lr,
            },
            self.interval,
        ))
    }
}

/// Warm-up length from `warmup_steps` or `warmup_ratio` of `total`.
pub fn warmup_length(
    steps: Option<usize>,
    ratio: Option<f64>,
    total: usize,
) -> std::result::Result<usize, BuildError> {
    match (steps, ratio) {
        (Some(_), Some(_)) => Err(BuildError::at(
            "warmup_ratio",
            "warmup_steps and warmup_ratio are both set",
        )
        .hint("choose one")),
        (Some(s), None) => Ok(s),
        (None, Some(r)) if (0.0..=1.0).contains(&r) => Ok((r * total as f64).ceil() as usize),
        (None, Some(r)) => Err(BuildError::at(
            "warmup_ratio",
            format!("{r} is not a fraction in [0, 1]"),
        )),
        (None, None) => Ok(0),
    }
}

/// Linear warm-up from 0 over warmup_steps (or warmup_ratio of the run), then a half cosine to 0 at total_steps, as transformers' get_cosine_schedule_with_warmup.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(scheduler, name = "warmup_cosine")]
pub struct WarmupCosineSpec {
    /// Warm-up length.
    #[serde(default)]
    pub warmup_steps: Option<usize>,
    /// Warm-up length as a fraction of total_steps (rounded up).
    #[serde(default)]
    pub warmup_ratio: Option<f64>,
    /// End of the schedule; the whole run when not given.
    #[serde(default)]
    pub total_steps: Option<usize>,
    /// Number of cosine half-waves after the warm-up, times 2 (0.5: down to 0 once).
    #[serde(default = "half")]
    pub num_cycles: f64,
    /// Advance per `step` (the usual) or per `epoch`.
    #[serde(default = "step_interval")]
    pub interval: Interval,
}

fn half() -> f64 {
    0.5
}

struct WarmupCosine {
    base: f64,
    warmup: usize,
    total: usize,
    cycles: f64,
}

impl Curve for WarmupCosine {
    fn at(&self, t: usize) -> f64 {
        if t < self.warmup {
            return self.base * t as f64 / self.warmup.max(1) as f64;
        }
        let progress = (t - self.warmup) as f64 / (self.total - self.warmup).max(1) as f64;
        self.base * (0.5 * (1.0 + (PI * self.cycles * 2.0 * progress).cos())).max(0.0)
    }
}

impl SchedulerSpec for WarmupCosineSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn LrScheduler>, BuildError> {
        let total = length_or_horizon(self.total_steps, self.interval, ctx, "total_steps")?;
        let warmup = warmup_length(self.warmup_steps, self.warmup_ratio, total)?;
        if warmup > total {
            return Err(BuildError::at(
                "warmup_steps",
                format!("{warmup} is longer than the {total} of the whole schedule"),
            )
            .hint("lower warmup_steps, or use warmup_ratio (the run is shorter with limit_train_batches or overfit_batches)"));
        }
        Ok(boxed(
            WarmupCosine {
                base: ctx.base_lr()?,
                warmup,
                total,
                cycles: self.num_cycles,
            },
            self.interval,
        ))
    }
}

/// Linear warm-up from 0 over warmup_steps (or warmup_ratio), then a linear decay to 0 at total_steps, as transformers' get_linear_schedule_with_warmup.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(scheduler, name = "warmup_linear")]
pub struct WarmupLinearSpec {
    /// Warm-up length.
    #[serde(default)]
    pub warmup_steps: Option<usize>,
    /// Warm-up length as a fraction of total_steps (rounded up).
    #[serde(default)]
    pub warmup_ratio: Option<f64>,
    /// End of the schedule; the whole run when not given.
    #[serde(default)]
    pub total_steps: Option<usize>,
    /// Advance per `step` (the usual) or per `epoch`.
    #[serde(default = "step_interval")]
    pub interval: Interval,
}

struct WarmupLinear {
    base: f64,
    warmup: usize,
    total: usize,
}

impl Curve for WarmupLinear {
    fn at(&self, t: usize) -> f64 {
        if t < self.warmup {
            return self.base * t as f64 / self.warmup.max(1) as f64;
        }
        let left = self.total as f64 - t as f64;
        self.base * (left / (self.total - self.warmup).max(1) as f64).max(0.0)
    }
}

impl SchedulerSpec for WarmupLinearSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn LrScheduler>, BuildError> {
        let total = length_or_horizon(self.total_steps, self.interval, ctx, "total_steps")?;
        let warmup = warmup_length(self.warmup_steps, self.warmup_ratio, total)?;
        if warmup > total {
            return Err(BuildError::at(
                "warmup_steps",
                format!("{warmup} is longer than the {total} of the whole schedule"),
            )
            .hint("lower warmup_steps, or use warmup_ratio (the run is shorter with limit_train_batches or overfit_batches)"));
        }
        Ok(boxed(
            WarmupLinear {
                base: ctx.base_lr()?,
                warmup,
                total,
            },
            self.interval,
        ))
    }
}

/// The Transformer's schedule (Vaswani et al., "Attention Is All You Need"): the optimizer's rate times factor * d_model^-0.5 * min(s^-0.5, s * warmup_steps^-1.5), s = max(step, 1).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(scheduler, name = "noam")]
pub struct NoamSpec {
    /// The model width.
    pub d_model: usize,
    /// Steps of the rising phase.
    #[serde(default = "default_noam_warmup")]
    pub warmup_steps: usize,
    /// Overall scale.
    #[serde(default = "one_f64")]
    pub factor: f64,
    /// Advance per `step` (the usual) or per `epoch`.
    #[serde(default = "step_interval")]
    pub interval: Interval,
}

fn default_noam_warmup() -> usize {
    4000
}

struct Noam {
    base: f64,
    d_model: f64,
    warmup: f64,
    factor: f64,
}

impl Curve for Noam {
    fn at(&self, t: usize) -> f64 {
        let s = t.max(1) as f64;
        self.base
            * self.factor
            * self.d_model.powf(-0.5)
            * s.powf(-0.5).min(s * self.warmup.powf(-1.5))
    }
}

impl SchedulerSpec for NoamSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn LrScheduler>, BuildError> {
        if self.d_model == 0 || self.warmup_steps == 0 {
            return Err(BuildError::new(
                "d_model and warmup_steps must be at least 1",
            ));
        }
        positive("factor", self.factor)?;
        Ok(boxed(
            Noam {
                base: ctx.base_lr()?,
                d_model: self.d_model as f64,
                warmup: self.warmup_steps as f64,
                factor: self.factor,
            },
            self.interval,
        ))
    }
}
