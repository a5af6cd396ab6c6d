//! The registered samplers: `grid`, `random` and `tpe`.

pub mod grid;
pub mod normal;
pub mod parzen;
pub mod random;
pub mod tpe;
