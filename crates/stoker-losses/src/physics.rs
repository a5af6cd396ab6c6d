//! Physics losses: `physics_informed` (data + PDE residual + boundary + conservation), the
//! physics terms it names (`poisson_residual`, `dirichlet_boundary`), and `conservation`.

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::TensorData;
use stoker::prelude::*;
use stoker::registry::{AnySpec, Kind, parse_nested};

use crate::composite::nested_loss;
use stoker::names::{prediction as default_pred, target as default_target};

/// A component named inside the loss's args: `{name, args}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nested {
    /// Its registered name.
    pub name: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Option<serde_yaml::Value>,
}

/// The weights of the physics-informed loss's terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhysicsWeights {
    /// Weight of the data term.
    #[serde(default = "one")]
    pub data: f64,
    /// Weight of the PDE residual.
    #[serde(default = "one")]
    pub pde: f64,
    /// Weight of the boundary term.
    #[serde(default = "one")]
    pub boundary: f64,
    /// Weight of the conservation term.
    #[serde(default = "one")]
    pub conservation: f64,
}

impl Default for PhysicsWeights {
    fn default() -> Self {
        PhysicsWeights {
            data: 1.0,
            pde: 1.0,
            boundary: 1.0,
            conservation: 1.0,
        }
    }
}

fn one() -> f64 {
    1.0
}

fn default_data() -> Nested {
    Nested {
        name: "mse".into(),
        args: None,
    }
}

/// A physics-informed loss: weights.data x a data loss + weights.pde x a PDE residual + weights.boundary x a boundary term + weights.conservation x conservation; residual and boundary are physics terms registered by name; each term is logged on its own (loss_data, loss_pde, ...).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "physics_informed")]
pub struct PhysicsInformedSpec {
    /// The data loss, `{name, args}` (mse when not given).
    #[serde(default = "default_data")]
    pub data: Nested,
    /// The PDE residual, a physics term `{name, args}` (cargo xtask list physics).
    #[serde(default)]
    pub residual: Option<Nested>,
    /// The boundary condition, a physics term `{name, args}`.
    #[serde(default)]
    pub boundary: Option<Nested>,
    /// The args of a `conservation` term, if one is wanted.
    #[serde(default)]
    pub conservation: Option<serde_yaml::Value>,
    /// The terms' weights.
    #[serde(default)]
    pub weights: PhysicsWeights,
}

enum Term {
    Loss(Box<dyn Loss>),
    Physics(Box<dyn PhysicsTerm>),
}

struct PhysicsInformed {
    terms: Vec<(&'static str, f64, Term)>,
}

impl Loss for PhysicsInformed {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let mut total: Option<Tensor<1>> = None;
        let mut logged = Vec::new();
        for (label, weight, term) in &self.terms {
            let value = match term {
                Term::Loss(loss) => loss.forward(output, batch)?.total,
                Term::Physics(physics) => physics.penalty(output, batch)?,
            };
            let weighted = value.clone().mul_scalar(*weight);
            total = Some(match total {
                Some(t) => t + weighted,
                None => weighted,
            });
            logged.push((label.to_string(), value));
        }
        Ok(LossValue {
            total: total.expect("the data term is always there"),
            terms: logged,
        })
    }
}

fn physics_term(
    nested: &Nested,
    at: &str,
    ctx: &BuildContext,
) -> std::result::Result<Box<dyn PhysicsTerm>, BuildError> {
    let AnySpec::Physics(spec) =
        parse_nested(Kind::Physics, &nested.name, nested.args.clone(), at)?.spec
    else {
        return Err(BuildError::at(
            format!("{at}.name"),
            format!("`{}` is not a physics term", nested.name),
        ));
    };
    spec.build(ctx).map_err(|mut e| {
        e.arg = Some(match e.arg.take() {
            Some(arg) => format!("{at}.args.{arg}"),
            None => at.to_string(),
        });
        e
    })
}

impl LossSpec for PhysicsInformedSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        let w = &self.weights;
        for (arg, v) in [
            ("weights.data", w.data),
            ("weights.pde", w.pde),
            ("weights.boundary", w.boundary),
            ("weights.conservation", w.conservation),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(BuildError::at(arg, "must be >= 0"));
            }
        }
        let mut terms = vec![(
            "data",
            w.data,
            Term::Loss(nested_loss(
                &self.data.name,
                self.data.args.clone(),
                "data",
                ctx,
            )?),
        )];
        if let Some(residual) = &self.residual {
            terms.push((
                "pde",
                w.pde,
                Term::Physics(physics_term(residual, "residual", ctx)?),
            ));
        }
        if let Some(boundary) = &self.boundary {
            terms.push((
                "boundary",
                w.boundary,
                Term::Physics(physics_term(boundary, "boundary", ctx)?),
            ));
        }
        if let Some(args) = &self.conservation {
            terms.push((
                "conservation",
                w.conservation,
                Term::Loss(nested_loss(
                    "conservation",
                    Some(args.clone()),
                    "conservation",
                    ctx,
                )?),
            ));
        }
        if terms.len() == 1 {
            return Err(BuildError::new("there is no physics term").hint("name a residual, a boundary or conservation (cargo xtask list physics); without them use the data loss alone"));
        }
        Ok(Box::new(PhysicsInformed { terms }))
    }
}

