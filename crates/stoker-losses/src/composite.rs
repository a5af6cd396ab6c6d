//! `weighted_sum`: named terms from YAML, each logged on its own.

use serde::{Deserialize, Serialize};
use stoker::prelude::*;
use stoker::registry::{AnySpec, Kind, parse_nested};

/// One term of a composite loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermSpec {
    /// A registered loss.
    pub name: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Option<serde_yaml::Value>,
    /// Its weight in the sum.
    #[serde(default = "one")]
    pub weight: f64,
    /// The name it is logged under (`<split>_loss_<label>`); the loss's name when not given.
    #[serde(default)]
    pub label: Option<String>,
}

fn one() -> f64 {
    1.0
}

/// Builds a nested loss named at `at` in the outer args.
pub fn nested_loss(
    name: &str,
    args: Option<serde_yaml::Value>,
    at: &str,
    ctx: &BuildContext,
) -> std::result::Result<Box<dyn Loss>, BuildError> {
    let AnySpec::Loss(spec) = parse_nested(Kind::Loss, name, args, at)?.spec else {
        return Err(BuildError::at(
            format!("{at}.name"),
            format!("`{name}` is not a loss"),
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

/// A weighted sum of registered losses, each term logged on its own (unweighted) as <split>_loss_<label> (and a term's own parts as <split>_loss_<label>_<part>): `terms: [{name: mse, label: data}, {name: h1, weight: 0.1}]`.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "weighted_sum")]
pub struct WeightedSumSpec {
    /// The terms: `{name, args, weight, label}`.
    pub terms: Vec<TermSpec>,
}

struct WeightedSum {
    terms: Vec<(String, f64, Box<dyn Loss>)>,
}

impl Loss for WeightedSum {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let mut total: Option<Tensor<1>> = None;
        let mut logged = Vec::new();
        for (label, weight, loss) in &self.terms {
            let value = loss
                .forward(output, batch)
                .map_err(|e| StokerError::msg(format!("term `{label}`: {e}")))?;
            let weighted = value.total.clone().mul_scalar(*weight);
            total = Some(match total {
                Some(t) => t + weighted,
                None => weighted,
            });
            logged.push((label.clone(), value.total));
            // A composite term's own parts, as `<label>_<part>`.
            for (part, t) in value.terms {
                logged.push((format!("{label}_{part}"), t));
            }
        }
        Ok(LossValue {
            total: total.expect("at least one term"),
            terms: logged,
        })
    }
}

impl LossSpec for WeightedSumSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        if self.terms.is_empty() {
            return Err(BuildError::at("terms", "has no term")
                .hint("e.g. terms: [{name: mse, label: data}]"));
        }
        let mut terms: Vec<(String, f64, Box<dyn Loss>)> = Vec::new();
        for (i, term) in self.terms.iter().enumerate() {
            let at = format!("terms[{i}]");
            if !term.weight.is_finite() {
                return Err(BuildError::at(format!("{at}.weight"), "must be a number"));
            }
            let label = term.label.clone().unwrap_or_else(|| term.name.clone());
            if terms.iter().any(|(l, _, _)| *l == label) {
                return Err(BuildError::at(
                    format!("{at}.label"),
                    format!("`{label}` names two terms"),
                )
                .hint("give each term its own label"));
            }
            let loss = nested_loss(&term.name, term.args.clone(), &at, ctx)?;
            terms.push((label, term.weight, loss));
        }
        Ok(Box::new(WeightedSum { terms }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_composite_terms_parts_are_logged_under_its_label() {
        let device = Device::flex();
        let ctx = BuildContext::with_float_tensors(&device, &[("y", &[1])]);
        let spec: WeightedSumSpec = serde_yaml::from_str(
            "{terms: [{name: mse, label: plain}, {name: weighted_sum, label: inner, weight: 3.0, \
             args: {terms: [{name: mse, label: a}, {name: mse, label: b, weight: 2.0}]}}]}",
        )
        .unwrap();
        let column =
            |v: [f32; 2]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [2, 1]), &device);
        let batch = Batch::batch().with_float("y", column([0.0, 0.0]));
        // Squared errors 1 and 4: mse 2.5; inner = 2.5 + 2 x 2.5 = 7.5; total 2.5 + 3 x 7.5.
        let output = Output::output().with_float("pred", column([1.0, 2.0]));
        let value = spec.build(&ctx).unwrap().forward(&output, &batch).unwrap();
        let scalar = |t: &Tensor<1>| t.clone().into_data().try_to_vec::<f32>().unwrap()[0];
        let terms: Vec<(&str, f32)> = value
            .terms
            .iter()
            .map(|(l, t)| (l.as_str(), scalar(t)))
            .collect();
        assert_eq!(
            terms,
            [
                ("plain", 2.5),
                ("inner", 7.5),
                ("inner_a", 2.5),
                ("inner_b", 2.5)
            ]
        );
        assert_eq!(scalar(&value.total), 25.0);
    }
}
