//! The space types a sweep file's `space:` entries name: `uniform`, `log_uniform`, `int` and
//! `choice`. An entry is its own args: `{int: [16, 64], step: 16}` is the `int` type with
//! `int: [16, 64]` and `step: 16`.

use serde::{Deserialize, Serialize};
use stoker::BuildError;
use stoker::Component;
use stoker::spec::SpaceSpec;
use stoker::sweep::Distribution;

fn range_error(key: &str, low: f64, high: f64) -> Option<BuildError> {
    if !low.is_finite() || !high.is_finite() {
        return Some(BuildError::at(
            key,
            format!("[{low}, {high}]: the bounds must be finite numbers"),
        ));
    }
    (low > high).then(|| {
        BuildError::at(key, format!("[{low}, {high}]: low is above high"))
            .hint(format!("write the range low first: [{high}, {low}]"))
    })
}

/// A float drawn uniformly from [low, high] (on a grid of `step` from low when given): `{uniform: [0.5, 5.0]}`.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(space, name = "uniform")]
pub struct UniformSpace {
    /// The range [low, high].
    pub uniform: [f64; 2],
    /// A grid spacing from low (high - low must be a multiple of it); a grid search needs it.
    #[serde(default)]
    pub step: Option<f64>,
}

impl SpaceSpec for UniformSpace {
    fn distribution(&self) -> Result<Distribution, BuildError> {
        let [low, high] = self.uniform;
        if let Some(error) = range_error("uniform", low, high) {
            return Err(error);
        }
        if let Some(step) = self.step {
            if step.is_nan() || step <= 0.0 {
                return Err(BuildError::at(
                    "step",
                    format!("{step}: a step is positive"),
                ));
            }
            let n = (high - low) / step;
            if (n - n.round()).abs() > 1e-9 * n.max(1.0) {
                return Err(BuildError::at(
                    "step",
                    format!("{step} does not divide the range [{low}, {high}]"),
                )
                .hint(format!(
                    "make high - low a multiple of the step, e.g. high: {}",
                    low + n.floor() * step
                )));
            }
        }
        Ok(Distribution::Float {
            low,
            high,
            log: false,
            step: self.step,
        })
    }

    fn value(&self, internal: f64) -> serde_yaml::Value {
        serde_yaml::Value::from(internal)
    }
}

/// A positive float drawn uniformly in log scale from [low, high] (learning rates, weight decays): `{log_uniform: [1.0e-4, 1.0e-2]}`.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(space, name = "log_uniform")]
pub struct LogUniformSpace {
    /// The range [low, high], low above 0.
    pub log_uniform: [f64; 2],
}

impl SpaceSpec for LogUniformSpace {
    fn distribution(&self) -> Result<Distribution, BuildError> {
        let [low, high] = self.log_uniform;
        if let Some(error) = range_error("log_uniform", low, high) {
            return Err(error);
        }
        if low <= 0.0 {
            return Err(BuildError::at(
                "log_uniform",
                format!("[{low}, {high}]: a log scale needs low above 0"),
            )
            .hint("use `uniform` for a range that includes 0"));
        }
        Ok(Distribution::Float {
            low,
            high,
            log: true,
            step: None,
        })
    }

    fn value(&self, internal: f64) -> serde_yaml::Value {
        serde_yaml::Value::from(internal)
    }
}

fn one() -> i64 {
    1
}

/// An integer from low to high in steps of `step` (or uniformly in log scale with `log: true`): `{int: [16, 64], step: 16}`.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(space, name = "int")]
pub struct IntSpace {
    /// The range [low, high].
    pub int: [i64; 2],
    /// The spacing from low (high - low must be a multiple of it).
    #[serde(default = "one")]
    pub step: i64,
    /// Draw uniformly in log scale (low at least 1, step 1).
    #[serde(default)]
    pub log: bool,
}

