//! stoker's loggers.
//!
//! - `csv` ([`csv::CsvSpec`]): Lightning's `metrics.csv` and `hparams.yaml`.

pub mod csv;
