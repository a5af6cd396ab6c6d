//! The learning-rate finder (Lightning's `Tuner.lr_find`, `trainer.args.auto_lr_find`, and
//! `cargo xtask lr-find CONFIG`): a short training run whose learning rate grows at every
//! optimizer step from `min_lr` to `max_lr`, recording the smoothed loss, stopped once it
//! diverges; the suggestion is the rate where the loss falls fastest.
//!
//! The range test is a run of the experiment itself, assembled anew with the range schedule in
//! place of its scheduler and without validation, callbacks, loggers or checkpoints, in a
//! temporary directory. The training that follows is assembled from the config again with
//! `optimizer.args.lr` set to the suggestion: its initial weights are the ones the test started
//! from (the seed fixes them), which is what Lightning gets by restoring a checkpoint.
//! Lightning's rules, kept exactly: the rate of step k is `min_lr` for k = 0 and
//! `min_lr * (max_lr / min_lr) ^ ((k + 1) / num_training)` after (linear: the same fraction of
//! the way); the loss is smoothed as `avg = 0.98 avg + 0.02 loss`, divided by `1 - 0.98^(k + 2)`;
//! the test stops when that exceeds `early_stop_threshold` times the best so far (from the
//! second step on); the suggestion skips the first 10 and the last point and takes the steepest
//! descent of `torch.gradient(losses, spacing=[x])` over the finite losses, x being log10 of
//! the rates in exponential mode (see [`suggestion`] for why) and the rates in linear mode.

use std::path::Path;
use std::sync::{Arc, Mutex};

use stoker::batch::Batch;
use stoker::callback::{Callback, HookContext};
use stoker::error::Result;
use stoker::metric::StepView;
use stoker::schedule::LrScheduler;
use stoker::tuning::{LrFindArgs, LrFindMode};

use super::{Scratch, short_run_sets};
use crate::train::{RunError, TrainOptions};

/// Lightning's smoothing of the loss.
const BETA: f64 = 0.98;
/// Points left out of the suggestion at the start and at the end (Lightning's defaults).
const SKIP_BEGIN: usize = 10;
const SKIP_END: usize = 1;

/// The learning rates of the range test, one per optimizer step.
pub struct RangeSchedule {
    args: LrFindArgs,
    steps: usize,
}

impl RangeSchedule {
    /// The schedule of `args`, before its first step.
    pub fn new(args: LrFindArgs) -> Self {
        RangeSchedule { args, steps: 0 }
    }

    /// The rate of optimizer step `k` (Lightning's `_ExponentialLR` and `_LinearLR`).
    pub fn rate(&self, k: usize) -> f64 {
        let LrFindArgs { min_lr, max_lr, .. } = self.args;
        if k == 0 {
            return min_lr;
        }
        let r = (k + 1) as f64 / self.args.num_training as f64;
        match self.args.mode {
            LrFindMode::Exponential => min_lr * (max_lr / min_lr).powf(r),
            LrFindMode::Linear => min_lr + r * (max_lr - min_lr),
        }
    }
}

impl LrScheduler for RangeSchedule {
    fn lr(&self) -> f64 {
        self.rate(self.steps)
    }

    fn on_optimizer_step(&mut self) {
        self.steps += 1;
    }

    fn on_epoch_end(&mut self, _metrics: &std::collections::BTreeMap<String, f64>) -> Result<()> {
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "steps": self.steps })
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        self.steps = state["steps"].as_u64().unwrap_or(0) as usize;
        Ok(())
    }
}

/// What the range test recorded: per optimizer step, its rate, its loss and the smoothed loss.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Curve {
    /// The learning rate of each step.
    pub lrs: Vec<f64>,
    /// The loss of each step.
    pub losses: Vec<f64>,
    /// The smoothed loss of each step (what the suggestion reads).
    pub smoothed: Vec<f64>,
    /// Why the test stopped before `num_training` steps, if it did.
    pub stopped: Option<String>,
}

/// Smooths the losses as they come and decides when they diverged.
#[derive(Debug, Clone)]
pub struct Smoother {
    threshold: Option<f64>,
    average: f64,
    best: f64,
}

