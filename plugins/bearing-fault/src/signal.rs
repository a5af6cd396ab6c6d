//! Vibration signals of a rolling bearing, from the physics of a localized defect.
//!
//! Each time a rolling element meets a defect it strikes it: an impulse that rings the bearing
//! housing's structural resonance (a decaying sinusoid at `resonance_hz`). The strikes repeat at
//! the defect's characteristic frequency ([`crate::geometry`]): BPFO for the outer race, BPFI for
//! the inner race, twice BSF for a ball (it meets both races once per spin). Their amplitude is
//! modulated by where the defect is relative to the load zone: not at all for the fixed outer
//! race, at the shaft frequency for the inner race (it turns with the shaft), at the cage
//! frequency for a ball. The strike amplitude grows with the defect size (severity) and the load;
//! the timing jitters slightly (rolling elements slip). Every signal also carries the shaft's
//! first two harmonics (imbalance, misalignment) and Gaussian noise.

use std::f64::consts::PI;

use stoker::rng::Rng;

use crate::geometry::Geometry;

/// The bearing's condition: the class a classifier predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No defect.
    Normal = 0,
    /// A defect on the outer race.
    OuterRace = 1,
    /// A defect on the inner race.
    InnerRace = 2,
    /// A defect on a rolling element.
    Ball = 3,
}

impl Fault {
    /// All classes, by label.
    pub const ALL: [Fault; 4] = [
        Fault::Normal,
        Fault::OuterRace,
        Fault::InnerRace,
        Fault::Ball,
    ];

    /// The defect's strike rate and the modulation frequency of the strikes at `rpm`
    /// (`None` for a healthy bearing).
    pub fn rates(self, geometry: &Geometry, rpm: f64) -> Option<(f64, f64)> {
        let f = geometry.frequencies(rpm);
        match self {
            Fault::Normal => None,
            Fault::OuterRace => Some((f.bpfo, 0.0)),
            Fault::InnerRace => Some((f.bpfi, f.shaft)),
            Fault::Ball => Some((2.0 * f.bsf, f.ftf)),
        }
    }
}

/// How signals are generated (shared by every sample).
#[derive(Debug, Clone, PartialEq)]
pub struct SignalModel {
    /// The bearing.
    pub geometry: Geometry,
    /// Samples per second.
    pub sample_rate: f64,
    /// Samples per signal.
    pub length: usize,
    /// The housing resonance the strikes excite, Hz.
    pub resonance_hz: f64,
    /// The resonance's damping ratio.
    pub damping: f64,
    /// Standard deviation of the additive noise.
    pub noise: f64,
}

impl Default for SignalModel {
    fn default() -> Self {
        SignalModel {
            geometry: Geometry::default(),
            sample_rate: 12_000.0,
            length: 2048,
            resonance_hz: 3_000.0,
            damping: 0.05,
            noise: 0.1,
        }
    }
}

/// One operating condition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    /// The class.
    pub fault: Fault,
    /// Shaft speed, revolutions per minute.
    pub rpm: f64,
    /// Defect size as a strike amplitude (0 for a healthy bearing).
    pub severity: f64,
    /// Load, in units that raise strike and shaft amplitudes by 20 % each.
    pub load: f64,
}

