//! The config as hyperparameters: its leaves under dotted names (`optimizer.args.lr`), as
//! TensorBoard's hparams table and MLflow's params show them.

use serde_yaml::Value;

/// A hyperparameter's value.
#[derive(Debug, Clone, PartialEq)]
pub enum HParam {
    /// A number.
    Number(f64),
    /// A string, or a list written as JSON.
    Text(String),
    /// A boolean.
    Bool(bool),
}

impl std::fmt::Display for HParam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HParam::Number(n) => write!(f, "{n}"),
            HParam::Text(t) => f.write_str(t),
            HParam::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// The leaves of the YAML config `yaml`, in file order; nulls are left out, lists are JSON.
pub fn flatten_config(yaml: &str) -> Vec<(String, HParam)> {
    let mut out = Vec::new();
    if let Ok(value) = serde_yaml::from_str::<Value>(yaml) {
        flatten(&value, String::new(), &mut out);
    }
    out
}

fn flatten(value: &Value, path: String, out: &mut Vec<(String, HParam)>) {
    let param = match value {
        Value::Mapping(map) => {
            for (key, child) in map {
                let key = match key {
                    Value::String(s) => s.clone(),
                    other => serde_json::to_string(other).unwrap_or_default(),
                };
                let path = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                flatten(child, path, out);
            }
            return;
        }
        Value::Null => return,
        Value::Bool(b) => HParam::Bool(*b),
        Value::Number(n) => HParam::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => HParam::Text(s.clone()),
        other => HParam::Text(serde_json::to_string(other).unwrap_or_default()),
    };
    out.push((path, param));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_the_config_into_dotted_names() {
        let hp = flatten_config(
            "name: q\noptimizer:\n  name: adam\n  args: {lr: 0.001, betas: [0.9, 0.99]}\nflag: true\nnothing: null\n",
        );
        let names: Vec<&str> = hp.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "name",
                "optimizer.name",
                "optimizer.args.lr",
                "optimizer.args.betas",
                "flag"
            ]
        );
        assert_eq!(hp[2].1, HParam::Number(0.001));
        assert_eq!(hp[3].1, HParam::Text("[0.9,0.99]".into()));
        assert_eq!(hp[4].1.to_string(), "true");
    }
}
