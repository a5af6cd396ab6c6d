//! The logging connector: values logged at one (epoch, step) merged into one row, rows handed to
//! every logger, the latest value of everything, histograms, and the tables metrics write.

use std::collections::BTreeMap;
use std::path::Path;

use stoker::burn::optim::GradientsParams;
use stoker::data::Split;
use stoker::error::{Result, StokerError};
use stoker::fs::write_atomic;
use stoker::logger::{LogRow, Loggers};
use stoker::metric::Metric;
use stoker::model::DynModel;
use stoker::prelude::Tensor;

/// A row being filled until the position changes.
struct Row {
    epoch: usize,
    step: usize,
    values: Vec<(String, f64)>,
}

/// The loggers and what has been logged.
pub struct LogConnector {
    /// The loggers, with their names.
    pub loggers: Loggers,
    /// The latest value of every logged name.
    pub latest: BTreeMap<String, f64>,
    /// The current epoch's training and validation values, in the order they were logged (the
    /// epoch line and the history).
    pub epoch_values: Vec<(String, f64)>,
    row: Option<Row>,
    /// Whether files are written (not in a fast dev run, and only on the global rank 0).
    pub writing: bool,
}

impl LogConnector {
    /// A connector over `loggers`; without `writing` nothing reaches them.
    pub fn new(loggers: Loggers, writing: bool) -> Self {
        if !writing {
            loggers.clear();
        }
        LogConnector {
            loggers,
            latest: BTreeMap::new(),
            epoch_values: Vec::new(),
            row: None,
            writing,
        }
    }

    /// Logs `values` at (`epoch`, `step`), merging them into one row per position.
    pub fn log(&mut self, epoch: usize, step: usize, values: Vec<(String, f64)>) -> Result<()> {
        if self
            .row
            .as_ref()
            .is_some_and(|r| (r.epoch, r.step) != (epoch, step))
        {
            self.flush()?;
        }
        let row = self.row.get_or_insert(Row {
            epoch,
            step,
            values: Vec::new(),
        });
        for (name, value) in values {
            self.latest.insert(name.clone(), value);
            match row.values.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => row.values.push((name, value)),
            }
        }
        Ok(())
    }

    /// Hands the pending row to the loggers.
    pub fn flush(&mut self) -> Result<()> {
        if let Some(row) = self.row.take() {
            let row = LogRow {
                epoch: row.epoch,
                step: row.step,
                values: row.values,
            };
            self.loggers.each(|_, logger| logger.log(&row))?;
        }
        Ok(())
    }

    /// Histograms of every weight and gradient, for the loggers that want them at `step`.
    pub fn histograms(
        &mut self,
        step: usize,
        model: &dyn DynModel,
        grads: &GradientsParams,
    ) -> Result<()> {
        if !self.loggers.wants_histograms(step) {
            return Ok(());
        }
        let values = |tensor: Tensor<1>| {
            tensor
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| StokerError::msg(format!("histogram values: {e:?}")))
        };
        let mut tensors = Vec::new();
        for (path, tensor) in model.parameters_flat() {
            tensors.push((format!("weights/{path}"), values(tensor)?));
        }
        for (path, tensor) in model.gradients_flat(grads) {
            tensors.push((format!("gradients/{path}"), values(tensor)?));
        }
        self.loggers.each(|_, logger| {
            if !logger
                .histogram_every_n_steps()
                .is_some_and(|n| n > 0 && step.is_multiple_of(n))
            {
                return Ok(());
            }
            for (tag, values) in &tensors {
                logger.log_histogram(tag, step, values)?;
            }
            Ok(())
        })
    }

    /// Writes the tables the metrics of `split` keep with the run (`confusion_matrix_val.csv`)
    /// into `dir`, and hands them to the loggers at `step`.
    pub fn artifacts(
        &mut self,
        dir: &Path,
        split: Split,
        step: usize,
        metrics: &mut [Box<dyn Metric>],
    ) -> Result<()> {
        for metric in metrics.iter_mut() {
            for (name, content) in metric.artifacts()? {
                if self.writing {
                    write_atomic(&dir.join(format!("{name}_{split}.csv")), content.as_bytes())?;
                    let tag = format!("{name}_{split}");
                    self.loggers
                        .each(|_, logger| logger.log_table(&tag, step, &content))?;
                }
            }
        }
        Ok(())
    }
}