impl Smoother {
    /// A smoother stopping at `threshold` times the best smoothed loss.
    pub fn new(threshold: Option<f64>) -> Self {
        Smoother {
            threshold,
            average: 0.0,
            best: 0.0,
        }
    }

    /// Adds step `k`'s loss; returns the smoothed loss and whether the test must stop.
    pub fn add(&mut self, k: usize, loss: f64) -> (f64, bool) {
        let step = k as i32 + 1;
        self.average = BETA * self.average + (1.0 - BETA) * loss;
        let smoothed = self.average / (1.0 - BETA.powi(step + 1));
        let diverged = self
            .threshold
            .is_some_and(|t| step > 1 && smoothed > t * self.best);
        if smoothed < self.best || step == 1 {
            self.best = smoothed;
        }
        (smoothed, diverged)
    }
}

/// The index of the suggested rate: the steepest descent of the smoothed loss, as Lightning's
/// `_LRFinder.suggestion` computes it (in float32, as its tensors are), against the rate in
/// linear mode and against log10 of the rate in exponential mode. The latter is the fix of
/// Lightning's PR #21171 (issue #21141): Lightning 2.x differentiates against the rate in both
/// modes, so that on a curve sampled evenly in log10(lr) the noise of the first, tiny steps
/// (rates 1e-8 apart) wins and it suggests about 1e-7 whatever the curve.
pub fn suggestion(lrs: &[f64], losses: &[f64], mode: LrFindMode) -> Option<usize> {
    let end = losses.len().saturating_sub(SKIP_END);
    let kept: Vec<usize> = (SKIP_BEGIN..end)
        .filter(|&i| losses[i].is_finite())
        .collect();
    if kept.len() < 2 {
        return None;
    }
    let x: Vec<f32> = kept
        .iter()
        .map(|&i| match mode {
            LrFindMode::Exponential => (lrs[i] as f32).log10(),
            LrFindMode::Linear => lrs[i] as f32,
        })
        .collect();
    let y: Vec<f32> = kept.iter().map(|&i| losses[i] as f32).collect();
    let n = x.len();
    let mut gradient = vec![0f32; n];
    gradient[0] = (y[1] - y[0]) / (x[1] - x[0]);
    gradient[n - 1] = (y[n - 1] - y[n - 2]) / (x[n - 1] - x[n - 2]);
    for i in 1..n - 1 {
        // torch.gradient's second-order central difference on uneven spacing.
        let (dx1, dx2) = (x[i] - x[i - 1], x[i + 1] - x[i]);
        let a = -dx2 / (dx1 * (dx1 + dx2));
        let b = (dx2 - dx1) / (dx1 * dx2);
        let c = dx1 / (dx2 * (dx1 + dx2));
        gradient[i] = a * y[i - 1] + b * y[i] + c * y[i + 1];
    }
    let mut best = 0;
    for (i, g) in gradient.iter().enumerate() {
        // torch.argmin: the first minimum; a NaN wins as torch's does.
        if g.is_nan() {
            best = i;
            break;
        }
        if *g < gradient[best] {
            best = i;
        }
    }
    Some(kept[best])
}

/// The callback that records the curve during the range test and stops it on divergence.
struct Recorder {
    curve: Arc<Mutex<Curve>>,
    smoother: Smoother,
    rate: f64,
}

impl Callback for Recorder {
    fn on_train_batch_start(&mut self, ctx: &mut HookContext<'_>, _batch: &Batch) -> Result<()> {
        self.rate = ctx.lr;
        Ok(())
    }

    fn on_train_batch_end(
        &mut self,
        ctx: &mut HookContext<'_>,
        step: &StepView<'_>,
        stepped: bool,
    ) -> Result<()> {
        if !stepped {
            return Ok(());
        }
        let loss = step.loss.total.clone().into_scalar::<f64>();
        let mut curve = self.curve.lock().expect("the curve's lock");
        let (smoothed, diverged) = self.smoother.add(curve.lrs.len(), loss);
        curve.lrs.push(self.rate);
        curve.losses.push(loss);
        curve.smoothed.push(smoothed);
        let stop = if !loss.is_finite() {
            Some(format!(
                "the loss became {loss} at learning rate {:.3e}",
                self.rate
            ))
        } else if diverged {
            Some(format!(
                "the smoothed loss {smoothed:.4} passed {} times the best at learning rate {:.3e}",
                self.smoother.threshold.unwrap_or_default(),
                self.rate
            ))
        } else {
            None
        };
        if let Some(reason) = stop {
            curve.stopped = Some(reason.clone());
            ctx.control.stop(reason);
        }
        Ok(())
    }
}

