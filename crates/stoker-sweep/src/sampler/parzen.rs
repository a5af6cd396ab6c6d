//! Optuna 5.0's Parzen estimator (`samplers/_tpe/parzen_estimator.py`): a mixture with one
//! product kernel per observed trial plus a prior kernel, over the parameters of a space.
//!
//! - A numeric parameter is modelled in its transformed range: widened by half a step at each
//!   end when it has a step (integers always do), then in `ln` when it is on a log scale. Each
//!   observation is a truncated normal at its value whose width is the larger distance to its
//!   sorted neighbours (the range's ends as neighbours; with two or more observations the first
//!   and last use their inner neighbour only), clipped to `[width / min(100, n + 2), width]`; the
//!   prior is centred with the whole width.
//! - A categorical parameter's kernel puts `1 + 1/(n+1)` (normalised) on the observed choice and
//!   `1/(n+1)` on each other; the prior is uniform.
//! - The mixture weights are 1 each (the oldest ramped down from the 26th observation on) and 1
//!   for the prior, normalised.

use stoker::rng::Rng;
use stoker::sweep::Distribution;

use super::normal::{log_gauss_mass, truncnorm_log_pdf, truncnorm_sample};

/// One parameter's kernels, one per mixture component.
#[derive(Debug, Clone, PartialEq)]
pub enum Kernels {
    /// Truncated normals in the transformed range.
    Numeric {
        /// Centres.
        mus: Vec<f64>,
        /// Widths.
        sigmas: Vec<f64>,
        /// The transformed range.
        low: f64,
        /// The transformed range.
        high: f64,
        /// The parameter's own range and step (the grid the draws round to).
        grid: Option<(f64, f64, f64)>,
        /// In `ln`.
        log: bool,
    },
    /// A distribution over the choices per component.
    Categorical {
        /// Per component, the probability of each choice.
        rows: Vec<Vec<f64>>,
    },
}

/// Optuna's default weights for `n` observations in trial order.
pub fn default_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let mut weights: Vec<f64> = (0..ramp)
        .map(|i| {
            let (a, b) = (1.0 / n as f64, 1.0);
            if ramp == 1 {
                a
            } else {
                a + (b - a) * i as f64 / (ramp - 1) as f64
            }
        })
        .collect();
    weights.extend(std::iter::repeat_n(1.0, 25));
    weights
}

/// The Parzen estimator of one group of trials.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixture {
    /// The components' weights (observations, then the prior), summing to 1.
    pub weights: Vec<f64>,
    /// Per parameter, its kernels.
    pub dims: Vec<Kernels>,
}

fn numeric_kernels(observed: &[f64], dist: &Distribution) -> Kernels {
    let (mut low, mut high, log, step, grid) = match dist {
        Distribution::Float {
            low,
            high,
            log,
            step,
        } => (*low, *high, *log, *step, step.map(|s| (*low, *high, s))),
        Distribution::Int {
            low,
            high,
            log,
            step,
        } => {
            let (l, h, s) = (*low as f64, *high as f64, *step as f64);
            (l, h, *log, Some(s), Some((l, h, s)))
        }
        Distribution::Categorical { .. } => unreachable!("numeric kernels of a categorical"),
    };
    if let Some(step) = step {
        low -= step / 2.0;
        high += step / 2.0;
    }
    let mut mus: Vec<f64> = observed.to_vec();
    if log {
        low = low.ln();
        high = high.ln();
        for mu in &mut mus {
            *mu = mu.ln();
        }
    }
    let n = mus.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| mus[a].total_cmp(&mus[b]));
    let mut padded = Vec::with_capacity(n + 2);
    padded.push(low);
    padded.extend(order.iter().map(|&i| mus[i]));
    padded.push(high);
    let mut sorted_sigmas: Vec<f64> = (1..=n)
        .map(|i| (padded[i] - padded[i - 1]).max(padded[i + 1] - padded[i]))
        .collect();
    if n >= 2 {
        sorted_sigmas[0] = padded[2] - padded[1];
        sorted_sigmas[n - 1] = padded[n] - padded[n - 1];
    }
    let width = high - low;
    let min_sigma = width / (100f64).min(n as f64 + 2.0);
    let mut sigmas = vec![0.0; n];
    for (rank, &i) in order.iter().enumerate() {
        sigmas[i] = sorted_sigmas[rank].clamp(min_sigma, width);
    }
    mus.push(0.5 * (low + high));
    sigmas.push(width);
    Kernels::Numeric {
        mus,
        sigmas,
        low,
        high,
        grid,
        log,
    }
}

fn categorical_kernels(observed: &[f64], n_choices: usize, prior_weight: f64) -> Kernels {
    if observed.is_empty() {
        return Kernels::Categorical {
            rows: vec![vec![1.0 / n_choices as f64; n_choices]],
        };
    }
    let kernels = observed.len() + 1;
    let mut rows = vec![vec![prior_weight / kernels as f64; n_choices]; kernels];
    for (row, &index) in rows.iter_mut().zip(observed) {
        row[index as usize] += 1.0;
    }
    for row in &mut rows {
        let sum: f64 = row.iter().sum();
        if sum > 0.0 {
            row.iter_mut().for_each(|p| *p /= sum);
        }
    }
    Kernels::Categorical { rows }
}

