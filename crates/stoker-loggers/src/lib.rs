//! stoker's loggers, each registered by name; a config lists several under `loggers:`.
//!
//! - `csv` ([`csv::CsvSpec`]): Lightning's `metrics.csv` and `hparams.yaml`.
//! - `jsonl` ([`jsonl::JsonlSpec`]): `metrics.jsonl`, one JSON object per row.
//! - `tensorboard` ([`tensorboard::TensorboardSpec`]): event files TensorBoard reads.
//! - `mlflow` ([`mlflow::MlflowSpec`]): an MLflow tracking server, through its REST API.

pub mod csv;
pub mod hparams;
pub mod jsonl;
pub mod mlflow;
pub mod tensorboard;
