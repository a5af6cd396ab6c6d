//! A running sum kept on the device, read once when the metric is computed.

use stoker::burn::tensor::{Device, Int, Tensor, TensorData};
use stoker::error::{Result, StokerError};
use stoker::metric::{Reducer, max_sized, sum_sized};

/// A float vector's values on the host, `None` for `None`.
pub fn host(tensor: &Option<Tensor<1>>) -> Result<Option<Vec<f64>>> {
    tensor
        .clone()
        .map(|t| {
            t.into_data()
                .convert::<f64>()
                .try_to_vec::<f64>()
                .map_err(|e| StokerError::msg(format!("reading a metric's sums: {e:?}")))
        })
        .transpose()
}

/// `values` as a float vector on `device`.
pub fn upload(values: Vec<f64>, device: &Device) -> Tensor<1> {
    let n = values.len();
    let values: Vec<f32> = values.into_iter().map(|v| v as f32).collect();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// A float vector summed over the processes (see [`sum_sized`]), back on `device`.
pub fn sum_tensor(
    reducer: &mut dyn Reducer,
    tensor: &mut Option<Tensor<1>>,
    device: &Device,
) -> Result<()> {
    *tensor = sum_sized(reducer, host(tensor)?)?.map(|v| upload(v, device));
    Ok(())
}

/// A float vector's element-wise maximum over the processes, back on `device`.
pub fn max_tensor(
    reducer: &mut dyn Reducer,
    tensor: &mut Option<Tensor<1>>,
    device: &Device,
) -> Result<()> {
    *tensor = max_sized(reducer, host(tensor)?)?.map(|v| upload(v, device));
    Ok(())
}

/// A count summed over the processes.
pub fn sum_count(reducer: &mut dyn Reducer, count: &mut usize) -> Result<()> {
    let mut value = [*count as f64];
    reducer.sum(&mut value)?;
    *count = value[0] as usize;
    Ok(())
}

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

    /// The sum and count over all processes (see `Metric::reduce`).
    pub fn reduce(&mut self, reducer: &mut dyn Reducer, device: &Device) -> Result<()> {
        sum_tensor(reducer, &mut self.sum, device)?;
        sum_count(reducer, &mut self.count)
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

    /// The count and total over all processes (see `Metric::reduce`; counts below 2^53 stay
    /// exact through the float reduction).
    pub fn reduce(&mut self, reducer: &mut dyn Reducer, device: &Device) -> Result<()> {
        let own = self
            .sum
            .clone()
            .map(|s| vec![s.into_scalar::<i64>() as f64]);
        self.sum = sum_sized(reducer, own)?
            .map(|v| Tensor::<1, Int>::from_data(TensorData::new(vec![v[0] as i64], [1]), device));
        sum_count(reducer, &mut self.total)
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
