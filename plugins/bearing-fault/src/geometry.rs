//! Bearing geometry and the fault characteristic frequencies it gives at a shaft speed.

use serde::{Deserialize, Serialize};

/// The geometry of a rolling-element bearing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Geometry {
    /// Number of rolling elements.
    pub balls: usize,
    /// Ball diameter (any length unit, the same as `pitch_diameter`).
    pub ball_diameter: f64,
    /// Pitch diameter: the diameter of the circle through the balls' centres.
    pub pitch_diameter: f64,
    /// Contact angle in degrees.
    #[serde(default)]
    pub contact_angle_deg: f64,
}

impl Default for Geometry {
    /// The SKF 6205-2RS JEM drive-end bearing of the Case Western Reserve University data set
    /// (9 balls, 0.3126 in balls on a 1.537 in pitch circle).
    fn default() -> Self {
        Geometry {
            balls: 9,
            ball_diameter: 0.3126,
            pitch_diameter: 1.537,
            contact_angle_deg: 0.0,
        }
    }
}

/// Fault characteristic frequencies in Hz.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultFrequencies {
    /// Shaft rotation frequency.
    pub shaft: f64,
    /// Ball pass frequency, outer race.
    pub bpfo: f64,
    /// Ball pass frequency, inner race.
    pub bpfi: f64,
    /// Ball spin frequency.
    pub bsf: f64,
    /// Fundamental train (cage) frequency.
    pub ftf: f64,
}

impl Geometry {
    /// The characteristic frequencies at `rpm` (outer race fixed, inner race turning with the shaft):
    /// BPFO = n/2 fr (1 - d/D cos a), BPFI = n/2 fr (1 + d/D cos a),
    /// BSF = D/(2d) fr (1 - (d/D cos a)^2), FTF = fr/2 (1 - d/D cos a).
    pub fn frequencies(&self, rpm: f64) -> FaultFrequencies {
        let fr = rpm / 60.0;
        let ratio =
            self.ball_diameter / self.pitch_diameter * self.contact_angle_deg.to_radians().cos();
        let n = self.balls as f64;
        FaultFrequencies {
            shaft: fr,
            bpfo: n / 2.0 * fr * (1.0 - ratio),
            bpfi: n / 2.0 * fr * (1.0 + ratio),
            bsf: self.pitch_diameter / (2.0 * self.ball_diameter) * fr * (1.0 - ratio * ratio),
            ftf: fr / 2.0 * (1.0 - ratio),
        }
    }

    /// Checks the geometry is physical.
    pub fn check(&self) -> Result<(), String> {
        if self.balls == 0 {
            return Err("balls must be at least 1".into());
        }
        if !(self.ball_diameter > 0.0 && self.pitch_diameter > self.ball_diameter) {
            return Err("needs 0 < ball_diameter < pitch_diameter".into());
        }
        if !(0.0..90.0).contains(&self.contact_angle_deg) {
            return Err("contact_angle_deg must be in [0, 90)".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cwru_bearing_has_its_published_defect_frequencies() {
        // CWRU's table for the 6205 drive-end bearing, as multiples of the shaft speed:
        // BPFI 5.4152, BPFO 3.5848, FTF 0.39828, BSF 4.7135 (their BSF counts both races: 2x).
        let f = Geometry::default().frequencies(60.0);
        assert_eq!(f.shaft, 1.0);
        for (got, published) in [
            (f.bpfi, 5.4152),
            (f.bpfo, 3.5848),
            (f.ftf, 0.39828),
            (2.0 * f.bsf, 4.7135),
        ] {
            assert!(
                (got - published).abs() < 2e-4 * published,
                "{got} vs {published}"
            );
        }
        // And they scale with the speed: 1797 rpm.
        let fast = Geometry::default().frequencies(1797.0);
        assert!((fast.bpfo - 3.5848 * 29.95).abs() < 0.01);
    }

    #[test]
    fn a_contact_angle_narrows_the_ball_to_pitch_ratio() {
        let g = Geometry {
            balls: 10,
            ball_diameter: 1.0,
            pitch_diameter: 5.0,
            contact_angle_deg: 60.0,
        };
        let f = g.frequencies(60.0);
        // d/D cos 60 = 0.1: BPFO = 5 * 0.9, BPFI = 5 * 1.1, BSF = 2.5 * 0.99, FTF = 0.45.
        assert!((f.bpfo - 4.5).abs() < 1e-12);
        assert!((f.bpfi - 5.5).abs() < 1e-12);
        assert!((f.bsf - 2.475).abs() < 1e-12);
        assert!((f.ftf - 0.45).abs() < 1e-12);
    }
}
