//! `tensorboard`: event files TensorBoard reads, written with `prost` messages and TFRecord
//! framing (no TensorFlow, no `tensorboard-rs`; see `docs/loggers.md` for why).

pub mod proto;
pub mod record;
mod values;

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use serde::{Deserialize, Serialize};
use stoker::logger::RunStatus;
use stoker::prelude::*;

use proto::{
    Event, HParamsData, HParamsPluginData, PluginData, SessionLog, Summary, SummaryMetadata,
    SummaryValue, ValueKind, What,
};

/// TensorBoard event files in the run directory (`tensorboard --logdir runs` shows every run): scalars for every logged value, the hyperparameters (the flattened config, with the logged metrics) and the config as text, the confusion matrix and the learning curves as images, and, opt-in, histograms of weights and gradients every N steps.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(logger, name = "tensorboard")]
pub struct TensorboardSpec {
    /// Log histograms of every weight and gradient every N optimizer steps (off when not given; each costs a read of all parameters from the device).
    #[serde(default)]
    pub histogram_every_n_steps: Option<usize>,
}

impl LoggerSpec for TensorboardSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn Logger>, BuildError> {
        if self.histogram_every_n_steps == Some(0) {
            return Err(BuildError::at(
                "histogram_every_n_steps",
                "must be at least 1 (or left out for no histograms)",
            ));
        }
        Ok(Box::new(TensorboardLogger {
            histogram_every: self.histogram_every_n_steps,
            ..TensorboardLogger::default()
        }))
    }
}

/// Writes one event file per session (a resume starts a new one).
#[derive(Default)]
pub struct TensorboardLogger {
    histogram_every: Option<usize>,
    file: Option<(PathBuf, File)>,
    /// The last step a value was logged at.
    last_step: usize,
    /// Every scalar tag logged (the hparams table's metrics).
    tags: BTreeSet<String>,
    /// The hyperparameters, for the experiment summary written at the end.
    hparams: Vec<(String, proto::ProtoValue)>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The event files in `dir`, in the order TensorBoard reads them.
pub fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("events.out.tfevents."))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn plugin(name: &str, content: Vec<u8>) -> Option<SummaryMetadata> {
    Some(SummaryMetadata {
        plugin_data: Some(PluginData {
            plugin_name: name.into(),
            content,
        }),
    })
}

impl TensorboardLogger {
    fn open(&mut self, run: &RunInfo) -> Result<()> {
        // Names sort in writing order: seconds, then a sequence number within the directory.
        let sequence = event_files(&run.dir).len();
        let name = format!(
            "events.out.tfevents.{:010}.{}.{}.{sequence}",
            now() as u64,
            hostname(),
            std::process::id()
        );
        let path = run.dir.join(name);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StokerError::io(&path, e))?;
        self.file = Some((path, file));
        self.write(Event {
            wall_time: now(),
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".into())),
        })
    }

    fn write(&mut self, event: Event) -> Result<()> {
        let (path, file) = self
            .file
            .as_mut()
            .ok_or_else(|| StokerError::msg("the tensorboard logger was not started"))?;
        file.write_all(&record::frame(&event.encode_to_vec()))
            .and_then(|()| file.flush())
            .map_err(|e| StokerError::io(path.as_path(), e))
    }

    fn summary(&mut self, step: usize, values: Vec<SummaryValue>) -> Result<()> {
        self.last_step = self.last_step.max(step);
        self.write(Event {
            wall_time: now(),
            step: step as i64,
            what: Some(What::Summary(Summary { value: values })),
        })
    }

    fn hparams(&mut self, step: usize, tag: &str, data: HParamsData) -> Result<()> {
        let content = proto::encode(&HParamsPluginData {
            version: 0,
            data: Some(data),
        });
        self.summary(
            step,
            vec![SummaryValue {
                tag: tag.into(),
                metadata: plugin("hparams", content),
                value: None,
            }],
        )
    }

    fn session_start(&mut self, run: &RunInfo) -> Result<()> {
        self.hparams = values::flatten_config(&run.config_yaml);
        let start = proto::SessionStartInfo {
            hparams: self.hparams.iter().cloned().collect(),
            group_name: String::new(),
            start_time_secs: now(),
        };
        self.hparams(
            0,
            "_hparams_/session_start_info",
            HParamsData::SessionStartInfo(start),
        )?;
        self.log_text("config", 0, &values::code_block(&run.config_yaml))
    }
}

impl Logger for TensorboardLogger {
    fn start(&mut self, run: &RunInfo) -> Result<()> {
        self.last_step = 0;
        self.tags.clear();
        self.open(run)?;
        self.session_start(run)
    }

