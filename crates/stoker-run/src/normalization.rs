//! Normalization statistics kept with a run (`normalization.safetensors`) and printed by `stats`.

use std::path::Path;

use safetensors::Dtype;
use safetensors::tensor::TensorView;
use stoker::data::NormalizationReport;

use stoker::fs::write_atomic;

/// The report's tensors as a safetensors file (float32, loadable with
/// `safetensors.torch.load_file`).
pub fn to_safetensors(report: &NormalizationReport) -> Result<Vec<u8>, String> {
    let views = report
        .tensors
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| format!("normalization tensor {name}: {e}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    safetensors::serialize(views, None).map_err(|e| e.to_string())
}

/// Writes the report's file into `dir`.
pub fn write(dir: &Path, report: &NormalizationReport) -> Result<(), String> {
    let bytes = to_safetensors(report)?;
    write_atomic(&dir.join(&report.file_name), &bytes).map_err(|e| e.to_string())
}
