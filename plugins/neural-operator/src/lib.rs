//! Fourier neural operators (Li et al., 2020) as a stoker plugin.
//!
//! Registers, from this crate alone:
//! - the models `FNO1d` ([`fno::Fno1dSpec`]) and `FNO2d` ([`fno::Fno2dSpec`]): a lifting layer,
//!   Fourier layers (a spectral convolution plus a pointwise linear path), and a projection;
//!   grid coordinates are appended to the input, and the operator runs at any resolution with
//!   at least twice as many points per axis as it keeps modes;
//! - the model `NeuralopFNO` ([`neuralop_fno::NeuralopFnoSpec`]): the `FNO` of the
//!   `neuraloperator` package (0.3.0) with its defaults and argument names (MLP lifting and
//!   projection, spectral bias, skip without bias);
//! - the physics term `darcy_residual` ([`darcy::DarcyResidualSpec`]): -div(a grad u) - f by
//!   finite differences, for the `physics_informed` loss.
//!
//! The spectral convolutions ([`spectral`]) compute the Fourier coefficients they keep with
//! truncated DFT matrices ([`dft`]) rather than an FFT: see that module for why.

pub mod darcy;
pub mod dft;
pub mod fno;
pub mod neuralop_fno;
pub mod spectral;
