//! Tensor files by extension: `.npz` ([`npy`](crate::npy)), `.safetensors`
//! ([`safetensors_file`](crate::safetensors_file)) and `.csv` ([`csv_file`](crate::csv_file)).

use std::path::Path;

use crate::host::HostTensor;
use crate::{csv_file, npy, safetensors_file};

/// The tensor names a file holds (`.npz`, `.safetensors`, or the columns of a `.csv`).
pub fn names_in(path: &Path) -> Result<Vec<String>, String> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("npz") => npy::npz_names(path),
        Some("safetensors") => safetensors_file::names(path),
        Some("csv") => csv_file::names(path),
        _ => Err("unsupported file type; use .npz, .safetensors or .csv".into()),
    }
}

/// Reads the tensors `names` of a `.npz`, `.safetensors` or `.csv` file.
pub fn read(path: &Path, names: &[&str]) -> Result<Vec<HostTensor>, String> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("npz") => npy::read_npz(path, names),
        Some("safetensors") => safetensors_file::read(path, names),
        Some("csv") => csv_file::read(path, names),
        _ => Err("unsupported file type; use .npz, .safetensors or .csv".into()),
    }
}
