//! Parameter groups: parameters picked by path patterns, with their own learning-rate
//! multiplier and weight decay (e.g. no weight decay on biases and norm layers).

use serde::{Deserialize, Serialize};
use stoker::burn::module::ParamGroup;
use stoker::burn::optim::{ModuleOptimizer, Optimizer};
use stoker::prelude::*;

/// One parameter group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Glob patterns on parameter paths: `*.bias`, `*norm*`, `encoder.*` (`*` any text, `?` one character).
    pub params: Vec<String>,
    /// Multiplier of the learning rate (and of any schedule) for these parameters.
    #[serde(default = "one")]
    pub lr_scale: f64,
    /// Weight decay for these parameters; the optimizer's when not given.
    #[serde(default)]
    pub weight_decay: Option<f64>,
}

fn one() -> f64 {
    1.0
}

/// The anchored regex of a glob pattern.
pub fn glob_to_regex(glob: &str) -> String {
    let mut out = String::from("^");
    for c in glob.chars() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            c if "\\.+()[]{}|^$".contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('$');
    out
}

/// Whether `path` matches `glob`.
pub fn glob_matches(glob: &str, path: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let (p, s): (Vec<char>, Vec<char>) = (glob.chars().collect(), path.chars().collect());
    go(&p, &s)
}

/// A `ModuleOptimizer` applying `base` to every parameter and, for each group (the last match
/// wins), the rule `make(group)` builds.
pub fn build<R: Optimizer>(
    base: R,
    groups: &[GroupSpec],
    ctx: &BuildContext,
    make: impl Fn(&GroupSpec) -> R,
) -> std::result::Result<ModuleOptimizer, BuildError> {
    let mut optimizer = ModuleOptimizer::from(base);
    let parameters = ctx.parameters.clone().unwrap_or_default();
    for (i, group) in groups.iter().enumerate() {
        let arg = format!("groups[{i}].params");
        if group.params.is_empty() {
            return Err(
                BuildError::at(arg, "names no pattern").hint("e.g. params: ['*.bias', '*norm*']")
            );
        }
        if !(group.lr_scale.is_finite() && group.lr_scale >= 0.0) {
            return Err(BuildError::at(
                format!("groups[{i}].lr_scale"),
                "must be >= 0",
            ));
        }
        if let Some(wd) = group.weight_decay
            && !(wd.is_finite() && wd >= 0.0)
        {
            return Err(BuildError::at(
                format!("groups[{i}].weight_decay"),
                "must be >= 0",
            ));
        }
        if !parameters.is_empty()
            && !parameters
                .iter()
                .any(|p| group.params.iter().any(|g| glob_matches(g, p)))
        {
            return Err(BuildError::at(
                arg,
                format!("{:?} matches no parameter of the model", group.params),
            )
            .hint(format!("the parameters are: {}", parameters.join(", "))));
        }
        let regexes: Vec<String> = group.params.iter().map(|g| glob_to_regex(g)).collect();
        let matcher = ParamGroup::from_any_regexes(regexes)
            .map_err(|e| BuildError::at(arg, format!("{e:?}")))?;
        optimizer = optimizer.with_group(matcher, make(group), None);
    }
    Ok(optimizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_paths() {
        assert!(glob_matches("*.bias", "layers.0.bias"));
        assert!(!glob_matches("*.bias", "layers.0.weight"));
        assert!(glob_matches("*norm*", "blocks.1.layer_norm.gamma"));
        assert!(glob_matches("layers.?.weight", "layers.3.weight"));
        assert!(!glob_matches("layers.?.weight", "layers.12.weight"));
        assert_eq!(glob_to_regex("*.bias"), r"^.*\.bias$");
    }
}
