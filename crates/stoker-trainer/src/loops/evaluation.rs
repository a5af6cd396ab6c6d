//! The evaluation loop (Lightning's `evaluation_loop.py`): a split through the evaluation copy
//! of the model and the validation step, its metrics over every batch; the sanity check before
//! training, validation during it, and the test run after it.

use std::collections::BTreeMap;

use stoker::checkpoint;
use stoker::console;
use stoker::data::{DataModule, EpochBatches, Order, Split};
use stoker::error::{Result, StokerError};
use stoker::loss::Loss;
use stoker::metric::{Metric, StepView};
use stoker::model::DynModel;
use stoker::precision::Precision;
use stoker::strategy::Strategy;
use stoker::trainer::SplitMetrics;

use crate::callbacks::progress_bar::format_value;
use crate::context::Fit;
use crate::precision::full::FullPrecision;
use crate::step::{TrainingStep, ValidationContext};
use crate::strategy::single_device::SingleDevice;

/// What an evaluation runs on.
#[derive(Clone, Copy)]
pub struct Evaluation<'a> {
    /// The evaluation copy of the model.
    pub model: &'a dyn DynModel,
    /// The data (for decoding normalized tensors).
    pub data: &'a dyn DataModule,
    /// The split evaluated.
    pub split: Split,
    /// The experiment's loss.
    pub loss: &'a dyn Loss,
    /// The epoch and the optimizer step the validation step sees.
    pub position: (usize, usize),
    /// The precision the validation step runs in (the training's, as Lightning's).
    pub precision: &'a dyn Precision,
}

impl Evaluation<'_> {
    /// Runs the first `limit` of `batches` through `step` into `metrics` (reset first).
    pub fn run(
        &self,
        step: &mut dyn TrainingStep,
        batches: Box<dyn EpochBatches + '_>,
        metrics: &mut [Box<dyn Metric>],
        limit: usize,
    ) -> Result<()> {
        for metric in metrics.iter_mut() {
            metric.reset();
        }
        self.accumulate(step, batches, &mut [metrics], limit)
    }

    /// Runs the first `limit` of `batches` through `step`, adding each batch to every metric
    /// set of `sinks` (a named validation set's and the union's), none reset.
    pub fn accumulate(
        &self,
        step: &mut dyn TrainingStep,
        mut batches: Box<dyn EpochBatches + '_>,
        sinks: &mut [&mut [Box<dyn Metric>]],
        limit: usize,
    ) -> Result<()> {
        let split = self.split;
        for index in 0..limit.min(batches.len()) {
            let at = |e: StokerError| StokerError::msg(format!("{split} batch {index}: {e}"));
            let batch = batches.batch(index).map_err(at)?;
            let ctx = ValidationContext {
                batch: &batch,
                model: self.model,
                loss: self.loss,
                epoch: self.position.0,
                global_step: self.position.1,
            };
            let mut result = None;
            self.precision
                .forward(&mut || {
                    result = Some(step.validation_step(&ctx)?);
                    Ok(())
                })
                .map_err(at)?;
            let (output, loss) = result.expect("the validation step ran");
            // Metrics see physical units when the data is normalized.
            let decoded = self.data.decode(&batch, &output).map_err(at)?;
            let (batch, output) = decoded.as_ref().map_or((&batch, &output), |(b, o)| (b, o));
            let view = StepView {
                batch,
                output,
                loss: &loss,
            };
            for metric in sinks.iter_mut().flat_map(|set| set.iter_mut()) {
                metric.update(&view).map_err(at)?;
            }
        }
        Ok(())
    }
}

/// Evaluates the first `limit` batches of `split` (all when `None`; with named validation
/// sets, of each) with `step`'s validation step (the experiment's trainer's,
/// [`TrainerValidation`](crate::TrainerValidation)) and returns the metrics prefixed with the
/// split's name (`val_loss`, and `val_<name>_loss` for each named set): what `stoker eval`
/// prints.
pub fn evaluate(
    step: &mut dyn TrainingStep,
    model: &dyn DynModel,
    data: &dyn DataModule,
    split: Split,
    loss: &dyn Loss,
    metrics: &mut SplitMetrics,
    limit: Option<usize>,
) -> Result<Vec<(String, f64)>> {
    let evaluation = Evaluation {
        model,
        data,
        split,
        loss,
        position: (0, 0),
        precision: &FullPrecision,
    };
    let limit = limit.unwrap_or(usize::MAX);
    evaluate_sets(evaluation, step, &mut SingleDevice, metrics, |n| {
        n.min(limit)
    })
}

