//! `sommerfeld_consistency`: predicted fault severity consistent with the lubrication regime the
//! operating condition puts the bearing in (the bearing seed's `SommerfeldConsistencyLoss`). The
//! Sommerfeld number of a journal bearing, S = (mu N / P) (R / c)^2 with N in rev/s and P the
//! load over the projected area 2 R L, sorts conditions into boundary (S < 0.1), mixed
//! (0.1 <= S < 1) and hydrodynamic (S >= 1) lubrication; each regime expects a severity level,
//! and the loss is the mean squared distance of the predicted level from it.

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::activation::softmax;
use stoker::prelude::*;

fn default_rpm() -> String {
    "rpm".into()
}
fn default_load() -> String {
    "load".into()
}
fn one() -> f64 {
    1.0
}
fn default_viscosity() -> f64 {
    0.03
}
fn default_radius() -> f64 {
    15.0
}
fn default_clearance() -> f64 {
    20.0
}
fn default_length() -> f64 {
    15.0
}
fn default_bounds() -> [f64; 2] {
    [0.1, 1.0]
}
fn default_levels() -> [f64; 3] {
    [3.0, 1.5, 0.5]
}

/// Sommerfeld consistency of severity predictions: S = (viscosity x rpm/60 / P) x (R/c)^2, P = load x newtons_per_unit / (2 R L), per sample; the expected severity is levels[0] when S < bounds[0] (boundary lubrication), levels[1] when S < bounds[1] (mixed), levels[2] otherwise (hydrodynamic); the loss is the mean of (predicted level - expected)^2. The predicted level is `pred` itself when it has one value per sample (a regression), or the expected level sum_k k softmax_k when it has scores for levels 0, 1, 2, ... (differentiable, where the seed's argmax has no gradient). Defaults: the seed's (an SKF 6205-sized journal, R 15 mm, c 20 um, L 15 mm, oil of 0.03 Pa s; levels 3.0, 1.5, 0.5).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "sommerfeld_consistency")]
pub struct SommerfeldConsistencySpec {
    /// The predicted severity: [batch] or [batch, 1] values, or [batch, levels] scores.
    #[serde(default = "stoker::names::prediction")]
    pub pred: String,
    /// The shaft speed per sample, rpm [batch, 1].
    #[serde(default = "default_rpm")]
    pub rpm: String,
    /// The radial load per sample [batch, 1], in the data's units.
    #[serde(default = "default_load")]
    pub load: String,
    /// Newtons per unit of `load` (1: the data gives newtons).
    #[serde(default = "one")]
    pub newtons_per_unit: f64,
    /// The lubricant's dynamic viscosity, Pa s.
    #[serde(default = "default_viscosity")]
    pub viscosity: f64,
    /// The shaft radius R, mm.
    #[serde(default = "default_radius")]
    pub shaft_radius_mm: f64,
    /// The radial clearance c, micrometres.
    #[serde(default = "default_clearance")]
    pub radial_clearance_um: f64,
    /// The bearing's length L, mm.
    #[serde(default = "default_length")]
    pub length_mm: f64,
    /// The Sommerfeld numbers where boundary lubrication turns mixed, and mixed hydrodynamic.
    #[serde(default = "default_bounds")]
    pub bounds: [f64; 2],
    /// The severity expected in boundary, mixed and hydrodynamic lubrication.
    #[serde(default = "default_levels")]
    pub levels: [f64; 3],
}

impl SommerfeldConsistencySpec {
    /// The Sommerfeld number at `rpm` under `load` (in the data's units); infinite without load.
    pub fn sommerfeld_number(&self, rpm: f64, load: f64) -> f64 {
        rpm * self.coefficient() / (load * self.newtons_per_unit)
    }

    /// S per rpm per newton: mu / 60 x 2 R L x (R / c)^2.
    fn coefficient(&self) -> f64 {
        let r = self.shaft_radius_mm * 1e-3;
        let c = self.radial_clearance_um * 1e-6;
        let l = self.length_mm * 1e-3;
        self.viscosity / 60.0 * 2.0 * r * l * (r / c).powi(2)
    }

    /// The severity each sample's condition expects, `[batch]`.
    pub fn expected(&self, rpm: Tensor<1>, load: Tensor<1>) -> Tensor<1> {
        let s = rpm.mul_scalar(self.coefficient()) / load.mul_scalar(self.newtons_per_unit);
        let [boundary, mixed, hydrodynamic] = self.levels;
        let below = |bound: f64| s.clone().lower_elem(bound).float();
        below(self.bounds[1])
            .mul_scalar(mixed - hydrodynamic)
            .add_scalar(hydrodynamic)
            + below(self.bounds[0]).mul_scalar(boundary - mixed)
    }

    /// The predicted severity level per sample, `[batch]`, from values or level scores.
    pub fn predicted(&self, pred: Tensor<2>) -> Tensor<1> {
        let [b, k] = pred.dims();
        if k == 1 {
            return pred.reshape([b]);
        }
        let levels: Tensor<2> = Tensor::arange(0..k as i64, &pred.device())
            .float()
            .reshape([1, k]);
        (softmax(pred, 1) * levels).sum_dim(1).reshape([b])
    }
}

