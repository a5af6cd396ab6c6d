//! Time-frequency representations of signals `[batch, n]`, computed on the device with matrix
//! products and convolutions, each matching a reference library to float32 rounding:
//!
//! - [`stft::Stft`]: `scipy.signal.stft` (periodic Hann window, zeros at both ends, scaled by
//!   one over the window's sum);
//! - [`cwt::MorletCwt`]: `pywt.cwt(x, scales, 'morl')`;
//! - [`wvd::PseudoWvd`]: tftb's pseudo Wigner-Ville distribution of the analytic signal.
//!
//! Each is also a registered `transform` (`stft`, `morlet_cwt`, `pseudo_wvd`) that
//! `MultiTFR_CNN` names. `tests/fixtures/make_tfr_fixtures.py` computes the references the unit
//! tests compare with.

pub mod cwt;
pub mod stft;
pub mod wvd;

use std::sync::Mutex;

use stoker::prelude::*;

/// A constant tensor (a DFT basis, a kernel) kept on the host and uploaded once per device it
/// is used on (the training device, then the evaluation one), not at every batch.
pub(crate) struct Constant<const D: usize> {
    values: Vec<f32>,
    shape: [usize; D],
    uploaded: Mutex<Option<(Device, Tensor<D>)>>,
}

impl<const D: usize> Constant<D> {
    /// `values` (row-major) of `shape`.
    pub(crate) fn new(values: Vec<f32>, shape: [usize; D]) -> Self {
        Constant {
            values,
            shape,
            uploaded: Mutex::new(None),
        }
    }

    /// The tensor on `device`.
    pub(crate) fn on(&self, device: &Device) -> Tensor<D> {
        let mut cached = self.uploaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((on, tensor)) = cached.as_ref()
            && on == device
        {
            return tensor.clone();
        }
        let tensor = Tensor::from_data(TensorData::new(self.values.clone(), self.shape), device);
        *cached = Some((device.clone(), tensor.clone()));
        tensor
    }
}

impl<const D: usize> Clone for Constant<D> {
    fn clone(&self) -> Self {
        Constant::new(self.values.clone(), self.shape)
    }
}

impl<const D: usize> std::fmt::Debug for Constant<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Constant{:?}", self.shape)
    }
}

/// `x` (`[batch, n]`) with `before` zeros in front and `after` behind.
pub(crate) fn zero_pad(x: Tensor<2>, before: usize, after: usize) -> Tensor<2> {
    let [b, _] = x.dims();
    let device = x.device();
    let mut parts = Vec::with_capacity(3);
    if before > 0 {
        parts.push(Tensor::zeros([b, before], &device));
    }
    parts.push(x);
    if after > 0 {
        parts.push(Tensor::zeros([b, after], &device));
    }
    Tensor::cat(parts, 1)
}

/// Columns `indices` of `x` (`[batch, n]`): `[batch, indices.len()]`.
pub(crate) fn columns(x: Tensor<2>, indices: Vec<i64>) -> Tensor<2> {
    let n = indices.len();
    let device = x.device();
    let indices: Tensor<1, Int> = Tensor::from_data(TensorData::new(indices, [n]), &device);
    x.select(1, indices)
}

#[cfg(test)]
pub(crate) mod fixture {
    //! The reference values of `tests/fixtures/tfr.json`.

    use stoker::prelude::*;

    pub const JSON: &str = include_str!("../../tests/fixtures/tfr.json");

    pub fn json() -> serde_json::Value {
        serde_json::from_str(JSON).unwrap()
    }

    /// A JSON array of numbers, or of arrays of numbers, flattened.
    pub fn floats(v: &serde_json::Value) -> Vec<f32> {
        match v {
            serde_json::Value::Array(items) => items.iter().flat_map(floats).collect(),
            n => vec![n.as_f64().unwrap() as f32],
        }
    }

    /// The fixture's signal as a batch of one, `[1, 256]`.
    pub fn signal(device: &Device) -> Tensor<2> {
        let x = floats(&json()["x"]);
        let n = x.len();
        Tensor::from_data(TensorData::new(x, [1, n]), device)
    }

    /// `got` against `want`, to `tolerance` times the largest reference value.
    pub fn assert_close(got: Vec<f32>, want: &[f32], tolerance: f32, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: sizes");
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tolerance * scale,
                "{what}, value {i}: {g} against {w} (largest {scale})"
            );
        }
    }
}