/// What the finder found.
#[derive(Debug, Clone)]
pub struct Found {
    /// The arguments it ran with.
    pub args: LrFindArgs,
    /// The recorded curve.
    pub curve: Curve,
    /// The index of the suggested rate in the curve, if there were enough points.
    pub suggestion: Option<usize>,
}

impl Found {
    /// The suggested learning rate.
    pub fn lr(&self) -> Option<f64> {
        self.suggestion.map(|i| self.curve.lrs[i])
    }

    /// `lr_find.csv`: step, lr, loss, smoothed_loss and whether the row is the suggestion.
    pub fn csv(&self) -> String {
        let mut out = String::from("step,lr,loss,smoothed_loss,suggested\n");
        let c = &self.curve;
        for i in 0..c.lrs.len() {
            out.push_str(&format!(
                "{i},{},{},{},{}\n",
                c.lrs[i],
                c.losses[i],
                c.smoothed[i],
                u8::from(self.suggestion == Some(i))
            ));
        }
        out
    }

    /// One line for the log.
    pub fn describe(&self) -> String {
        let steps = self.curve.lrs.len();
        let stopped = self
            .curve
            .stopped
            .as_ref()
            .map_or(String::new(), |why| format!(", stopped early: {why}"));
        match self.lr() {
            Some(lr) => format!(
                "learning-rate finder: {steps} steps from {:.1e} to {:.1e}{stopped}; suggested learning rate {lr:.4e} (steepest descent of the smoothed loss)",
                self.args.min_lr, self.args.max_lr
            ),
            None => format!(
                "learning-rate finder: {steps} steps{stopped}; too few points for a suggestion (it needs {} steps or more)",
                SKIP_BEGIN + SKIP_END + 2
            ),
        }
    }
}

/// Runs the range test of the experiment `config` with `sets` applied.
pub fn find(
    config: &Path,
    sets: &[String],
    args: &LrFindArgs,
) -> std::result::Result<Found, RunError> {
    let scratch = Scratch::new("lr-find");
    let mut all = sets.to_vec();
    all.extend(short_run_sets(args.num_training, &scratch.dir));
    run_test(config, &all, args)
}

fn run_test(
    config: &Path,
    sets: &[String],
    args: &LrFindArgs,
) -> std::result::Result<Found, RunError> {
    let mut assembled =
        crate::setup(config, sets).map_err(|e| RunError::BadInput(e.to_string()))?;
    let curve = Arc::new(Mutex::new(Curve::default()));
    assembled.parts.scheduler = Box::new(RangeSchedule::new(args.clone()));
    assembled.parts.callbacks.push((
        "learning-rate finder".into(),
        Box::new(Recorder {
            curve: Arc::clone(&curve),
            smoother: Smoother::new(args.early_stop_threshold),
            rate: args.min_lr,
        }),
    ));
    stoker::console::note(format!(
        "learning-rate finder: up to {} steps from {:.1e} to {:.1e}",
        args.num_training, args.min_lr, args.max_lr
    ));
    let trained = assembled.train(&TrainOptions {
        no_report: true,
        ..TrainOptions::default()
    });
    let curve = curve.lock().expect("the curve's lock").clone();
    match trained {
        Ok(_) => {}
        // A loss that became NaN or infinite ends the test (the NaN watch may say so first).
        Err(RunError::Failed { .. }) if curve.losses.iter().any(|l| !l.is_finite()) => {}
        Err(RunError::Failed { message, .. }) => {
            return Err(RunError::Failed {
                message: format!("learning-rate finder: {message}"),
                run_dir: None,
            });
        }
        Err(other) => return Err(other),
    }
    let suggestion = suggestion(&curve.lrs, &curve.smoothed, args.mode);
    Ok(Found {
        args: args.clone(),
        curve,
        suggestion,
    })
}

