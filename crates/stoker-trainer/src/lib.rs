//! stoker's training loops.
//!
//! - `Default_trainer` ([`default_trainer::DefaultTrainerSpec`]): the standard loop.
//! - [`evaluate::evaluate`]: the evaluation loop every trainer and `stoker eval` share.

pub mod best;
pub mod default_trainer;
pub mod evaluate;
