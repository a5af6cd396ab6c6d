//! Rolling-bearing fault diagnosis as a stoker plugin.
//!
//! Registers, from this crate alone:
//! - the data `BearingSignals` ([`data::BearingSignalsSpec`]): vibration signals generated from
//!   the physics of a rolling bearing ([`geometry`], [`signal`]) for four classes (normal, outer
//!   race, inner race, ball fault) over shaft speeds, fault severities and loads, with chosen
//!   speeds or severities held out for the test split;
//! - the model `CNN1d` ([`cnn1d::Cnn1dSpec`]): a 1-D convolutional classifier on raw signals
//!   (a wide first kernel, as WDCNN);
//! - the model `SpectrogramCNN` ([`spectrogram::SpectrogramCnnSpec`]): a 2-D CNN on the
//!   log-magnitude STFT, with SpecAugment frequency and time masks in training;
//! - the loss `frequency_consistency` ([`consistency::FrequencyConsistencySpec`]): fault
//!   predictions must agree with the envelope energy at each fault's frequency;
//! - the loss `sommerfeld_consistency` ([`sommerfeld::SommerfeldConsistencySpec`]): predicted
//!   severity must match the lubrication regime of the operating condition;
//! - the loss `temporal_smoothness` ([`temporal::TemporalSmoothnessSpec`]): predictions on
//!   consecutive windows of a signal must change little;
//! - the loss `physical_constraint` ([`physical_constraint::PhysicalConstraintSpec`]): the
//!   seed's weighted combination of the three.
//!
//! - the transforms `stft`, `morlet_cwt` and `pseudo_wvd` ([`tfr`]): time-frequency
//!   representations computed on the device, each checked against its reference library;
//! - the model `MultiTFR_CNN` ([`multi_tfr::MultiTfrCnnSpec`]): one 2-D CNN branch per
//!   transform, for `MultiTFR_trainer`.

pub mod cnn1d;
pub mod consistency;
pub mod data;
pub mod geometry;
pub mod multi_tfr;
pub mod physical_constraint;
pub mod signal;
pub mod sommerfeld;
pub mod spectrogram;
pub mod temporal;
pub mod tfr;
