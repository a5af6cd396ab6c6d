//! Reading tensors from `.safetensors` files.

use std::path::Path;

use safetensors::SafeTensors;
use safetensors::tensor::Dtype;

use crate::host::{HostData, HostTensor};

fn open(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| e.to_string())
}

/// The tensor names in a safetensors file, sorted.
pub fn names(path: &Path) -> Result<Vec<String>, String> {
    let bytes = open(path)?;
    let file =
        SafeTensors::deserialize(&bytes).map_err(|e| format!("not a safetensors file ({e})"))?;
    let mut names: Vec<String> = file.names().into_iter().map(str::to_string).collect();
    names.sort();
    Ok(names)
}

/// Reads the named tensors of a safetensors file (floats as f32, integers and bools as i64).
pub fn read(path: &Path, names: &[&str]) -> Result<Vec<HostTensor>, String> {
    let bytes = open(path)?;
    let file =
        SafeTensors::deserialize(&bytes).map_err(|e| format!("not a safetensors file ({e})"))?;
    names
        .iter()
        .map(|name| {
            let view = file
                .tensor(name)
                .map_err(|_| format!("no tensor `{name}`"))?;
            let raw = view.data();
            let data = match view.dtype() {
                Dtype::F32 => HostData::F32(
                    raw.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                ),
                Dtype::F64 => HostData::F32(
                    raw.chunks_exact(8)
                        .map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32)
                        .collect(),
                ),
                Dtype::I64 => HostData::I64(
                    raw.chunks_exact(8)
                        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                        .collect(),
                ),
                Dtype::I32 => HostData::I64(
                    raw.chunks_exact(4)
                        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                        .collect(),
                ),
                Dtype::I16 => HostData::I64(
                    raw.chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]) as i64)
                        .collect(),
                ),
                Dtype::I8 => HostData::I64(raw.iter().map(|&b| b as i8 as i64).collect()),
                Dtype::U8 | Dtype::BOOL => HostData::I64(raw.iter().map(|&b| b as i64).collect()),
                other => {
                    return Err(format!(
                        "`{name}` has dtype {other:?}; use F32, F64 or an integer type"
                    ));
                }
            };
            Ok(HostTensor {
                name: name.to_string(),
                shape: view.shape().to_vec(),
                data,
            })
        })
        .collect()
}
