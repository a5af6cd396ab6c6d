//! Hyper-parameter search: `cargo xtask sweep SWEEP.yaml`.
//!
//! - [`space`]: the registered parameter types of a sweep file's `space:`.
//! - [`sampler`]: the registered samplers, `grid`, `random` and `tpe` (Optuna 5.0's).
//! - [`pruner`]: the registered pruners, `none`, `median`, `percentile` and
//!   `successive_halving` (Optuna's rules).
//! - [`journal`]: studies stored in Optuna's journal file format.
//! - [`sweep_file`]: the sweep file and its checks against the experiment.
//! - [`coordinator`]: runs the trials as `stoker train` processes, prunes, resumes.
//! - [`reporter`]: the trial's side, a callback `stoker train` adds under a sweep.
//! - [`study`], [`report`], [`importance`]: the study's trials, `sweep.json`, `best.yaml`,
//!   `report.html` and the importance estimate.

pub mod coordinator;
pub mod importance;
pub mod journal;
pub mod pruner;
pub mod report;
pub mod reporter;
pub mod sampler;
pub mod space;
pub mod study;
pub mod sweep_file;

/// Writes `text` to `path` through a temporary file and a rename, so that a reader (or a crash)
/// never sees half a file.
pub fn write_atomic(path: &std::path::Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
