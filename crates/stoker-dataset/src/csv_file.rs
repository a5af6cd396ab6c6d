//! CSV files with a header row: each column is a tensor `[rows]`, int64 when every cell is an
//! integer, float32 otherwise. Commas separate cells; quoted cells are not supported.

use std::path::Path;

use crate::host::HostTensor;

/// The header and the rows of cells.
fn parse(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or("the file is empty")?;
    if header.contains('"') {
        return Err("quoted cells are not supported; write plain comma-separated values".into());
    }
    let names: Vec<String> = header.split(',').map(|c| c.trim().to_string()).collect();
    let mut rows = Vec::new();
    for (number, line) in lines {
        let cells: Vec<String> = line.split(',').map(|c| c.trim().to_string()).collect();
        if cells.len() != names.len() {
            return Err(format!(
                "line {} has {} cells, the header {}",
                number + 1,
                cells.len(),
                names.len()
            ));
        }
        rows.push(cells);
    }
    Ok((names, rows))
}

/// The column names.
pub fn names(path: &Path) -> Result<Vec<String>, String> {
    parse(path).map(|(names, _)| names)
}

/// The columns `wanted` as tensors.
pub fn read(path: &Path, wanted: &[&str]) -> Result<Vec<HostTensor>, String> {
    let (names, rows) = parse(path)?;
    wanted
        .iter()
        .map(|&name| {
            let column = names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| format!("no column `{name}`"))?;
            let cells: Vec<&str> = rows.iter().map(|r| r[column].as_str()).collect();
            if let Ok(ints) = cells
                .iter()
                .map(|c| c.parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
            {
                return Ok(HostTensor::i64(name, vec![ints.len()], ints));
            }
            let floats = cells
                .iter()
                .enumerate()
                .map(|(row, c)| {
                    c.parse::<f32>().map_err(|_| {
                        format!(
                            "column `{name}`, data row {}: `{c}` is not a number",
                            row + 1
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(HostTensor::f32(name, vec![floats.len()], floats))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostData;

    #[test]
    fn integer_columns_are_labels_and_others_floats() {
        let path = std::env::temp_dir().join(format!("stoker-csv-{}.csv", std::process::id()));
        std::fs::write(&path, "a, b,label\n1.5,2,0\n-3,4e-1,2\n\n").unwrap();
        assert_eq!(names(&path).unwrap(), ["a", "b", "label"]);
        let t = read(&path, &["label", "b"]).unwrap();
        assert_eq!(t[0].data, HostData::I64(vec![0, 2]));
        assert_eq!(t[1].data, HostData::F32(vec![2.0, 0.4]));
        std::fs::write(&path, "a,b\n1,x\n").unwrap();
        assert!(read(&path, &["b"]).unwrap_err().contains("data row 1"));
        std::fs::remove_file(&path).unwrap();
    }
}
