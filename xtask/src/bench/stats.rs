//! Turning epoch timings into steps per second, and repeats into median, min and max.

/// Steps per second over every epoch after the first (warm-up) one; over all epochs when there
/// is only one.
pub fn steps_per_second(steps_per_epoch: f64, epoch_seconds: &[f64]) -> Option<f64> {
    let timed = if epoch_seconds.len() > 1 {
        &epoch_seconds[1..]
    } else {
        epoch_seconds
    };
    let seconds: f64 = timed.iter().sum();
    (seconds > 0.0).then(|| steps_per_epoch * timed.len() as f64 / seconds)
}

/// Median, min and max of some values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_epoch_is_left_out_and_medians_are_the_middle() {
        // 10 steps per epoch; epochs 2 and 3 took 0.5 s and 1.5 s: 20 steps in 2 s.
        assert_eq!(steps_per_second(10.0, &[9.0, 0.5, 1.5]), Some(10.0));
        assert_eq!(steps_per_second(10.0, &[2.0]), Some(5.0));
        assert_eq!(steps_per_second(10.0, &[]), None);
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert!(Spread::of(&[]).is_none());
    }
}