/// What an evaluation of `split` of `data` runs on: validation's named sets, if the data has
/// any (`val_<name>`), or else the split itself (no name).
pub fn eval_sets(data: &dyn DataModule, split: Split) -> Vec<(Option<&str>, &dyn DataModule)> {
    let named = match split {
        Split::Val => data.named_vals(),
        _ => Vec::new(),
    };
    if named.is_empty() {
        return vec![(None, data)];
    }
    named.into_iter().map(|(n, d)| (Some(n), d)).collect()
}

/// `base.split` through `step`, reduced over the processes by `strategy`; its values. With
/// named validation sets ([`eval_sets`]), each set runs into its own metrics (`val_<name>_*`)
/// and into the split's, which then cover every set together (`val_*`). `limit` gives the
/// batches to run of a set of so many.
fn evaluate_sets(
    base: Evaluation<'_>,
    step: &mut dyn TrainingStep,
    strategy: &mut dyn Strategy,
    metrics: &mut SplitMetrics,
    limit: impl Fn(usize) -> usize,
) -> Result<Vec<(String, f64)>> {
    let split = base.split;
    for metric in metrics.of(split).iter_mut() {
        metric.reset();
    }
    let mut named_values = Vec::new();
    for (index, (name, data)) in eval_sets(base.data, split).into_iter().enumerate() {
        let evaluation = Evaluation { data, ..base };
        let batches = strategy.epoch(data, split, 0, Order::Sequential)?;
        let n = limit(batches.len());
        let Some(name) = name else {
            evaluation.accumulate(step, batches, &mut [metrics.of(split)], n)?;
            continue;
        };
        let own = metrics.named_val.get_mut(index).ok_or_else(|| {
            StokerError::msg(format!(
                "validation set `{name}` has no metrics of its own (SplitMetrics::named_val holds one set per named validation set)"
            ))
        })?;
        for metric in own.iter_mut() {
            metric.reset();
        }
        evaluation
            .accumulate(step, batches, &mut [&mut metrics.val, own], n)
            .map_err(|e| StokerError::msg(format!("validation set `{name}`: {e}")))?;
        strategy.reduce_metrics(own)?;
        named_values.extend(collect_as(&format!("{split}_{name}"), own)?);
    }
    let all = metrics.of(split);
    strategy.reduce_metrics(all)?;
    let mut values = collect(split, all)?;
    values.extend(named_values);
    Ok(values)
}

/// Computes `metrics` and prefixes their names with the split's.
pub fn collect(split: Split, metrics: &mut [Box<dyn Metric>]) -> Result<Vec<(String, f64)>> {
    collect_as(split.as_str(), metrics)
}

/// Computes `metrics` and prefixes their names with `prefix` (`test_32`).
pub fn collect_as(prefix: &str, metrics: &mut [Box<dyn Metric>]) -> Result<Vec<(String, f64)>> {
    let mut out = Vec::new();
    for metric in metrics.iter_mut() {
        for (name, value) in metric.compute()? {
            out.push((format!("{prefix}_{name}"), value));
        }
    }
    Ok(out)
}

/// [`evaluate_sets`] in the fit: at most `limit` batches of the split (or of each named
/// validation set; `None`: as the trainer's limits say), on the evaluation copy of the model
/// synchronized over the processes.
fn run_split(fit: &mut Fit<'_>, split: Split, limit: Option<usize>) -> Result<Vec<(String, f64)>> {
    fit.strategy.sync_model(fit.parts.model.as_mut())?;
    let eval = fit.parts.model.for_eval();
    let parts = &mut fit.parts;
    let base = Evaluation {
        model: eval.as_ref(),
        data: parts.data.as_ref(),
        split,
        loss: parts.loss.as_ref(),
        position: (fit.state.epoch, fit.state.global_step),
        precision: &*fit.precision,
    };
    let args = fit.args;
    evaluate_sets(
        base,
        &mut *fit.step,
        &mut *fit.strategy,
        &mut parts.metrics,
        |n| {
            let all = args.eval_batches(split, n);
            limit.map_or(all, |l| l.min(all))
        },
    )
}

/// [`run_split`] with the trainer's limits, then the split's tables written.
fn evaluate_in_fit(fit: &mut Fit<'_>, split: Split) -> Result<Vec<(String, f64)>> {
    let values = run_split(fit, split, None)?;
    let metrics = fit.parts.metrics.of(split);
    fit.logs
        .artifacts(&fit.run.dir, split, fit.state.global_step, metrics)?;
    Ok(values)
}

