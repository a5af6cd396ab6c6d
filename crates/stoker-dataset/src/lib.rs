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
//! - [`mapped`] and [`out_of_core`]: splits read in place from memory-mapped `.npz` and
//!   `.safetensors` files or folders of shards ([`out_of_core::MappedData`]), batch by batch,
//!   in the same order as in memory.
//! - [`normalize`]: statistics fitted on the training split (whole, or streamed in pieces with
//!   the same result), applied to every split and decoded back for metrics.

// Names `::stoker` paths in doc links the way component crates do.
extern crate stoker_core as stoker;

pub mod csv_file;
pub mod files;
pub mod finite;
pub mod host;
#[macro_use]
pub mod in_memory;
pub mod mapped;
pub mod normalize;
pub mod npy;
pub mod out_of_core;
pub mod safetensors_file;
pub mod shard;
pub mod upload;
