//! What a report shows, read from a run directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One logged row: the epoch, the step, and the values logged there.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The epoch.
    pub epoch: usize,
    /// The global optimizer step.
    pub step: usize,
    /// The values, by name.
    pub values: BTreeMap<String, f64>,
}

/// A run, as its directory holds it.
#[derive(Debug, Clone)]
pub struct RunData {
    /// The run directory.
    pub dir: PathBuf,
    /// `<name>/version_<N>`.
    pub label: String,
    /// The logged rows, in order.
    pub rows: Vec<Row>,
    /// `summary.json`, when the run wrote one.
    pub summary: Option<serde_json::Value>,
    /// `config.yaml`.
    pub config: Option<String>,
    /// Confusion matrices by split (`confusion_matrix_<split>.csv`).
    pub confusion: BTreeMap<String, Vec<Vec<u64>>>,
}

fn parse_csv(text: &str) -> Result<Vec<Row>, String> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or("metrics.csv is empty")?
        .split(',')
        .collect();
    let mut rows = Vec::new();
    for (n, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let number = |i: usize| {
            cells
                .get(i)
                .and_then(|c| c.parse::<usize>().ok())
                .ok_or(format!("metrics.csv row {}: no epoch/step", n + 1))
        };
        let mut values = BTreeMap::new();
        for (name, cell) in header.iter().zip(&cells).skip(2) {
            if let Ok(v) = cell.parse::<f64>() {
                values.insert(name.to_string(), v);
            }
        }
        rows.push(Row {
            epoch: number(0)?,
            step: number(1)?,
            values,
        });
    }
    Ok(rows)
}

fn parse_jsonl(text: &str) -> Result<Vec<Row>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            let value: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| format!("metrics.jsonl line {}: {e}", n + 1))?;
            let object = value
                .as_object()
                .ok_or(format!("metrics.jsonl line {}: not an object", n + 1))?;
            let count = |k: &str| {
                object
                    .get(k)
                    .and_then(serde_json::Value::as_u64)
                    .map(|v| v as usize)
                    .ok_or(format!("metrics.jsonl line {}: no {k}", n + 1))
            };
            let values = object
                .iter()
                .filter(|(k, _)| *k != "epoch" && *k != "step")
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect();
            Ok(Row {
                epoch: count("epoch")?,
                step: count("step")?,
                values,
            })
        })
        .collect()
}

fn parse_confusion(text: &str) -> Option<Vec<Vec<u64>>> {
    text.lines()
        .skip(1)
        .map(|l| l.split(',').skip(1).map(|v| v.parse().ok()).collect())
        .collect()
}

impl RunData {
    /// Reads a run directory: `metrics.csv` (or `metrics.jsonl`), `summary.json`, `config.yaml`
    /// and the confusion matrices.
    pub fn load(dir: &Path) -> Result<RunData, String> {
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
        let rows = match (read("metrics.csv"), read("metrics.jsonl")) {
            (Some(csv), _) => parse_csv(&csv)?,
            (None, Some(jsonl)) => parse_jsonl(&jsonl)?,
            (None, None) => {
                return Err(format!(
                    "{} has neither metrics.csv nor metrics.jsonl (log with the csv or jsonl logger)",
                    dir.display()
                ));
            }
        };
        let mut confusion = BTreeMap::new();
        for split in ["train", "val", "test"] {
            if let Some(m) = read(&format!("confusion_matrix_{split}.csv"))
                .as_deref()
                .and_then(parse_confusion)
            {
                confusion.insert(split.to_string(), m);
            }
        }
        let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let version = canonical
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = canonical
            .parent()
            .and_then(Path::file_name)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(RunData {
            dir: dir.to_path_buf(),
            label: format!("{name}/{version}"),
            rows,
            summary: read("summary.json").and_then(|s| serde_json::from_str(&s).ok()),
            config: read("config.yaml"),
            confusion,
        })
    }

    /// Every logged name, in first-logged order.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for row in &self.rows {
            for name in row.values.keys() {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        names
    }

    /// `(step, value)` of every row that logged `name`.
    pub fn series(&self, name: &str) -> Vec<(f64, f64)> {
        self.rows
            .iter()
            .filter_map(|r| {
                r.values
                    .get(name)
                    .filter(|v| v.is_finite())
                    .map(|v| (r.step as f64, *v))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_csv_with_empty_cells_and_jsonl() {
        let rows =
            parse_csv("epoch,step,train_loss_step,val_loss\n0,5,0.5,\n0,10,,0.25\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].step, 10);
        assert_eq!(rows[1].values.get("val_loss"), Some(&0.25));
        assert!(!rows[1].values.contains_key("train_loss_step"));
        let rows = parse_jsonl("{\"epoch\": 0, \"step\": 5, \"train_loss\": 0.5}\n").unwrap();
        assert_eq!(rows[0].values["train_loss"], 0.5);
        assert_eq!(
            parse_confusion("true\\predicted,0,1\n0,3,1\n1,0,4\n"),
            Some(vec![vec![3, 1], vec![0, 4]])
        );
    }
}
