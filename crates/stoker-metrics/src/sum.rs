//! A running sum kept on the device, read once when the metric is computed.

use stoker::burn::tensor::{Device, Int, Tensor, TensorData};
use stoker::error::{Result, StokerError};

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

    /// The exact sum (read from the device) and count.
    pub fn state(&self) -> serde_json::Value {
        let sum = self.sum.clone().map(|s| s.into_scalar::<f32>() as f64);
        serde_json::json!({ "sum": sum, "count": self.count })
    }

    /// Restores [`state`](Self::state) onto `device`.
    pub fn load_state(&mut self, state: &serde_json::Value, device: &Device) -> Result<()> {
        let count = state.get("count").and_then(serde_json::Value::as_u64);
        let Some(count) = count else {
            return Err(StokerError::msg(format!(
                "a metric state without a count: {state}"
            )));
        };
        self.count = count as usize;
        self.sum = state
            .get("sum")
            .and_then(serde_json::Value::as_f64)
            .map(|v| Tensor::<1>::from_data(TensorData::new(vec![v as f32], [1]), device));
        Ok(())
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

    /// The exact count (read from the device) and total.
    pub fn state(&self) -> serde_json::Value {
        let hits = self.sum.clone().map(|s| s.into_scalar::<i64>());
        serde_json::json!({ "hits": hits, "total": self.total })
    }

    /// Restores [`state`](Self::state) onto `device`.
    pub fn load_state(&mut self, state: &serde_json::Value, device: &Device) -> Result<()> {
        let total = state.get("total").and_then(serde_json::Value::as_u64);
        let Some(total) = total else {
            return Err(StokerError::msg(format!(
                "a metric state without a total: {state}"
            )));
        };
        self.total = total as usize;
        self.sum = state
            .get("hits")
            .and_then(serde_json::Value::as_i64)
            .map(|v| Tensor::<1, Int>::from_data(TensorData::new(vec![v], [1]), device));
        Ok(())
    }
}
