//! `darcy_residual`: the residual of Darcy flow, -div(a grad u) = f, for physics-informed
//! training of an operator that maps the coefficient a to the pressure u.

use serde::{Deserialize, Serialize};
use stoker::prelude::*;

fn default_field() -> String {
    "pred".into()
}
fn default_coefficient() -> String {
    "x".into()
}
fn one() -> f64 {
    1.0
}

/// The Darcy residual -div(a grad u) - f on the interior of a uniform 2-D grid over [0, domain_length]^2 (grid points on the boundary included), in conservative finite differences with the coefficient averaged onto cell faces; the penalty is its mean square. The coefficient is coefficient_offset + coefficient_scale x (a batch tensor), so a 0/1 mask can stand for a two-valued medium.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(physics, name = "darcy_residual")]
pub struct DarcyResidualSpec {
    /// The constant source f.
    #[serde(default = "one")]
    pub source: f64,
    /// The side of the square domain.
    #[serde(default = "one")]
    pub domain_length: f64,
    /// The batch tensor the coefficient a is computed from ([batch, n1, n2], same grid as u).
    #[serde(default = "default_coefficient")]
    pub coefficient: String,
    /// a = coefficient_offset + coefficient_scale * (the coefficient tensor).
    #[serde(default)]
    pub coefficient_offset: f64,
    /// See coefficient_offset.
    #[serde(default = "one")]
    pub coefficient_scale: f64,
    /// The model output holding u ([batch, n1, n2]).
    #[serde(default = "default_field")]
    pub field: String,
}

struct DarcyResidual(DarcyResidualSpec);

impl DarcyResidual {
    /// The residual at every interior point, `[batch, n1 - 2, n2 - 2]`.
    fn residual(&self, u: Tensor<3>, a: Tensor<3>) -> Tensor<3> {
        let s = &self.0;
        let [_, n1, n2] = u.dims();
        let (h1, h2) = (
            s.domain_length / (n1 - 1) as f64,
            s.domain_length / (n2 - 1) as f64,
        );
        // Fluxes across the faces between neighbours along each axis.
        let flux = |axis: usize, n: usize, h: f64| {
            let face_a = (a.clone().narrow(axis, 1, n - 1) + a.clone().narrow(axis, 0, n - 1))
                .mul_scalar(0.5);
            let grad =
                (u.clone().narrow(axis, 1, n - 1) - u.clone().narrow(axis, 0, n - 1)).div_scalar(h);
            face_a * grad
        };
        let f1 = flux(1, n1, h1).narrow(2, 1, n2 - 2);
        let f2 = flux(2, n2, h2).narrow(1, 1, n1 - 2);
        let div = (f1.clone().narrow(1, 1, n1 - 2) - f1.narrow(1, 0, n1 - 2)).div_scalar(h1)
            + (f2.clone().narrow(2, 1, n2 - 2) - f2.narrow(2, 0, n2 - 2)).div_scalar(h2);
        div.neg().sub_scalar(s.source)
    }
}

impl PhysicsTerm for DarcyResidual {
    fn penalty(&self, output: &Output, batch: &Batch) -> Result<Tensor<1>> {
        let s = &self.0;
        let u = output.float::<3>(&s.field)?;
        let a = batch
            .float::<3>(&s.coefficient)?
            .mul_scalar(s.coefficient_scale)
            .add_scalar(s.coefficient_offset);
        if u.dims() != a.dims() {
            return Err(StokerError::msg(format!(
                "darcy_residual: u `{}` {:?} and the coefficient `{}` {:?} are not on the same grid",
                s.field,
                u.dims(),
                s.coefficient,
                a.dims()
            )));
        }
        let [b, n1, n2] = u.dims();
        if n1 < 3 || n2 < 3 {
            return Err(StokerError::msg(format!(
                "darcy_residual: a {n1}x{n2} grid has no interior points"
            )));
        }
        let r = self.residual(u, a);
        Ok(r.square().reshape([b * (n1 - 2) * (n2 - 2)]).mean())
    }
}

impl PhysicsSpec for DarcyResidualSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn PhysicsTerm>, BuildError> {
        if !(self.domain_length.is_finite() && self.domain_length > 0.0) {
            return Err(BuildError::at("domain_length", "must be positive"));
        }
        let data = ctx.data()?;
        let info = data.require("coefficient", &self.coefficient)?;
        if info.sample_shape.len() != 2 {
            return Err(BuildError::at(
                "coefficient",
                format!(
                    "each sample of `{}` has shape {:?}; the Darcy residual needs a 2-D grid",
                    self.coefficient, info.sample_shape
                ),
            ));
        }
        Ok(Box::new(DarcyResidual(self.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DarcyResidualSpec {
        DarcyResidualSpec {
            source: 1.0,
            domain_length: 1.0,
            coefficient: "x".into(),
            coefficient_offset: 0.0,
            coefficient_scale: 1.0,
            field: "pred".into(),
        }
    }

    fn grid(values: Vec<f32>, n: usize) -> Tensor<3> {
        Tensor::from_data(TensorData::new(values, [1, n, n]), &Device::flex())
    }

    #[test]
    fn a_quadratic_solves_the_constant_coefficient_problem_exactly() {
        // a = 2, u = x (1 - x) / 4: -(a u')' = 1, and central differences are exact on quadratics.
        let n = 9;
        let u: Vec<f32> = (0..n * n)
            .map(|i| {
                let x = (i / n) as f32 / (n - 1) as f32;
                x * (1.0 - x) / 4.0
            })
            .collect();
        let r = DarcyResidual(spec()).residual(grid(u, n), grid(vec![2.0; n * n], n));
        let max = r.abs().max().into_scalar::<f32>();
        assert!(max < 1e-4, "{max}");
    }

    #[test]
    fn a_variable_coefficient_gives_the_hand_computed_stencil() {
        // 3x3 grid, h = 1/2, u = 1 at the centre only; a = 1 except a[1][2] = 3, so the face
        // between the centre and its right neighbour has a = 2.
        // Along axis 1: (1 (0 - 1) - 1 (1 - 0)) / h^2 = -8; along axis 2: (2 (0 - 1) - 1 (1 - 0)) / h^2 = -12.
        // -div - f = 20 - 1 = 19.
        let mut u = vec![0.0; 9];
        u[4] = 1.0;
        let mut a = vec![1.0; 9];
        a[5] = 3.0;
        let r = DarcyResidual(spec()).residual(grid(u, 3), grid(a, 3));
        assert_eq!(r.dims(), [1, 1, 1]);
        assert!((r.into_scalar::<f32>() - 19.0).abs() < 1e-5);
    }
}