impl Mixture {
    /// The estimator of `observations` (per trial, in trial order, one internal value per
    /// parameter of `space`).
    pub fn new(space: &[&Distribution], observations: &[Vec<f64>], prior_weight: f64) -> Mixture {
        let n = observations.len();
        let mut weights = default_weights(n);
        if n == 0 {
            weights = vec![1.0];
        } else {
            weights.push(prior_weight);
        }
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        let dims = space
            .iter()
            .enumerate()
            .map(|(d, dist)| {
                let column: Vec<f64> = observations.iter().map(|o| o[d]).collect();
                match dist {
                    Distribution::Categorical { choices } => {
                        categorical_kernels(&column, choices.len(), prior_weight)
                    }
                    _ => numeric_kernels(&column, dist),
                }
            })
            .collect();
        Mixture { weights, dims }
    }

    /// One draw: a component by weight, then each parameter from that component's kernel.
    pub fn sample(&self, rng: &mut Rng) -> Vec<f64> {
        let u = rng.next_f64();
        let mut k = self.weights.len() - 1;
        let mut cumulative = 0.0;
        for (i, w) in self.weights.iter().enumerate() {
            cumulative += w;
            if u < cumulative {
                k = i;
                break;
            }
        }
        self.dims
            .iter()
            .map(|dim| match dim {
                Kernels::Categorical { rows } => {
                    let row = &rows[k.min(rows.len() - 1)];
                    let u = rng.next_f64();
                    let mut cumulative = 0.0;
                    row.iter()
                        .position(|p| {
                            cumulative += p;
                            u < cumulative
                        })
                        .unwrap_or(row.len() - 1) as f64
                }
                Kernels::Numeric {
                    mus,
                    sigmas,
                    low,
                    high,
                    grid,
                    log,
                } => {
                    let mut x = truncnorm_sample(rng, mus[k], sigmas[k], *low, *high);
                    if *log {
                        x = x.exp();
                    }
                    if let Some((l, h, step)) = grid {
                        x = (l + ((x - l) / step).round() * step).clamp(*l, *h);
                    }
                    x
                }
            })
            .collect()
    }

