//! Physics-informed trainers for stoker.
//!
//! - `PINN_trainer` ([`pinn`]): the experiment's loss on the data plus a PDE residual (a
//!   physics term, `cargo xtask list physics`), the residual weighted by lambda, which follows
//!   the learning-rate-annealing rule of Wang, Teng & Perdikaris (2021): every N steps,
//!   lambda_hat = max|grad of the data loss| / mean|grad of the residual| and
//!   lambda = (1 - alpha) lambda + alpha lambda_hat.

pub mod pinn;