    fn log(&mut self, row: &LogRow) -> Result<()> {
        let values = row
            .values
            .iter()
            .map(|(tag, value)| {
                self.tags.insert(tag.clone());
                SummaryValue {
                    tag: tag.clone(),
                    metadata: None,
                    value: Some(ValueKind::SimpleValue(*value as f32)),
                }
            })
            .collect();
        self.summary(row.step, values)
    }

    fn log_text(&mut self, tag: &str, step: usize, text: &str) -> Result<()> {
        let tensor = proto::TensorProto {
            dtype: proto::DT_STRING,
            tensor_shape: Some(proto::TensorShapeProto {
                dim: vec![proto::Dim { size: 1 }],
            }),
            string_val: vec![text.as_bytes().to_vec()],
        };
        self.summary(
            step,
            vec![SummaryValue {
                tag: format!("{tag}/text_summary"),
                metadata: plugin("text", Vec::new()),
                value: Some(ValueKind::Tensor(tensor)),
            }],
        )
    }

    fn log_image(&mut self, tag: &str, step: usize, png: &[u8]) -> Result<()> {
        let (width, height) = values::png_size(png)
            .ok_or_else(|| StokerError::msg(format!("image {tag}: not a PNG")))?;
        let image = proto::Image {
            height: height as i32,
            width: width as i32,
            colorspace: values::png_channels(png),
            encoded_image_string: png.to_vec(),
        };
        self.summary(
            step,
            vec![SummaryValue {
                tag: tag.into(),
                metadata: None,
                value: Some(ValueKind::Image(image)),
            }],
        )
    }

    fn log_table(&mut self, tag: &str, step: usize, csv: &str) -> Result<()> {
        match values::count_matrix(csv) {
            Some(matrix) => {
                let png = stoker_report::plot::heatmap_png(&tag.replace('_', " "), &matrix)
                    .map_err(StokerError::msg)?;
                self.log_image(tag, step, &png)
            }
            None => self.log_text(tag, step, &values::markdown_table(csv)),
        }
    }

    fn histogram_every_n_steps(&self) -> Option<usize> {
        self.histogram_every
    }

    fn log_histogram(&mut self, tag: &str, step: usize, values: &[f32]) -> Result<()> {
        let histogram = values::histogram(values);
        self.summary(
            step,
            vec![SummaryValue {
                tag: tag.into(),
                metadata: None,
                value: Some(ValueKind::Histo(histogram)),
            }],
        )
    }

    fn log_summary(&mut self, summary: &serde_json::Value) -> Result<()> {
        let text = serde_json::to_string_pretty(summary).unwrap_or_default();
        let step = self.last_step;
        self.log_text("summary", step, &values::code_block(&text))
    }

    fn set_status(&mut self, status: RunStatus) -> Result<()> {
        let step = self.last_step;
        let experiment = proto::Experiment {
            time_created_secs: now(),
            hparam_infos: self
                .hparams
                .iter()
                .map(|(name, value)| proto::HParamInfo {
                    name: name.clone(),
                    r#type: values::data_type(value),
                })
                .collect(),
            metric_infos: self
                .tags
                .iter()
                .map(|tag| proto::MetricInfo {
                    name: Some(proto::MetricName {
                        group: String::new(),
                        tag: tag.clone(),
                    }),
                })
                .collect(),
        };
        self.hparams(
            step,
            "_hparams_/experiment",
            HParamsData::Experiment(experiment),
        )?;
        let status = match status {
            RunStatus::Finished => 1,
            RunStatus::Failed => 2,
            RunStatus::Interrupted => 0,
        };
        self.hparams(
            step,
            "_hparams_/session_end_info",
            HParamsData::SessionEndInfo(proto::SessionEndInfo {
                status,
                end_time_secs: now(),
            }),
        )
    }

    fn finish(&mut self) -> Result<()> {
        if let Some((path, file)) = self.file.take() {
            file.sync_all().map_err(|e| StokerError::io(&path, e))?;
        }
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "step": self.last_step, "tags": self.tags })
    }

    fn resume(&mut self, run: &RunInfo, state: &serde_json::Value) -> Result<()> {
        let Some(step) = state.get("step").and_then(serde_json::Value::as_u64) else {
            return self.start(run);
        };
        self.last_step = step as usize;
        self.tags = state
            .get("tags")
            .and_then(|t| serde_json::from_value(t.clone()).ok())
            .unwrap_or_default();
        self.open(run)?;
        // TensorBoard drops what earlier files logged at this step or later: the steps after
        // the checkpoint, which this session logs again.
        self.write(Event {
            wall_time: now(),
            step: step as i64 + 1,
            what: Some(What::SessionLog(SessionLog {
                status: proto::SESSION_START,
                checkpoint_path: String::new(),
                msg: format!("resumed after step {step}"),
            })),
        })?;
        self.session_start(run)
    }
}