/// A few validation batches before training (of each named set, if any), to catch a bug in
/// validation before hours of training (Lightning's sanity check); nothing is logged.
pub fn sanity_check(fit: &mut Fit<'_>) -> Result<()> {
    let steps = fit.args.num_sanity_val_steps;
    if steps == 0 || fit.args.dev_run() || !fit.has_val()? {
        return Ok(());
    }
    let n = usize::try_from(steps).ok();
    run_split(fit, Split::Val, n).map_err(|e| StokerError::msg(format!("sanity check: {e}")))?;
    for metric in fit.parts.metrics.val.iter_mut() {
        metric.reset();
    }
    let sets = eval_sets(fit.parts.data.as_ref(), Split::Val).len();
    let ran = match n {
        Some(n) if sets > 1 => format!("up to {n} batch{} of each of {sets} sets", plural(n)),
        _ => {
            let all = fit.eval_batches_of_all(Split::Val)?;
            let ran = n.map_or(all, |n| n.min(all));
            format!("{ran} validation batch{}", plural(ran))
        }
    };
    console::note(format!("sanity check passed ({ran})"));
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "es" }
}

/// Validation in the middle or at the end of an epoch of `n` batches: its values are logged at
/// the current step and shown on the epoch line.
pub fn validate(fit: &mut Fit<'_>, n: usize) -> Result<()> {
    fit.hook(n, |c, ctx| c.on_validation_start(ctx))?;
    let values = evaluate_in_fit(fit, Split::Val)?;
    let epoch_values = &mut fit.logs.epoch_values;
    epoch_values.retain(|(n, _)| !n.starts_with("val_"));
    epoch_values.extend(values.iter().cloned());
    fit.log(values)?;
    fit.hook(n, |c, ctx| c.on_validation_end(ctx))
}

/// `test_after_fit`: the test split with the best checkpoint's weights (the final ones without
/// a best checkpoint), logged as `test_*`, and each named test set as `test_<name>_*`.
pub fn test_after_fit(fit: &mut Fit<'_>) -> Result<BTreeMap<String, f64>> {
    if !fit.args.test_after_fit {
        return Ok(BTreeMap::new());
    }
    let has_test = fit.parts.data.info().len(Split::Test) > 0;
    let named = fit.parts.data.named_tests().len();
    if !has_test && named == 0 {
        console::note("test_after_fit: the data has no test split; skipped");
        return Ok(BTreeMap::new());
    }
    // Rank 0 loads them; run_split gives them to the other processes.
    let weights = match &fit.saves.best {
        Some(best) if !fit.strategy.is_global_zero() => {
            format!("the best checkpoint {}", best.path.display())
        }
        Some(best) if best.path.is_file() => {
            let checkpoint = checkpoint::load(&best.path)?;
            fit.parts.model.load_safetensors(checkpoint.weights)?;
            format!("the best checkpoint {}", best.path.display())
        }
        _ => "the final weights".to_string(),
    };
    let mut all = Vec::new();
    if has_test {
        all.push((String::new(), evaluate_in_fit(fit, Split::Test)?));
    }
    for index in 0..named {
        all.push(evaluate_named_test(fit, index)?);
    }
    let mut logged = BTreeMap::new();
    for (name, values) in all {
        let line: Vec<String> = values
            .iter()
            .map(|(n, v)| format!("{n} {}", format_value(*v)))
            .collect();
        let which = if name.is_empty() {
            String::new()
        } else {
            format!(" {name}")
        };
        console::line(format!("test{which} ({weights}): {}", line.join("  ")));
        fit.log(values.clone())?;
        logged.extend(values);
    }
    Ok(logged)
}

/// The named test set `index` ([`DataModule::named_tests`]) through the fit's validation step
/// into the test metrics, reduced over the processes: its name and values (`test_<name>_*`).
fn evaluate_named_test(fit: &mut Fit<'_>, index: usize) -> Result<(String, Vec<(String, f64)>)> {
    let eval = fit.parts.model.for_eval();
    let parts = &mut fit.parts;
    let tests = parts.data.named_tests();
    let (name, data) = tests[index];
    let batches = fit
        .strategy
        .epoch(data, Split::Test, 0, Order::Sequential)?;
    let limit = fit.args.eval_batches(Split::Test, batches.len());
    let evaluation = Evaluation {
        model: eval.as_ref(),
        data,
        split: Split::Test,
        loss: parts.loss.as_ref(),
        position: (fit.state.epoch, fit.state.global_step),
        precision: &*fit.precision,
    };
    let metrics = parts.metrics.of(Split::Test);
    evaluation
        .run(&mut *fit.step, batches, metrics, limit)
        .map_err(|e| StokerError::msg(format!("test set `{name}`: {e}")))?;
    fit.strategy.reduce_metrics(metrics)?;
    let values = collect_as(&format!("test_{name}"), metrics)?;
    Ok((name.to_string(), values))
}
