//! The normal distribution's log mass over an interval, the truncated normal's log density and
//! draws from it: what the TPE sampler's Parzen estimators need (Optuna's `_truncnorm.py`).

use stoker::rng::Rng;

unsafe extern "C" {
    /// The complementary error function of the C library (libm), `1 - erf(x)` without the
    /// cancellation for large `x`.
    fn erfc(x: f64) -> f64;
}

/// `ln(sqrt(2 pi))`.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// The standard normal's CDF.
pub fn ndtr(x: f64) -> f64 {
    // SAFETY: erfc is a pure function of a double.
    0.5 * unsafe { erfc(-x / std::f64::consts::SQRT_2) }
}

/// `ln ndtr(x)`, accurate in the far left tail (where `ndtr` underflows) by the asymptotic
/// series `ln phi(x) - ln(-x) + ln(1 - 1/x^2 + 3/x^4 - 15/x^6 + 105/x^8)`.
pub fn log_ndtr(x: f64) -> f64 {
    if x > -20.0 {
        return ndtr(x).ln();
    }
    let z = 1.0 / (x * x);
    let series = 1.0 - z * (1.0 - 3.0 * z * (1.0 - 5.0 * z * (1.0 - 7.0 * z)));
    -0.5 * x * x - LN_SQRT_2PI - (-x).ln() + series.ln()
}

/// `ln(ndtr(b) - ndtr(a))` for `a <= b`, without the cancellation of either tail.
pub fn log_gauss_mass(a: f64, b: f64) -> f64 {
    if b <= 0.0 {
        // Both in the left tail: ln ndtr(b) + ln(1 - ndtr(a) / ndtr(b)).
        let (la, lb) = (log_ndtr(a), log_ndtr(b));
        lb + (-(la - lb).exp()).ln_1p()
    } else if a > 0.0 {
        log_gauss_mass(-b, -a)
    } else {
        // Around the centre: 1 minus both tails.
        (-ndtr(a) - ndtr(-b)).ln_1p()
    }
}

/// The log density at `x` of the normal `(mu, sigma)` truncated to `[low, high]`.
pub fn truncnorm_log_pdf(x: f64, mu: f64, sigma: f64, low: f64, high: f64) -> f64 {
    let z = (x - mu) / sigma;
    -0.5 * z * z
        - LN_SQRT_2PI
        - sigma.ln()
        - log_gauss_mass((low - mu) / sigma, (high - mu) / sigma)
}

/// A draw from the normal `(mu, sigma)` truncated to `[low, high]`, by rejection. The TPE's
/// kernels have `mu` inside the interval and `sigma` at most its width, so at least a third of
/// the draws are accepted; after 1000 rejections the draw is clipped into the interval.
pub fn truncnorm_sample(rng: &mut Rng, mu: f64, sigma: f64, low: f64, high: f64) -> f64 {
    let mut x = mu;
    for _ in 0..1000 {
        x = mu + sigma * rng.normal();
        if (low..=high).contains(&x) {
            return x;
        }
    }
    x.clamp(low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scipy_values() {
        // scipy.special.ndtr / log_ndtr.
        assert!((ndtr(1.0) - 0.841_344_746_068_542_9).abs() < 1e-15);
        assert!((log_ndtr(-5.0) - (-15.064_998_393_988_727)).abs() < 1e-12);
        assert!((log_ndtr(-30.0) - (-454.321_243_956_343_27)).abs() < 1e-9);
        assert!((log_ndtr(-50.0) - (-1_254.831_361_139_419_9)).abs() < 1e-9);
        // ln(ndtr(1) - ndtr(-1)) and a far right tail: ln(ndtr(-30) - ndtr(-31)), mirrored.
        assert!((log_gauss_mass(-1.0, 1.0) - 0.682_689_492_137_085_9f64.ln()).abs() < 1e-14);
        assert!((log_gauss_mass(30.0, 31.0) - (-454.321_243_956_343_3)).abs() < 1e-9);
        // scipy.stats.truncnorm.logpdf(0.5, a=-1, b=2, loc=0, scale=1)
        assert!(
            (truncnorm_log_pdf(0.5, 0.0, 1.0, -1.0, 2.0) - (-0.843_772_238_880_21)).abs() < 1e-12
        );
    }

    #[test]
    fn draws_stay_inside_with_the_truncated_mean() {
        let mut rng = Rng::new(3);
        let n = 200_000;
        let mean: f64 = (0..n)
            .map(|_| {
                let x = truncnorm_sample(&mut rng, 0.0, 1.0, 0.0, 1.0);
                assert!((0.0..=1.0).contains(&x));
                x
            })
            .sum::<f64>()
            / n as f64;
        // scipy.stats.truncnorm.mean(0, 1) = 0.4598...
        assert!((mean - 0.459_862_2).abs() < 3e-3, "{mean}");
    }
}