    /// The log density of `x` (internal values): the log-sum-exp over the components of the
    /// weighted product of the kernels (the mass of `x`'s step for a stepped parameter).
    pub fn log_pdf(&self, x: &[f64]) -> f64 {
        let mut per_component: Vec<f64> = self.weights.iter().map(|w| w.ln()).collect();
        for (dim, &xi) in self.dims.iter().zip(x) {
            match dim {
                Kernels::Categorical { rows } => {
                    for (k, value) in per_component.iter_mut().enumerate() {
                        *value += rows[k.min(rows.len() - 1)][xi as usize].ln();
                    }
                }
                Kernels::Numeric {
                    mus,
                    sigmas,
                    low,
                    high,
                    grid,
                    log,
                } => {
                    let t = |v: f64| if *log { v.ln() } else { v };
                    for (k, value) in per_component.iter_mut().enumerate() {
                        let (mu, sigma) = (mus[k], sigmas[k]);
                        *value += match grid {
                            None => truncnorm_log_pdf(t(xi), mu, sigma, *low, *high),
                            Some((_, _, step)) => {
                                log_gauss_mass(
                                    (t(xi - step / 2.0) - mu) / sigma,
                                    (t(xi + step / 2.0) - mu) / sigma,
                                ) - log_gauss_mass((low - mu) / sigma, (high - mu) / sigma)
                            }
                        };
                    }
                }
            }
        }
        let max = per_component
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            return max;
        }
        max + per_component
            .iter()
            .map(|v| (v - max).exp())
            .sum::<f64>()
            .ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64], tolerance: f64) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tolerance)
    }

    fn numeric(m: &Mixture) -> (&Vec<f64>, &Vec<f64>) {
        match &m.dims[0] {
            Kernels::Numeric { mus, sigmas, .. } => (mus, sigmas),
            _ => panic!(),
        }
    }

    // The expected values were printed by optuna 5.0.0's own `_ParzenEstimator` with the
    // TPESampler's defaults (prior_weight 1, magic clip, no endpoints, default_weights).
    #[test]
    fn kernels_match_optunas_parzen_estimator() {
        let float = Distribution::Float {
            low: 0.0,
            high: 1.0,
            log: false,
            step: None,
        };
        let m = Mixture::new(&[&float], &[vec![0.2], vec![0.5], vec![0.6]], 1.0);
        let (mus, sigmas) = numeric(&m);
        assert!(close(mus, &[0.2, 0.5, 0.6, 0.5], 1e-12));
        assert!(close(sigmas, &[0.3, 0.3, 0.2, 1.0], 1e-12), "{sigmas:?}");
        assert!(close(&m.weights, &[0.25; 4], 1e-12));

        let int = Distribution::Int {
            low: 16,
            high: 256,
            log: false,
            step: 16,
        };
        let m = Mixture::new(&[&int], &[vec![16.0], vec![64.0]], 1.0);
        let (mus, sigmas) = numeric(&m);
        assert!(close(mus, &[16.0, 64.0, 136.0], 1e-12));
        assert!(close(sigmas, &[64.0, 64.0, 256.0], 1e-12), "{sigmas:?}");

        let log = Distribution::Float {
            low: 1e-5,
            high: 0.1,
            log: true,
            step: None,
        };
        let m = Mixture::new(&[&log], &[vec![1e-3]], 1.0);
        let (mus, sigmas) = numeric(&m);
        assert!(close(
            mus,
            &[(1e-3f64).ln(), 0.5 * ((1e-5f64).ln() + (0.1f64).ln())],
            1e-12
        ));
        assert!(
            close(
                sigmas,
                &[(1e-3f64 / 1e-5).ln(), (0.1f64 / 1e-5).ln()],
                1e-12
            ),
            "{sigmas:?}"
        );
        assert!(close(&m.weights, &[0.5, 0.5], 1e-12));

        let categorical = Distribution::Categorical {
            choices: vec![
                serde_json::json!("a"),
                serde_json::json!("b"),
                serde_json::json!("c"),
            ],
        };
        let m = Mixture::new(&[&categorical], &[vec![0.0], vec![0.0], vec![2.0]], 1.0);
        let Kernels::Categorical { rows } = &m.dims[0] else {
            panic!()
        };
        let (hi, lo) = (1.25 / 1.75, 0.25 / 1.75);
        assert!(close(&rows[0], &[hi, lo, lo], 1e-12));
        assert!(close(&rows[2], &[lo, lo, hi], 1e-12));
        assert!(close(&rows[3], &[1.0 / 3.0; 3], 1e-12));
    }

    #[test]
    fn log_densities_match_optunas() {
        let float = Distribution::Float {
            low: 0.0,
            high: 1.0,
            log: false,
            step: None,
        };
        let m = Mixture::new(&[&float], &[vec![0.05], vec![0.5]], 1.0);
        assert!((m.log_pdf(&[0.3]) - 0.170_663_34).abs() < 1e-7);
        assert!((m.log_pdf(&[0.9]) - -0.376_591_94).abs() < 1e-7);
        let int = Distribution::Int {
            low: 1,
            high: 9,
            log: true,
            step: 1,
        };
        let m = Mixture::new(&[&int], &[vec![2.0], vec![8.0]], 1.0);
        assert!((m.log_pdf(&[3.0]) - -2.037_870_82).abs() < 1e-7);
        assert!((m.log_pdf(&[9.0]) - -3.213_591_06).abs() < 1e-7);
        let choice = Distribution::Categorical {
            choices: vec![serde_json::json!("a"), serde_json::json!("b")],
        };
        let m = Mixture::new(&[&int, &choice], &[vec![2.0, 0.0], vec![8.0, 1.0]], 1.0);
        assert!((m.log_pdf(&[3.0, 1.0]) - -2.713_728_74).abs() < 1e-7);
        assert!((m.log_pdf(&[9.0, 0.0]) - -4.101_175_45).abs() < 1e-7);
    }

    #[test]
    fn weights_ramp_the_oldest_from_the_26th_observation() {
        assert_eq!(default_weights(3), vec![1.0; 3]);
        let w = default_weights(30);
        // numpy.linspace(1/30, 1, 5) then 25 ones.
        assert!(close(
            &w[..5],
            &[
                1.0 / 30.0,
                0.275,
                0.516_666_666_666_666_7,
                0.758_333_333_333_333_3,
                1.0
            ],
            1e-12
        ));
        assert_eq!(w.len(), 30);
    }

    #[test]
    fn the_density_integrates_to_one() {
        let float = Distribution::Float {
            low: 0.0,
            high: 1.0,
            log: false,
            step: None,
        };
        let m = Mixture::new(&[&float], &[vec![0.05], vec![0.5]], 1.0);
        let n = 20_000;
        let integral: f64 = (0..n)
            .map(|i| m.log_pdf(&[(i as f64 + 0.5) / n as f64]).exp() / n as f64)
            .sum();
        assert!((integral - 1.0).abs() < 1e-6, "{integral}");
        let int = Distribution::Int {
            low: 1,
            high: 9,
            log: true,
            step: 1,
        };
        let m = Mixture::new(&[&int], &[vec![2.0], vec![8.0]], 1.0);
        let mass: f64 = (1..=9).map(|k| m.log_pdf(&[k as f64]).exp()).sum();
        assert!((mass - 1.0).abs() < 1e-9, "{mass}");
    }
}
