//! `csv`: Lightning's CSVLogger layout.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stoker::fs::write_atomic;
use stoker::prelude::*;

/// Lightning's CSV layout: `metrics.csv` in the run directory, one row per logged epoch or step with empty cells for metrics not logged then, and `hparams.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(logger, name = "csv")]
pub struct CsvSpec {}

/// Writes `metrics.csv` and `hparams.yaml`.
#[derive(Default)]
pub struct CsvLogger {
    path: Option<PathBuf>,
    columns: Vec<String>,
    rows: Vec<LogRow>,
}

fn cell(value: f64) -> String {
    format!("{value}")
}

impl CsvLogger {
    fn line(&self, row: &LogRow) -> String {
        let mut cells = vec![row.epoch.to_string(), row.step.to_string()];
        for column in &self.columns[2..] {
            cells.push(
                row.values
                    .iter()
                    .find(|(k, _)| k == column)
                    .map(|(_, v)| cell(*v))
                    .unwrap_or_default(),
            );
        }
        cells.join(",")
    }

    fn rewrite(&self, path: &Path) -> Result<()> {
        let mut text = self.columns.join(",");
        text.push('\n');
        for row in &self.rows {
            text.push_str(&self.line(row));
            text.push('\n');
        }
        write_atomic(path, text.as_bytes())
    }
}

impl Logger for CsvLogger {
    fn start(&mut self, run: &RunInfo) -> Result<()> {
        write_atomic(&run.dir.join("hparams.yaml"), run.config_yaml.as_bytes())?;
        let path = run.dir.join("metrics.csv");
        self.columns = vec!["epoch".into(), "step".into()];
        self.rows.clear();
        self.rewrite(&path)?;
        self.path = Some(path);
        Ok(())
    }

    fn log(&mut self, row: &LogRow) -> Result<()> {
        let path = self
            .path
            .clone()
            .ok_or_else(|| StokerError::msg("the csv logger was not started"))?;
        let mut new_columns = false;
        for (key, _) in &row.values {
            if !self.columns.contains(key) {
                self.columns.push(key.clone());
                new_columns = true;
            }
        }
        self.rows.push(row.clone());
        if new_columns {
            // As Lightning does: a new metric rewrites the file under the wider header.
            return self.rewrite(&path);
        }
        let line = self.line(row);
        let mut file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| StokerError::io(&path, e))?;
        writeln!(file, "{line}").map_err(|e| StokerError::io(&path, e))
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "rows": self.rows.len() })
    }

    fn resume(&mut self, run: &RunInfo, state: &serde_json::Value) -> Result<()> {
        let path = run.dir.join("metrics.csv");
        let keep = state.get("rows").and_then(serde_json::Value::as_u64);
        let (Some(keep), Ok(text)) = (keep, std::fs::read_to_string(&path)) else {
            return self.start(run);
        };
        let (columns, rows) = parse(&text).map_err(|e| {
            StokerError::msg(format!("{}: cannot continue it: {e}", path.display()))
        })?;
        if rows.len() < keep as usize {
            return Err(StokerError::msg(format!(
                "{} has {} rows but the checkpoint was written after row {keep}",
                path.display(),
                rows.len()
            )));
        }
        write_atomic(&run.dir.join("hparams.yaml"), run.config_yaml.as_bytes())?;
        self.columns = columns;
        self.rows = rows;
        // Rows logged after the checkpoint will be logged again.
        self.rows.truncate(keep as usize);
        self.rewrite(&path)?;
        self.path = Some(path);
        Ok(())
    }
}

/// Reads a `metrics.csv` back into its columns and rows.
fn parse(text: &str) -> std::result::Result<(Vec<String>, Vec<LogRow>), String> {
    let mut lines = text.lines();
    let columns: Vec<String> = lines
        .next()
        .ok_or("the file is empty")?
        .split(',')
        .map(str::to_string)
        .collect();
    if columns.len() < 2 || columns[0] != "epoch" || columns[1] != "step" {
        return Err("the header does not start with epoch,step".into());
    }
    let mut rows = Vec::new();
    for (n, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != columns.len() {
            return Err(format!(
                "row {} has {} cells, the header {}",
                n + 1,
                cells.len(),
                columns.len()
            ));
        }
        let number = |cell: &str| {
            cell.parse::<usize>()
                .map_err(|_| format!("row {}: `{cell}` is not a count", n + 1))
        };
        let mut values = Vec::new();
        for (column, cell) in columns.iter().zip(&cells).skip(2) {
            if !cell.is_empty() {
                let value = cell
                    .parse::<f64>()
                    .map_err(|_| format!("row {}: `{cell}` is not a number", n + 1))?;
                values.push((column.clone(), value));
            }
        }
        rows.push(LogRow {
            epoch: number(cells[0])?,
            step: number(cells[1])?,
            values,
        });
    }
    Ok((columns, rows))
}

impl LoggerSpec for CsvSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn Logger>, BuildError> {
        Ok(Box::new(CsvLogger::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widens_the_header_and_leaves_empty_cells() {
        let dir = std::env::temp_dir().join(format!("stoker-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = RunInfo {
            name: "t".into(),
            version: 0,
            dir: dir.clone(),
            config_yaml: "name: t\n".into(),
        };
        let mut logger = CsvLogger::default();
        logger.start(&run).unwrap();
        logger
            .log(&LogRow {
                epoch: 0,
                step: 10,
                values: vec![("train_loss".into(), 0.5)],
            })
            .unwrap();
        logger
            .log(&LogRow {
                epoch: 0,
                step: 10,
                values: vec![("val_loss".into(), 0.25)],
            })
            .unwrap();
        logger
            .log(&LogRow {
                epoch: 1,
                step: 20,
                values: vec![("train_loss".into(), 0.125)],
            })
            .unwrap();
        let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
        assert_eq!(
            text,
            "epoch,step,train_loss,val_loss\n0,10,0.5,\n0,10,,0.25\n1,20,0.125,\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("hparams.yaml")).unwrap(),
            "name: t\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
