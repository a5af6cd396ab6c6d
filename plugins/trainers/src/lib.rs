//! The special trainers of stoker, each the loop of `Default_trainer` with its own training
//! step ([`stoker::training::TrainingStep`]):
//!
//! - `Adversarial_trainer` ([`adversarial`]): FGSM adversarial training (Goodfellow, Shlens &
//!   Szegedy 2015), and the FGSM-attacked predictions at validation and test.
//! - `Distillation_trainer` ([`distillation`]): a student trained on a frozen teacher's scores
//!   (Hinton, Vinyals & Dean 2015), the teacher loaded from a stoker run.

pub mod adversarial;
pub mod distillation;
mod leaf;