/// A field of rank 2 or 3 (batch first), as `[batch, n]` or `[batch, n1, n2]`.
enum Field {
    Line(Tensor<2>),
    Plane(Tensor<3>),
}

fn field(output: &Output, name: &str) -> Result<Field> {
    match output.shape(name)?.len() {
        2 => Ok(Field::Line(output.float::<2>(name)?)),
        3 => Ok(Field::Plane(output.float::<3>(name)?)),
        rank => Err(StokerError::msg(format!(
            "`{name}` has rank {rank}: a grid field is [batch, n] or [batch, n1, n2]"
        ))),
    }
}

fn default_source() -> f64 {
    1.0
}

/// The Poisson residual -laplacian(u) - f on the interior of a uniform grid over [0, domain_length]^d (d = 1 or 2, grid points on the boundary included, second-order central differences); the penalty is its mean square.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(physics, name = "poisson_residual")]
pub struct PoissonResidualSpec {
    /// The constant source term f.
    #[serde(default = "default_source")]
    pub source: f64,
    /// The length of the domain along each axis.
    #[serde(default = "one")]
    pub domain_length: f64,
    /// The model output holding u.
    #[serde(default = "default_pred")]
    pub field: String,
}

struct PoissonResidual(PoissonResidualSpec);

impl PhysicsTerm for PoissonResidual {
    fn penalty(&self, output: &Output, _batch: &Batch) -> Result<Tensor<1>> {
        let s = &self.0;
        let residual = match field(output, &s.field)? {
            Field::Line(u) => {
                let [b, n] = u.dims();
                let h = s.domain_length / (n - 1) as f64;
                let center = u.clone().narrow(1, 1, n - 2);
                let lap = (u.clone().narrow(1, 2, n - 2) + u.narrow(1, 0, n - 2)
                    - center.mul_scalar(2.0))
                .div_scalar(h * h);
                lap.neg().sub_scalar(s.source).reshape([b * (n - 2)])
            }
            Field::Plane(u) => {
                let [b, n1, n2] = u.dims();
                let (h1, h2) = (
                    s.domain_length / (n1 - 1) as f64,
                    s.domain_length / (n2 - 1) as f64,
                );
                let inner = |t: Tensor<3>, o1: usize, o2: usize| {
                    t.narrow(1, o1, n1 - 2).narrow(2, o2, n2 - 2)
                };
                let center = inner(u.clone(), 1, 1).mul_scalar(2.0);
                let d1 = (inner(u.clone(), 2, 1) + inner(u.clone(), 0, 1) - center.clone())
                    .div_scalar(h1 * h1);
                let d2 = (inner(u.clone(), 1, 2) + inner(u, 1, 0) - center).div_scalar(h2 * h2);
                (d1 + d2)
                    .neg()
                    .sub_scalar(s.source)
                    .reshape([b * (n1 - 2) * (n2 - 2)])
            }
        };
        Ok(residual.square().mean())
    }
}

impl PhysicsSpec for PoissonResidualSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn PhysicsTerm>, BuildError> {
        if !(self.domain_length.is_finite() && self.domain_length > 0.0) {
            return Err(BuildError::at("domain_length", "must be positive"));
        }
        Ok(Box::new(PoissonResidual(self.clone())))
    }
}

/// The boundary values of a 1-D or 2-D grid field, `[batch, boundary points]`.
fn boundary_values(f: Field) -> Tensor<2> {
    match f {
        Field::Line(u) => {
            let [_, n] = u.dims();
            Tensor::cat(vec![u.clone().narrow(1, 0, 1), u.narrow(1, n - 1, 1)], 1)
        }
        Field::Plane(u) => {
            let [b, n1, n2] = u.dims();
            let top = u.clone().narrow(1, 0, 1).reshape([b, n2]);
            let bottom = u.clone().narrow(1, n1 - 1, 1).reshape([b, n2]);
            let left = u
                .clone()
                .narrow(1, 1, n1 - 2)
                .narrow(2, 0, 1)
                .reshape([b, n1 - 2]);
            let right = u
                .narrow(1, 1, n1 - 2)
                .narrow(2, n2 - 1, 1)
                .reshape([b, n1 - 2]);
            Tensor::cat(vec![top, bottom, left, right], 1)
        }
    }
}

