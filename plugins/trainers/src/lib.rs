//! The special trainers of stoker, each the loop of `Default_trainer` with its own training
//! step ([`stoker::training::TrainingStep`]):
//!
//! - `Adversarial_trainer` ([`adversarial`]): FGSM adversarial training (Goodfellow, Shlens &
//!   Szegedy 2015), and the FGSM-attacked predictions at validation and test.
//! - `Distillation_trainer` ([`distillation`]): a student trained on a frozen teacher's scores
//!   (Hinton, Vinyals & Dean 2015), the teacher loaded from a stoker run.
//! - `MultiTFR_trainer` ([`multi_tfr`]): one loss per time-frequency representation's
//!   branch, weighted by `tfr_weights` (the bearing seed's multi-TFR training);
//! - `ProgressiveResizing_trainer` ([`progressive`]): training on smaller inputs first, by a
//!   schedule of sizes per epoch (crops of signals, coarser grids of fields).

pub mod adversarial;
pub mod distillation;
mod leaf;
pub mod multi_tfr;
pub mod progressive;
pub mod resize;
