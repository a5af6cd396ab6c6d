//! `jsonl`: one JSON object per logged row, as the bearing-fault seed's MetricLogger writes.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use stoker::fs::write_atomic;
use stoker::prelude::*;

/// `metrics.jsonl` in the run directory: one JSON object per logged row, `{"epoch": 0, "step": 50, "train_loss_step": 0.41, ...}`, appended as training goes (a crashed run keeps every row written so far).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(logger, name = "jsonl")]
pub struct JsonlSpec {}

/// Writes `metrics.jsonl`.
#[derive(Default)]
pub struct JsonlLogger {
    path: Option<PathBuf>,
    rows: usize,
}

/// A row as one line of JSON (no newline). Values that are not finite are written as `null`,
/// which JSON has in place of NaN and infinities.
pub fn row_json(row: &LogRow) -> String {
    // Written by hand to keep the logged order (serde_json's map sorts its keys).
    let mut line = format!("{{\"epoch\":{},\"step\":{}", row.epoch, row.step);
    for (name, value) in &row.values {
        let value = serde_json::Number::from_f64(*value)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null);
        line.push_str(&format!(
            ",{}:{value}",
            serde_json::Value::from(name.as_str())
        ));
    }
    line.push('}');
    line
}

impl Logger for JsonlLogger {
    fn start(&mut self, run: &RunInfo) -> Result<()> {
        let path = run.dir.join("metrics.jsonl");
        write_atomic(&path, b"")?;
        self.path = Some(path);
        self.rows = 0;
        Ok(())
    }

    fn log(&mut self, row: &LogRow) -> Result<()> {
        let path = self
            .path
            .as_ref()
            .ok_or_else(|| StokerError::msg("the jsonl logger was not started"))?;
        let mut file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| StokerError::io(path, e))?;
        writeln!(file, "{}", row_json(row)).map_err(|e| StokerError::io(path, e))?;
        self.rows += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "rows": self.rows })
    }

    fn resume(&mut self, run: &RunInfo, state: &serde_json::Value) -> Result<()> {
        let path = run.dir.join("metrics.jsonl");
        let keep = state.get("rows").and_then(serde_json::Value::as_u64);
        let (Some(keep), Ok(text)) = (keep, std::fs::read_to_string(&path)) else {
            return self.start(run);
        };
        let lines: Vec<&str> = text.lines().collect();
        let keep = keep as usize;
        if lines.len() < keep {
            return Err(StokerError::msg(format!(
                "{} has {} rows but the checkpoint was written after row {keep}",
                path.display(),
                lines.len()
            )));
        }
        // Rows logged after the checkpoint will be logged again.
        let mut kept = lines[..keep].join("\n");
        if keep > 0 {
            kept.push('\n');
        }
        write_atomic(&path, kept.as_bytes())?;
        self.path = Some(path);
        self.rows = keep;
        Ok(())
    }
}

impl LoggerSpec for JsonlSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn Logger>, BuildError> {
        Ok(Box::new(JsonlLogger::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_object_per_row_and_truncates_on_resume() {
        let dir = std::env::temp_dir().join(format!("stoker-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = RunInfo {
            name: "t".into(),
            version: 0,
            dir: dir.clone(),
            config_yaml: String::new(),
        };
        let row = |step, value| LogRow {
            epoch: 0,
            step,
            values: vec![("train_loss".into(), value), ("lr".into(), 0.5)],
        };
        let mut logger = JsonlLogger::default();
        logger.start(&run).unwrap();
        logger.log(&row(1, 0.25)).unwrap();
        let state = logger.state();
        logger.log(&row(2, f64::NAN)).unwrap();
        let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
        assert_eq!(
            text,
            "{\"epoch\":0,\"step\":1,\"train_loss\":0.25,\"lr\":0.5}\n{\"epoch\":0,\"step\":2,\"train_loss\":null,\"lr\":0.5}\n"
        );
        let mut resumed = JsonlLogger::default();
        resumed.resume(&run, &state).unwrap();
        resumed.log(&row(2, 0.125)).unwrap();
        let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.ends_with("\"step\":2,\"train_loss\":0.125,\"lr\":0.5}\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
