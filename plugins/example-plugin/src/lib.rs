//! An example stoker plugin, the one `docs/writing-a-plugin.md` walks through.
//!
//! It registers two components, from this crate alone:
//! - the model `ResMLP` ([`res_mlp::ResMlpSpec`]): a residual multi-layer perceptron;
//! - the loss `log_cosh` ([`log_cosh::LogCoshSpec`]).
//!
//! Nothing else in the workspace names this crate: `cargo xtask` finds it under `plugins/` and
//! links it into the `stoker` binary.

pub mod log_cosh;
pub mod res_mlp;
