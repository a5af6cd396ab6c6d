//! Reading NumPy `.npy` arrays and `.npz` archives (stored or deflated).

use std::io::Read;
use std::path::Path;

use crate::host::{HostData, HostTensor};

/// Parses one `.npy` array.
pub fn parse_npy(name: &str, bytes: &[u8]) -> Result<HostTensor, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(format!("`{name}` is not a .npy array (bad magic)"));
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(format!("`{name}`: truncated .npy header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(format!("`{name}`: unsupported .npy version {v}")),
    };
    let header = std::str::from_utf8(
        bytes
            .get(start..start + header_len)
            .ok_or_else(|| format!("`{name}`: truncated .npy header"))?,
    )
    .map_err(|_| format!("`{name}`: the .npy header is not text"))?;
    let field = |key: &str| -> Result<&str, String> {
        let at = header
            .find(&format!("'{key}'"))
            .ok_or_else(|| format!("`{name}`: the .npy header has no '{key}'"))?;
        let rest = &header[at + key.len() + 2..];
        Ok(rest.trim_start().trim_start_matches(':').trim_start())
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or_else(|| format!("`{name}`: cannot read the dtype"))?;
    let fortran = field("fortran_order")?.starts_with("True");
    let shape_text = field("shape")?;
    let shape_text = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| format!("`{name}`: cannot read the shape"))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| format!("`{name}`: cannot read the shape ({shape_text})"))?;
    let count: usize = shape.iter().product();
    let payload = &bytes[start + header_len..];
    let mut data = decode(name, descr, payload, count)?;
    if fortran {
        data = match data {
            HostData::F32(v) => HostData::F32(fortran_to_c(&v, &shape)),
            HostData::I64(v) => HostData::I64(fortran_to_c(&v, &shape)),
        };
    }
    Ok(HostTensor {
        name: name.to_string(),
        shape,
        data,
    })
}

