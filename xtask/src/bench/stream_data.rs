//! The data of the `stream` workloads: a folder of two `.npy` files, `x.npy` (float32
//! [rows, 2048], uniform in [-1, 1)) and `y.npy` (float32 [rows, 1], twice the mean of a row's
//! first 16 values, so the loss falls), generated once under `target/bench-data/` and reused.
//! stoker and the PyTorch reference read the same files.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Values per row of `x`.
pub const FEATURES: usize = 2048;

/// The rows of the short mode's (CI's) data: 32 MiB.
pub const SHORT_ROWS: usize = 4096;

fn npy_header(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + dict + newline, padded to a multiple of 64.
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut header = b"\x93NUMPY\x01\x00".to_vec();
    header.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    header.extend_from_slice(dict.as_bytes());
    header
}

/// The generator of `x`: splitmix64, one value per 32 bits.
struct Values(u64);

impl Values {
    fn next_pair(&mut self) -> [f32; 2] {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let unit = |bits: u64| (bits >> 8) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
        [unit(z & 0xFFFF_FFFF), unit(z >> 32)]
    }
}

fn expected_size(shape: &[usize]) -> u64 {
    (npy_header(shape).len() + shape.iter().product::<usize>() * 4) as u64
}

/// The folder of the `rows`-row data set, written first when missing or incomplete.
pub fn ensure(root: &Path, rows: usize) -> Result<PathBuf, String> {
    let dir = root.join(format!("stream-{rows}"));
    let x_path = dir.join("x.npy");
    let y_path = dir.join("y.npy");
    let complete = |path: &Path, shape: &[usize]| {
        std::fs::metadata(path).is_ok_and(|m| m.len() == expected_size(shape))
    };
    if complete(&x_path, &[rows, FEATURES]) && complete(&y_path, &[rows, 1]) {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let gib = (rows * FEATURES * 4) as f64 / 1e9;
    eprintln!(
        "bench: generating the stream data ({rows} rows, {gib:.2} GB) in {}",
        dir.display()
    );
    let io = |path: &Path, e: std::io::Error| format!("{}: {e}", path.display());
    let x_tmp = dir.join("x.npy.partial");
    let y_tmp = dir.join("y.npy.partial");
    let mut x = std::io::BufWriter::with_capacity(
        16 << 20,
        std::fs::File::create(&x_tmp).map_err(|e| io(&x_tmp, e))?,
    );
    let mut y = std::io::BufWriter::new(std::fs::File::create(&y_tmp).map_err(|e| io(&y_tmp, e))?);
    x.write_all(&npy_header(&[rows, FEATURES]))
        .map_err(|e| io(&x_tmp, e))?;
    y.write_all(&npy_header(&[rows, 1]))
        .map_err(|e| io(&y_tmp, e))?;
    let mut values = Values(rows as u64);
    let mut row = vec![0f32; FEATURES];
    let mut bytes = vec![0u8; FEATURES * 4];
    for _ in 0..rows {
        for pair in row.chunks_exact_mut(2) {
            pair.copy_from_slice(&values.next_pair());
        }
        for (b, v) in bytes.chunks_exact_mut(4).zip(&row) {
            b.copy_from_slice(&v.to_le_bytes());
        }
        x.write_all(&bytes).map_err(|e| io(&x_tmp, e))?;
        let target = 2.0 * row[..16].iter().sum::<f32>() / 16.0;
        y.write_all(&target.to_le_bytes())
            .map_err(|e| io(&y_tmp, e))?;
    }
    x.flush().map_err(|e| io(&x_tmp, e))?;
    y.flush().map_err(|e| io(&y_tmp, e))?;
    std::fs::rename(&x_tmp, &x_path).map_err(|e| io(&x_path, e))?;
    std::fs::rename(&y_tmp, &y_path).map_err(|e| io(&y_path, e))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_numpys_and_the_data_is_written_once() {
        // np.save(f, np.zeros((3, 2048), np.float32)) writes exactly this 128-byte header.
        let header = npy_header(&[3, FEATURES]);
        assert_eq!(header.len(), 128);
        assert!(
            String::from_utf8_lossy(&header)
                .contains("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2048), }")
        );
        assert!(String::from_utf8_lossy(&npy_header(&[3, 1])).contains("'shape': (3, 1)"));
        let root = std::env::temp_dir().join(format!("stoker-stream-data-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = ensure(&root, 5).unwrap();
        let x = std::fs::read(dir.join("x.npy")).unwrap();
        assert_eq!(x.len() as u64, expected_size(&[5, FEATURES]));
        let y = std::fs::read(dir.join("y.npy")).unwrap();
        let first_row: Vec<f32> = x[128..128 + 16 * 4]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert!(first_row.iter().all(|v| (-1.0..1.0).contains(v)));
        let target = f32::from_le_bytes(y[128..132].try_into().unwrap());
        assert_eq!(target, 2.0 * first_row.iter().sum::<f32>() / 16.0);
        // Complete files are kept as they are.
        let modified = std::fs::metadata(dir.join("x.npy"))
            .unwrap()
            .modified()
            .unwrap();
        ensure(&root, 5).unwrap();
        assert_eq!(
            std::fs::metadata(dir.join("x.npy"))
                .unwrap()
                .modified()
                .unwrap(),
            modified
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}