impl SignalModel {
    /// One signal of `condition`, with random phases, slip and noise from `rng`.
    pub fn generate(&self, condition: &Condition, rng: &mut Rng) -> Vec<f64> {
        let fs = self.sample_rate;
        let n = self.length;
        // The actual speed wanders by up to 0.5 % around the nominal one.
        let rpm = condition.rpm * (1.0 + 0.005 * (2.0 * rng.next_f64() - 1.0));
        let shaft = rpm / 60.0;
        let load_gain = 1.0 + 0.2 * condition.load;
        let (p1, p2) = (2.0 * PI * rng.next_f64(), 2.0 * PI * rng.next_f64());
        let mut x: Vec<f64> = (0..n)
            .map(|i| {
                let t = i as f64 / fs;
                load_gain
                    * (0.1 * (2.0 * PI * shaft * t + p1).sin()
                        + 0.05 * (2.0 * PI * 2.0 * shaft * t + p2).sin())
                    + self.noise * rng.normal()
            })
            .collect();
        if let Some((rate, modulation)) = condition.fault.rates(&self.geometry, rpm) {
            let amplitude = condition.severity * load_gain;
            let period = 1.0 / rate;
            let phase = 2.0 * PI * rng.next_f64();
            let omega = 2.0 * PI * self.resonance_hz;
            let decay = self.damping * omega;
            // A strike rings for about 7 time constants.
            let ring = ((7.0 / decay) * fs).ceil() as usize;
            let mut strike = period * rng.next_f64();
            let duration = n as f64 / fs;
            while strike < duration {
                let gain = if modulation > 0.0 {
                    1.0 + 0.5 * (2.0 * PI * modulation * strike + phase).cos()
                } else {
                    1.0
                };
                let first = (strike * fs).ceil() as usize;
                let end = (first + ring).min(n);
                for (i, value) in x.iter_mut().enumerate().take(end).skip(first) {
                    let dt = i as f64 / fs - strike;
                    *value += amplitude * gain * (-decay * dt).exp() * (omega * dt).sin();
                }
                // Slip: each interval varies by 1 %.
                strike += period * (1.0 + 0.01 * rng.normal());
            }
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The amplitude spectrum of the envelope (|x| with its mean removed) at `frequency`, by a
    /// direct DFT.
    fn envelope_amplitude(x: &[f64], fs: f64, frequency: f64) -> f64 {
        let mean = x.iter().map(|v| v.abs()).sum::<f64>() / x.len() as f64;
        let (re, im) = x.iter().enumerate().fold((0.0, 0.0), |(re, im), (i, v)| {
            let a = 2.0 * PI * frequency * i as f64 / fs;
            let e = v.abs() - mean;
            (re + e * a.cos(), im - e * a.sin())
        });
        (re * re + im * im).sqrt() / x.len() as f64
    }

    /// The frequency in [lo, hi] (0.5 Hz steps) where the envelope spectrum peaks.
    fn envelope_peak(x: &[f64], fs: f64, lo: f64, hi: f64) -> f64 {
        let mut best = (lo, 0.0);
        let mut f = lo;
        while f <= hi {
            let a = envelope_amplitude(x, fs, f);
            if a > best.1 {
                best = (f, a);
            }
            f += 0.5;
        }
        best.0
    }

    #[test]
    fn each_fault_strikes_at_its_characteristic_frequency() {
        let model = SignalModel {
            length: 12_000,
            noise: 0.02,
            ..SignalModel::default()
        };
        let rpm = 1797.0;
        let f = model.geometry.frequencies(rpm);
        for (fault, expected) in [
            (Fault::OuterRace, f.bpfo),
            (Fault::InnerRace, f.bpfi),
            (Fault::Ball, 2.0 * f.bsf),
        ] {
            let condition = Condition {
                fault,
                rpm,
                severity: 1.0,
                load: 0.0,
            };
            let x = model.generate(&condition, &mut Rng::new(7));
            // Between 60 Hz and 400 Hz: above the shaft harmonics' envelope, below the others'.
            let peak = envelope_peak(&x, model.sample_rate, 60.0, 400.0);
            // The speed wanders by 0.5 %, so the peak may too.
            assert!(
                (peak - expected).abs() <= 0.01 * expected + 1.0,
                "{fault:?}: envelope peak at {peak} Hz, expected {expected:.1} Hz"
            );
        }
    }

    #[test]
    fn a_healthy_bearing_has_no_strikes_and_severity_raises_the_energy() {
        let model = SignalModel::default();
        let energy = |fault, severity| {
            let condition = Condition {
                fault,
                rpm: 1750.0,
                severity,
                load: 1.0,
            };
            let x = model.generate(&condition, &mut Rng::new(3));
            x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64
        };
        let normal = energy(Fault::Normal, 0.0);
        // Shaft harmonics (0.12^2/2 + 0.06^2/2) plus noise (0.1^2).
        assert!((normal - 0.0190).abs() < 0.003, "{normal}");
        assert!(energy(Fault::InnerRace, 0.5) > normal);
        assert!(energy(Fault::InnerRace, 1.5) > energy(Fault::InnerRace, 0.5));
    }
}
