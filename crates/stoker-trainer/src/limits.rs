//! How the loop's batch limits, dev runs and clipping are written in YAML.

use serde::{Deserialize, Serialize};
use stoker::error::BuildError;

/// A number of batches (an integer) or a fraction of them (a float), as Lightning reads
/// `limit_train_batches: 10` and `limit_train_batches: 0.25`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Limit {
    /// This many batches.
    Batches(usize),
    /// This fraction of the batches.
    Fraction(f64),
}

impl Limit {
    /// The limit applied to `n` batches: a count is capped at `n`; a positive fraction keeps at
    /// least one batch.
    pub fn of(self, n: usize) -> usize {
        match self {
            Limit::Batches(k) => k.min(n),
            Limit::Fraction(f) if f <= 0.0 => 0,
            Limit::Fraction(f) => ((n as f64 * f) as usize).clamp(1.min(n), n),
        }
    }

    /// Whether it is zero (off).
    pub fn is_zero(self) -> bool {
        matches!(self, Limit::Batches(0)) || matches!(self, Limit::Fraction(f) if f <= 0.0)
    }

    /// Refuses a fraction outside [0, 1], naming the argument `arg`.
    pub fn check(self, arg: &str) -> Result<(), BuildError> {
        match self {
            Limit::Fraction(f) if !(0.0..=1.0).contains(&f) => Err(BuildError::at(
                arg,
                format!("{f} is neither a batch count (an integer) nor a fraction in [0, 1]"),
            )),
            _ => Ok(()),
        }
    }
}

/// `fast_dev_run`: `true` (one batch) or a number of batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FastDevRun {
    /// On (one batch) or off.
    Flag(bool),
    /// On, with this many batches.
    Batches(usize),
}

impl FastDevRun {
    /// The batches per split when on.
    pub fn batches(self) -> Option<usize> {
        match self {
            FastDevRun::Flag(false) | FastDevRun::Batches(0) => None,
            FastDevRun::Flag(true) => Some(1),
            FastDevRun::Batches(n) => Some(n),
        }
    }
}

/// How gradients are clipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipAlgorithm {
    /// One global L2 norm over all parameters, as `torch.nn.utils.clip_grad_norm_`.
    #[default]
    Norm,
    /// Each gradient value clamped to [-v, v], as `torch.nn.utils.clip_grad_value_`.
    Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Limit {
        stoker::__private::serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn limits_read_integers_as_counts_and_floats_as_fractions() {
        assert_eq!(parse("3"), Limit::Batches(3));
        assert_eq!(parse("0.25"), Limit::Fraction(0.25));
        assert_eq!(parse("1.0"), Limit::Fraction(1.0));
        assert_eq!(Limit::Batches(3).of(10), 3);
        assert_eq!(Limit::Batches(30).of(10), 10);
        assert_eq!(Limit::Fraction(0.25).of(10), 2);
        assert_eq!(Limit::Fraction(0.01).of(10), 1);
        assert_eq!(Limit::Fraction(0.0).of(10), 0);
    }
}