impl SpaceSpec for IntSpace {
    fn distribution(&self) -> Result<Distribution, BuildError> {
        let [low, high] = self.int;
        if let Some(error) = range_error("int", low as f64, high as f64) {
            return Err(error);
        }
        if self.step < 1 {
            return Err(BuildError::at(
                "step",
                format!("{}: a step is at least 1", self.step),
            ));
        }
        if (high - low) % self.step != 0 {
            return Err(BuildError::at(
                "step",
                format!("{} does not divide the range [{low}, {high}]", self.step),
            )
            .hint(format!(
                "make high - low a multiple of the step, e.g. [{low}, {}]",
                high - (high - low) % self.step
            )));
        }
        if self.log && (low < 1 || self.step != 1) {
            return Err(BuildError::at(
                "log",
                "a log scale needs low of at least 1 and step 1",
            ));
        }
        Ok(Distribution::Int {
            low,
            high,
            log: self.log,
            step: self.step,
        })
    }

    fn value(&self, internal: f64) -> serde_yaml::Value {
        serde_yaml::Value::from(internal.round() as i64)
    }
}

/// One of a list of values, each any YAML (numbers, names, lists): `{choice: [[8, 16, 32, 32], [16, 32, 64, 64]]}`.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(space, name = "choice")]
pub struct ChoiceSpace {
    /// The values (at least one, each once).
    pub choice: Vec<serde_yaml::Value>,
}

/// How Optuna stores a choice: a number, a string, a bool or null as itself; anything else (a
/// list, a mapping) as its compact JSON text, since Optuna's dashboard and importance functions
/// need choices it can hash.
pub fn choice_label(value: &serde_yaml::Value) -> serde_json::Value {
    let json: serde_json::Value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    match json {
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
            serde_json::Value::String(json.to_string())
        }
        scalar => scalar,
    }
}

impl SpaceSpec for ChoiceSpace {
    fn distribution(&self) -> Result<Distribution, BuildError> {
        if self.choice.is_empty() {
            return Err(BuildError::at("choice", "has no values")
                .hint("list at least one value: `{choice: [a, b]}`"));
        }
        let choices: Vec<serde_json::Value> = self.choice.iter().map(choice_label).collect();
        for (i, label) in choices.iter().enumerate() {
            if choices[..i].contains(label) {
                return Err(BuildError::at(
                    format!("choice[{i}]"),
                    format!("{label} is listed twice"),
                ));
            }
        }
        Ok(Distribution::Categorical { choices })
    }

    fn value(&self, internal: f64) -> serde_yaml::Value {
        self.choice[internal as usize].clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> serde_yaml::Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn ranges_and_steps_are_checked() {
        let reversed = IntSpace {
            int: [64, 16],
            step: 1,
            log: false,
        };
        assert!(
            reversed
                .distribution()
                .unwrap_err()
                .to_string()
                .contains("low is above high")
        );
        let uneven = IntSpace {
            int: [16, 60],
            step: 16,
            log: false,
        };
        let error = uneven.distribution().unwrap_err();
        assert!(error.to_string().contains("does not divide"), "{error}");
        assert!(error.hint.unwrap().contains("[16, 48]"));
        let log_zero = LogUniformSpace {
            log_uniform: [0.0, 1.0],
        };
        assert!(log_zero.distribution().is_err());
        let uniform = UniformSpace {
            uniform: [0.0, 1.0],
            step: Some(0.25),
        };
        assert_eq!(
            uniform.distribution().unwrap().grid_points().unwrap(),
            vec![0.0, 0.25, 0.5, 0.75, 1.0]
        );
        let empty = ChoiceSpace { choice: vec![] };
        assert!(
            empty
                .distribution()
                .unwrap_err()
                .to_string()
                .contains("no values")
        );
    }

    #[test]
    fn list_choices_are_stored_as_their_json_text_and_set_as_written() {
        let space = ChoiceSpace {
            choice: vec![yaml("[8, 16, 32, 32]"), yaml("adam"), yaml("3")],
        };
        let Distribution::Categorical { choices } = space.distribution().unwrap() else {
            panic!()
        };
        assert_eq!(
            choices,
            vec![
                serde_json::json!("[8,16,32,32]"),
                serde_json::json!("adam"),
                serde_json::json!(3)
            ]
        );
        assert_eq!(space.value(0.0), yaml("[8, 16, 32, 32]"));
        assert_eq!(space.value(2.0), yaml("3"));
    }
}