/// The `--set`s that train with learning rate `lr` found by the finder.
pub fn training_sets(lr: f64) -> [String; 2] {
    [
        format!("optimizer.args.lr={lr:e}"),
        "trainer.args.auto_lr_find=false".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rates_follow_lightnings_range_schedulers() {
        // min 1e-3, max 1, 4 steps: step 0 at min, then min * 1000^((k + 1) / 4).
        let args = LrFindArgs {
            min_lr: 1e-3,
            max_lr: 1.0,
            num_training: 4,
            ..LrFindArgs::default()
        };
        let exponential = RangeSchedule::new(args.clone());
        let expected = [
            1e-3,
            1e-3 * 1000f64.powf(0.5),
            1e-3 * 1000f64.powf(0.75),
            1.0,
        ];
        for (k, e) in expected.iter().enumerate() {
            assert!(
                (exponential.rate(k) - e).abs() < 1e-12 * e.max(1.0),
                "step {k}"
            );
        }
        let linear = RangeSchedule::new(LrFindArgs {
            mode: LrFindMode::Linear,
            ..args
        });
        let expected = [1e-3, 1e-3 + 0.5 * 0.999, 1e-3 + 0.75 * 0.999, 1.0];
        for (k, e) in expected.iter().enumerate() {
            assert!((linear.rate(k) - e).abs() < 1e-12, "step {k}");
        }
        let mut schedule = RangeSchedule::new(LrFindArgs::default());
        assert_eq!(schedule.lr(), 1e-8);
        schedule.on_optimizer_step();
        assert!((schedule.lr() - 1e-8 * 1e8f64.powf(0.02)).abs() < 1e-20);
    }

    #[test]
    fn the_smoothed_loss_and_the_stop_follow_lightnings_callback() {
        // Step 1: avg = 0.02 * 2 = 0.04, / (1 - 0.98^2) = 0.0396 -> 1.0101...
        let mut smoother = Smoother::new(Some(4.0));
        let (s1, stop1) = smoother.add(0, 2.0);
        assert!((s1 - 0.04 / (1.0 - 0.98f64.powi(2))).abs() < 1e-12);
        assert!(!stop1, "never on the first step");
        // Step 2: avg = 0.98 * 0.04 + 0.02 * 1 = 0.0592, / (1 - 0.98^3).
        let (s2, stop2) = smoother.add(1, 1.0);
        assert!((s2 - 0.0592 / (1.0 - 0.98f64.powi(3))).abs() < 1e-12);
        assert!(!stop2);
        // A loss 1000 times larger: the smoothed value passes 4 times the best (s2).
        let (s3, stop3) = smoother.add(2, 1000.0);
        assert!(s3 > 4.0 * s2 && stop3);
        let mut never = Smoother::new(None);
        never.add(0, 1.0);
        assert!(!never.add(1, 1e9).1, "no threshold, no stop");
    }

    #[test]
    fn the_suggestion_matches_lightnings_on_torchs_gradient() {
        // Cases computed with torch 2.11 by Lightning's `_LRFinder.suggestion` code path
        // (torch.gradient over the finite points after skipping 10 and 1), against the rates
        // and against their log10: crates/stoker-run/tests/fixtures/make_lr_find_fixture.py.
        let text = include_str!("../../tests/fixtures/lr_find.json");
        let cases: serde_json::Value = serde_json::from_str(text).unwrap();
        for (n, case) in cases["cases"].as_array().unwrap().iter().enumerate() {
            let numbers = |key: &str| -> Vec<f64> {
                case[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap_or(f64::NAN))
                    .collect()
            };
            for (mode, key) in [
                (LrFindMode::Linear, "index_linear"),
                (LrFindMode::Exponential, "index_exponential"),
            ] {
                let expected = case[key].as_u64().map(|i| i as usize);
                assert_eq!(
                    suggestion(&numbers("lr"), &numbers("loss"), mode),
                    expected,
                    "case {n}, {key}"
                );
            }
        }
    }
}