/// A Dirichlet condition: the mean square of (u - g) over the boundary points of a 1-D or 2-D grid field, g a constant value or the boundary values of a batch tensor.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(physics, name = "dirichlet_boundary")]
pub struct DirichletBoundarySpec {
    /// The prescribed boundary value (when `target` is not given).
    #[serde(default)]
    pub value: f64,
    /// A batch tensor whose boundary values are prescribed instead.
    #[serde(default)]
    pub target: Option<String>,
    /// The model output holding u.
    #[serde(default = "default_pred")]
    pub field: String,
}

struct DirichletBoundary(DirichletBoundarySpec);

impl PhysicsTerm for DirichletBoundary {
    fn penalty(&self, output: &Output, batch: &Batch) -> Result<Tensor<1>> {
        let u = boundary_values(field(output, &self.0.field)?);
        let g = match &self.0.target {
            Some(name) => boundary_values(field(batch, name)?),
            None => u.zeros_like().add_scalar(self.0.value),
        };
        if u.dims() != g.dims() {
            return Err(StokerError::msg(format!(
                "the boundaries of `{}` and its target differ in size",
                self.0.field
            )));
        }
        Ok((u - g).square().mean())
    }
}

impl PhysicsSpec for DirichletBoundarySpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn PhysicsTerm>, BuildError> {
        if let Some(target) = &self.target {
            ctx.data()?.require_kind(
                "target",
                target,
                ElementKind::Float,
                "boundary values are floats",
            )?;
        }
        Ok(Box::new(DirichletBoundary(self.clone())))
    }
}

/// Conservation of a grid field's integrals: weighted squared differences between prediction and target of the mass (mean of u), the momentum (mean of x u for each axis, x in [0, 1)) and the energy (mean of u^2), averaged over the batch; each part logged on its own.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "conservation")]
pub struct ConservationSpec {
    /// Weight of the mass difference.
    #[serde(default = "one")]
    pub mass: f64,
    /// Weight of the momentum difference.
    #[serde(default)]
    pub momentum: f64,
    /// Weight of the energy difference.
    #[serde(default)]
    pub energy: f64,
    /// The model output compared.
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor it is compared with.
    #[serde(default = "default_target")]
    pub target: String,
}

struct Conservation(ConservationSpec);

/// Coordinates in [0, 1) of each point of a row-major grid, one vector per axis.
fn coordinates(grid: &[usize]) -> Vec<Vec<f32>> {
    let total: usize = grid.iter().product();
    (0..grid.len())
        .map(|axis| {
            let stride: usize = grid[axis + 1..].iter().product();
            (0..total)
                .map(|i| ((i / stride) % grid[axis]) as f32 / grid[axis] as f32)
                .collect()
        })
        .collect()
}

impl Loss for Conservation {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let s = &self.0;
        let (p, t) = stoker::targets::pair(output, &s.pred, batch, &s.target)?;
        let [_, points] = p.dims();
        let grid = output.shape(&s.pred)?[1..].to_vec();
        let device = p.device();
        let mut terms: Vec<(String, Tensor<1>)> = Vec::new();
        let squared_gap =
            |a: Tensor<2>, b: Tensor<2>| (a.mean_dim(1) - b.mean_dim(1)).square().mean();
        if s.mass != 0.0 {
            terms.push(("mass".into(), squared_gap(p.clone(), t.clone())));
        }
        if s.momentum != 0.0 {
            let mut sum: Option<Tensor<1>> = None;
            for x in coordinates(&grid) {
                let x = Tensor::<1>::from_data(TensorData::new(x, [points]), &device)
                    .reshape([1, points]);
                let gap = squared_gap(p.clone() * x.clone(), t.clone() * x);
                sum = Some(match sum {
                    Some(acc) => acc + gap,
                    None => gap,
                });
            }
            terms.push(("momentum".into(), sum.expect("a grid has an axis")));
        }
        if s.energy != 0.0 {
            terms.push(("energy".into(), squared_gap(p.square(), t.square())));
        }
        let weight = |name: &str| match name {
            "mass" => s.mass,
            "momentum" => s.momentum,
            _ => s.energy,
        };
        let total = terms
            .iter()
            .map(|(name, v)| v.clone().mul_scalar(weight(name)))
            .reduce(|a, b| a + b)
            .expect("at least one weight is set");
        Ok(LossValue { total, terms })
    }
}

impl LossSpec for ConservationSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        for (arg, v) in [
            ("mass", self.mass),
            ("momentum", self.momentum),
            ("energy", self.energy),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(BuildError::at(arg, "must be >= 0"));
            }
        }
        if self.mass == 0.0 && self.momentum == 0.0 && self.energy == 0.0 {
            return Err(BuildError::new("mass, momentum and energy are all 0")
                .hint("give at least one a weight"));
        }
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Float,
            "conservation compares floats",
        )?;
        Ok(Box::new(Conservation(self.clone())))
    }
}