struct SommerfeldConsistency(SommerfeldConsistencySpec);

/// A float tensor with one value per sample as `[batch]`.
fn per_sample(batch: &Batch, name: &str) -> Result<Tensor<1>> {
    let flat = batch.float_flat(name)?;
    let [b, n] = flat.dims();
    if n != 1 {
        return Err(StokerError::msg(format!(
            "sommerfeld_consistency: `{name}` has {n} values per sample; it needs one"
        )));
    }
    Ok(flat.reshape([b]))
}

impl Loss for SommerfeldConsistency {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let s = &self.0;
        let pred = output.float_flat(&s.pred)?;
        let predicted = s.predicted(pred);
        let expected = s.expected(per_sample(batch, &s.rpm)?, per_sample(batch, &s.load)?);
        Ok(LossValue::single((predicted - expected).square().mean()))
    }
}

impl LossSpec for SommerfeldConsistencySpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        for (arg, value) in [
            ("newtons_per_unit", self.newtons_per_unit),
            ("viscosity", self.viscosity),
            ("shaft_radius_mm", self.shaft_radius_mm),
            ("radial_clearance_um", self.radial_clearance_um),
            ("length_mm", self.length_mm),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(BuildError::at(arg, "must be a positive number"));
            }
        }
        if !(self.bounds[0] > 0.0 && self.bounds[0] < self.bounds[1]) {
            return Err(BuildError::at(
                "bounds",
                "must be two increasing positive Sommerfeld numbers, e.g. [0.1, 1.0]",
            ));
        }
        let data = ctx.data()?;
        for (arg, name) in [("rpm", &self.rpm), ("load", &self.load)] {
            let info = data.require(arg, name)?;
            if info.sample_len() != 1 || info.kind != ElementKind::Float {
                return Err(BuildError::at(
                    arg,
                    format!(
                        "`{name}` must hold one float per sample, not {:?}",
                        info.sample_shape
                    ),
                ));
            }
        }
        Ok(Box::new(SommerfeldConsistency(self.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SommerfeldConsistencySpec {
        serde_yaml::from_str("{}").unwrap()
    }

    fn tensor(values: &[f32]) -> Tensor<1> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [values.len()]),
            &Device::flex(),
        )
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn the_sommerfeld_number_is_the_seeds() {
        // 3600 rpm, 500 N, 0.03 Pa s, R 15 mm, c 20 um, L 15 mm:
        // P = 500 / (2 x 0.015 x 0.015) = 1.1111e6 Pa, mu N / P = 0.03 x 60 / P = 1.62e-6,
        // (R / c)^2 = 750^2 = 562500, S = 0.91125.
        let s = spec().sommerfeld_number(3600.0, 500.0);
        assert!((s - 0.91125).abs() < 1e-9, "{s}");
        // Half the speed, twice the load: a quarter.
        let s = spec().sommerfeld_number(1800.0, 1000.0);
        assert!((s - 0.91125 / 4.0).abs() < 1e-9, "{s}");
    }

    #[test]
    fn each_regime_expects_its_level() {
        // S = 0.91125 (mixed: 1.5), 0.091125 (boundary: 3.0), 4.55625 (hydrodynamic: 0.5), and
        // no load at all (S infinite: hydrodynamic).
        let rpm = tensor(&[3600.0, 3600.0, 3600.0, 3600.0]);
        let load = tensor(&[500.0, 5000.0, 100.0, 0.0]);
        assert_eq!(values(spec().expected(rpm, load)), [1.5, 3.0, 0.5, 0.5]);
    }

    #[test]
    fn the_loss_is_the_mean_squared_distance_of_the_predicted_level() {
        let loss = SommerfeldConsistency(spec());
        let batch = Batch::batch()
            .with_float("rpm", tensor(&[3600.0, 3600.0, 3600.0]).reshape([3, 1]))
            .with_float("load", tensor(&[500.0, 5000.0, 100.0]).reshape([3, 1]));
        // A regression: (1.0 - 1.5)^2, (3.0 - 3.0)^2, (2.5 - 0.5)^2: mean 4.25 / 3.
        let output = Output::output().with_float("pred", tensor(&[1.0, 3.0, 2.5]).reshape([3, 1]));
        let value = values(loss.forward(&output, &batch).unwrap().total)[0];
        assert!((value - 4.25 / 3.0).abs() < 1e-6, "{value}");
        // Scores for levels 0 and 1, p = (1/4, 3/4): expected level 3/4 for every sample;
        // (0.75 - 1.5)^2 + (0.75 - 3)^2 + (0.75 - 0.5)^2 = 0.5625 + 5.0625 + 0.0625.
        let ln3 = 3f32.ln();
        let scores: Tensor<2> = Tensor::from_data(
            TensorData::new(vec![0.0, ln3, 0.0, ln3, 0.0, ln3], [3, 2]),
            &Device::flex(),
        );
        let output = Output::output().with_float("pred", scores);
        let value = values(loss.forward(&output, &batch).unwrap().total)[0];
        assert!((value - 5.6875 / 3.0).abs() < 1e-5, "{value}");
    }
}
