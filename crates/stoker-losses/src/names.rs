//! Which tensors a loss compares, and checking them against the data.

use stoker::data::{DataInfo, ElementKind};
use stoker::error::BuildError;

/// The default names of the model's prediction (`pred`) and of the batch's target (`y`).
pub use stoker::names::{prediction as default_pred, target as default_target};

/// Checks the data has a target tensor `name` of `kind`.
pub fn check_target(
    data: &DataInfo,
    name: &str,
    kind: ElementKind,
    why: &str,
) -> Result<(), BuildError> {
    let tensor = data.tensor(name).ok_or_else(|| {
        BuildError::at("target", format!("the data has no tensor `{name}`"))
            .hint(format!("the data's tensors are: {}", data.tensor_names()))
    })?;
    if tensor.kind != kind {
        let listing = data
            .tensors
            .iter()
            .map(|t| format!("{} ({} {:?})", t.name, kind_word(t.kind), t.sample_shape))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(BuildError::at(
            "target",
            format!(
                "tensor `{name}` holds {} values; {why}",
                kind_word(tensor.kind)
            ),
        )
        .hint(format!(
            "point `target` at a tensor of {} values; the data has: {listing}",
            kind_word(kind)
        )));
    }
    Ok(())
}

/// "float" or "integer".
pub fn kind_word(kind: ElementKind) -> &'static str {
    match kind {
        ElementKind::Float => "float",
        ElementKind::Int => "integer",
    }
}
