//! The conventional tensor names, as serde defaults for components' arguments
//! (`#[serde(default = "stoker::names::input")]`): a model reads `x` and writes `pred`; a loss or
//! metric compares `pred` with the batch's `y`.

/// `x`: the batch tensor a model reads.
pub fn input() -> String {
    "x".into()
}

/// `y`: the batch tensor holding the targets.
pub fn target() -> String {
    "y".into()
}

/// `pred`: the model output holding the prediction.
pub fn prediction() -> String {
    "pred".into()
}
