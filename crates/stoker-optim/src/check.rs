//! Argument checks shared by the optimizer specs.

use stoker::error::BuildError;

/// A learning rate must be positive and finite.
pub fn lr(value: f64) -> Result<(), BuildError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(BuildError::at(
            "lr",
            format!("{value} is not a positive learning rate"),
        ))
    }
}

/// A value must lie in `[0, 1)` (momentum, dampening, a beta).
pub fn unit(arg: &str, value: f64) -> Result<(), BuildError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(BuildError::at(arg, format!("{value} is not in [0, 1)")))
    }
}

/// A value must be non-negative and finite (weight decay, epsilon).
pub fn non_negative(arg: &str, value: f64) -> Result<(), BuildError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(BuildError::at(arg, format!("{value} must be >= 0")))
    }
}
