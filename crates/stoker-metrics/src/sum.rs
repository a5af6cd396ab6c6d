//! A running sum kept on the device, read once when the metric is computed.

use stoker::burn::tensor::{Int, Tensor};

/// A float sum on the device plus a host-side count.
#[derive(Default)]
pub struct DeviceSum {
    sum: Option<Tensor<1>>,
    /// What the sum is divided by (samples or values seen).
    pub count: usize,
}

impl DeviceSum {
    /// Adds `value` (shape `[1]`, detached from autodiff here) weighted by nothing, and `count`.
    pub fn add(&mut self, value: Tensor<1>, count: usize) {
        let value = value.detach();
        self.sum = Some(match self.sum.take() {
            Some(sum) => sum + value,
            None => value,
        });
        self.count += count;
    }

    /// sum / count, reading the device once; `None` before any update.
    pub fn mean(&self) -> Option<f64> {
        let sum = self.sum.clone()?;
        Some(sum.into_scalar::<f64>() / self.count.max(1) as f64)
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        *self = DeviceSum::default();
    }
}

/// An integer count on the device.
#[derive(Default)]
pub struct DeviceCount {
    sum: Option<Tensor<1, Int>>,
    /// The total it is a fraction of.
    pub total: usize,
}

impl DeviceCount {
    /// Adds `hits` (shape `[1]`) out of `total`.
    pub fn add(&mut self, hits: Tensor<1, Int>, total: usize) {
        self.sum = Some(match self.sum.take() {
            Some(sum) => sum + hits,
            None => hits,
        });
        self.total += total;
    }

    /// hits / total; `None` before any update.
    pub fn fraction(&self) -> Option<f64> {
        let sum = self.sum.clone()?;
        Some(sum.into_scalar::<i64>() as f64 / self.total.max(1) as f64)
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        *self = DeviceCount::default();
    }
}
