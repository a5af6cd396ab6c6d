//! The evaluation loop: a split through a model without autodiff, metrics over all of it.

use stoker::data::{DataModule, Order, Split};
use stoker::error::{Result, StokerError};
use stoker::loss::Loss;
use stoker::metric::{Metric, StepView};
use stoker::model::DynModel;

/// Runs the first `limit` batches of `split` (all when `None`) through `model` (an evaluation
/// copy) and returns the metrics, prefixed with the split's name (`val_loss`, `val_mse`).
pub fn evaluate(
    model: &dyn DynModel,
    data: &dyn DataModule,
    split: Split,
    loss: &dyn Loss,
    metrics: &mut [Box<dyn Metric>],
    limit: Option<usize>,
) -> Result<Vec<(String, f64)>> {
    for metric in metrics.iter_mut() {
        metric.reset();
    }
    let mut batches = data.epoch(split, 0, Order::Sequential)?;
    let n = limit.map_or(batches.len(), |l| l.min(batches.len()));
    for index in 0..n {
        let at = |e: StokerError| StokerError::msg(format!("{split} batch {index}: {e}"));
        let batch = batches.batch(index).map_err(at)?;
        let output = model.forward(&batch).map_err(at)?;
        let value = loss.forward(&output, &batch).map_err(at)?;
        // Metrics see physical units when the data is normalized.
        let decoded = data.decode(&batch, &output).map_err(at)?;
        let (batch, output) = decoded.as_ref().map_or((&batch, &output), |(b, o)| (b, o));
        let view = StepView {
            batch,
            output,
            loss: &value,
        };
        for metric in metrics.iter_mut() {
            metric.update(&view).map_err(at)?;
        }
    }
    collect(split, metrics)
}

/// Computes `metrics` and prefixes their names with the split's.
pub fn collect(split: Split, metrics: &mut [Box<dyn Metric>]) -> Result<Vec<(String, f64)>> {
    let mut out = Vec::new();
    for metric in metrics.iter_mut() {
        for (name, value) in metric.compute()? {
            out.push((format!("{split}_{name}"), value));
        }
    }
    Ok(out)
}
