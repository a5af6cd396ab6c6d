//! What data modules are made of (re-exported as `stoker::dataset`); the modules themselves
//! (`TensorFile`, the synthetic sets) are components in `stoker-data`, and plugins build theirs
//! from the same pieces.
//!
//! - [`host`]: tensors read on the host, before they go to a device.
//! - [`files`]: reading `.npz` ([`npy`]), `.safetensors` ([`safetensors_file`]) and `.csv`
//!   ([`csv_file`]) by extension.
//! - [`in_memory`]: splits held on the training device ([`in_memory::InMemoryData`]); a training
//!   batch is a seeded row selection whose order depends only on the seed and the epoch, so
//!   that resuming reproduces it.
//! - [`normalize`]: statistics fitted on the training split, applied to every split and
//!   decoded back for metrics.

// Names `::stoker` paths in doc links the way component crates do.
extern crate stoker_core as stoker;

pub mod csv_file;
pub mod files;
pub mod finite;
pub mod host;
#[macro_use]
pub mod in_memory;
pub mod normalize;
pub mod npy;
pub mod safetensors_file;
pub mod shard;
