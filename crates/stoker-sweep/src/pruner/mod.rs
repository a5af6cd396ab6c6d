//! The registered pruners: `none`, `median`, `percentile` and `successive_halving`.

pub mod none;
pub mod percentile;
pub mod successive_halving;
#[cfg(test)]
mod tests;
