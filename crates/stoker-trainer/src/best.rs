//! Tracking the best epoch by a monitored metric.

use serde::{Deserialize, Serialize};

/// Whether lower or higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Lower is better (losses, errors).
    #[default]
    Min,
    /// Higher is better (accuracy).
    Max,
}

impl Mode {
    /// Whether `candidate` beats `best` (a NaN never does).
    pub fn improves(self, candidate: f64, best: Option<f64>) -> bool {
        if candidate.is_nan() {
            return false;
        }
        match (self, best) {
            (_, None) => true,
            (Mode::Min, Some(b)) => candidate < b,
            (Mode::Max, Some(b)) => candidate > b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn improves_by_mode_and_never_with_nan() {
        assert!(Mode::Min.improves(1.0, None));
        assert!(Mode::Min.improves(0.5, Some(1.0)));
        assert!(!Mode::Min.improves(1.5, Some(1.0)));
        assert!(Mode::Max.improves(1.5, Some(1.0)));
        assert!(!Mode::Max.improves(f64::NAN, Some(1.0)));
        assert!(!Mode::Min.improves(f64::NAN, None));
    }
}