/// Reorders values stored in Fortran (column-major) order into C (row-major) order.
pub fn fortran_to_c<T: Copy>(values: &[T], shape: &[usize]) -> Vec<T> {
    let rank = shape.len();
    let mut strides = vec![1usize; rank];
    for k in 1..rank {
        strides[k] = strides[k - 1] * shape[k - 1];
    }
    let mut out = Vec::with_capacity(values.len());
    let mut index = vec![0usize; rank];
    for _ in 0..values.len() {
        let offset: usize = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
        out.push(values[offset]);
        // Advance the C-order multi-index: the last dimension fastest.
        for k in (0..rank).rev() {
            index[k] += 1;
            if index[k] < shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}

/// Decodes `count` values of NumPy dtype `descr` (e.g. `<f4`, `|u1`, `>i8`).
fn decode(name: &str, descr: &str, payload: &[u8], count: usize) -> Result<HostData, String> {
    let (order, code) = descr.split_at(1);
    let big = order == ">";
    let size: usize = code[1..]
        .parse()
        .map_err(|_| format!("`{name}`: unsupported dtype {descr}"))?;
    if payload.len() < count * size {
        return Err(format!(
            "`{name}`: the array is truncated ({} bytes for {count} values of {descr})",
            payload.len()
        ));
    }
    let chunks = payload[..count * size].chunks_exact(size).map(|c| {
        let mut b = [0u8; 8];
        b[..size].copy_from_slice(c);
        if big {
            b[..size].reverse();
        }
        b
    });
    let kind = &code[..1];
    Ok(match (kind, size) {
        ("f", 4) => HostData::F32(
            chunks
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        ("f", 8) => HostData::F32(chunks.map(|b| f64::from_le_bytes(b) as f32).collect()),
        ("i", 1) => HostData::I64(chunks.map(|b| b[0] as i8 as i64).collect()),
        ("i", 2) => HostData::I64(
            chunks
                .map(|b| i16::from_le_bytes([b[0], b[1]]) as i64)
                .collect(),
        ),
        ("i", 4) => HostData::I64(
            chunks
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                .collect(),
        ),
        ("i", 8) => HostData::I64(chunks.map(i64::from_le_bytes).collect()),
        ("u" | "b", 1) => HostData::I64(chunks.map(|b| b[0] as i64).collect()),
        ("u", 2) => HostData::I64(
            chunks
                .map(|b| u16::from_le_bytes([b[0], b[1]]) as i64)
                .collect(),
        ),
        ("u", 4) => HostData::I64(
            chunks
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                .collect(),
        ),
        _ => {
            return Err(format!(
                "`{name}`: unsupported dtype {descr} (use float32/64 or an integer type)"
            ));
        }
    })
}

/// The array names in an `.npz` archive, in archive order.
pub fn npz_names(path: &Path) -> Result<Vec<String>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let archive = zip::ZipArchive::new(file).map_err(|e| format!("not an .npz archive ({e})"))?;
    Ok(archive
        .file_names()
        .map(|n| n.strip_suffix(".npy").unwrap_or(n).to_string())
        .collect())
}

/// Reads the named arrays of an `.npz` archive.
pub fn read_npz(path: &Path, names: &[&str]) -> Result<Vec<HostTensor>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| format!("not an .npz archive ({e})"))?;
    names
        .iter()
        .map(|name| {
            let mut entry = archive
                .by_name(&format!("{name}.npy"))
                .map_err(|_| format!("no array `{name}`"))?;
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read `{name}`: {e}"))?;
            parse_npy(name, &bytes)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, payload: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn fortran_order_is_turned_into_c_order() {
        // np.array([[0, 1, 2], [3, 4, 5]], order="F") stores 0, 3, 1, 4, 2, 5.
        let stored: Vec<u8> = [0i64, 3, 1, 4, 2, 5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let bytes = npy("<i8", "(2, 3)", &stored);
        let at = bytes.windows(5).position(|w| w == b"False").unwrap();
        let mut fortran = bytes.clone();
        fortran[at..at + 5].copy_from_slice(b"True ");
        let t = parse_npy("f", &fortran).unwrap();
        assert_eq!(t.data, HostData::I64(vec![0, 1, 2, 3, 4, 5]));
        // Rank 3: c[i][j][k] = 100 i + 10 j + k, shape (2, 3, 2).
        let shape = [2, 3, 2];
        let mut f_order = vec![0i64; 12];
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..2 {
                    f_order[i + 2 * (j + 3 * k)] = 100 * i as i64 + 10 * j as i64 + k as i64;
                }
            }
        }
        let c = fortran_to_c(&f_order, &shape);
        assert_eq!(c[..4], [0, 1, 10, 11]);
        assert_eq!(c[11], 121);
    }

    #[test]
    fn parses_float_int_and_big_endian_arrays() {
        let floats: Vec<u8> = [1.5f32, -2.0, 3.25]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let t = parse_npy("x", &npy("<f4", "(3,)", &floats)).unwrap();
        assert_eq!(t.shape, vec![3]);
        assert_eq!(t.data, HostData::F32(vec![1.5, -2.0, 3.25]));

        let ints: Vec<u8> = [7i64, -1, 0, 2]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let t = parse_npy("y", &npy("<i8", "(2, 2)", &ints)).unwrap();
        assert_eq!(t.shape, vec![2, 2]);
        assert_eq!(t.data, HostData::I64(vec![7, -1, 0, 2]));

        let big: Vec<u8> = [1.0f64, 0.5].iter().flat_map(|v| v.to_be_bytes()).collect();
        let t = parse_npy("z", &npy(">f8", "(2,)", &big)).unwrap();
        assert_eq!(t.data, HostData::F32(vec![1.0, 0.5]));

        let error = parse_npy("c", &npy("<c8", "(1,)", &[0; 8])).unwrap_err();
        assert!(error.contains("unsupported dtype"), "{error}");
        assert!(
            parse_npy("t", &npy("<f4", "(4,)", &floats))
                .unwrap_err()
                .contains("truncated")
        );
    }
}
