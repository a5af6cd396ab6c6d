//! A parameter importance estimate: for each parameter, the share of the objective's variance
//! among complete trials that its value alone explains (the correlation ratio eta^2, with a
//! numeric parameter cut into quantile bins), normalised over the parameters. It is a
//! first-order estimate (no interactions), cheaper and rougher than Optuna's fANOVA; with few
//! trials it is noisy.

use stoker::sweep::{Distribution, Trial, TrialState};

/// eta^2 of `values` grouped by `groups`.
fn eta_squared(values: &[f64], groups: &[usize]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let total: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let k = groups.iter().copied().max().map_or(0, |m| m + 1);
    let mut sums = vec![0.0; k];
    let mut counts = vec![0usize; k];
    for (v, g) in values.iter().zip(groups) {
        sums[*g] += v;
        counts[*g] += 1;
    }
    let between: f64 = sums
        .iter()
        .zip(&counts)
        .filter(|(_, c)| **c > 0)
        .map(|(s, c)| *c as f64 * (s / *c as f64 - mean).powi(2))
        .sum();
    between / total
}

/// Each parameter's importance (summing to 1), in the space's order; empty with fewer than 4
/// complete trials with a finite value, or when the objective does not vary.
pub fn importance(space: &[(String, Distribution)], trials: &[Trial]) -> Vec<(String, f64)> {
    let complete: Vec<&Trial> = trials
        .iter()
        .filter(|t| t.state == TrialState::Complete && t.value.is_some_and(f64::is_finite))
        .filter(|t| space.iter().all(|(n, _)| t.params.contains_key(n)))
        .collect();
    if complete.len() < 4 {
        return Vec::new();
    }
    let values: Vec<f64> = complete.iter().filter_map(|t| t.value).collect();
    let bins = (complete.len() / 3).clamp(2, 5);
    let raw: Vec<(String, f64)> = space
        .iter()
        .map(|(name, dist)| {
            let xs: Vec<f64> = complete.iter().map(|t| t.params[name]).collect();
            let groups: Vec<usize> = match dist {
                Distribution::Categorical { .. } => xs.iter().map(|x| *x as usize).collect(),
                _ => {
                    // Quantile bins by rank; equal values share a bin.
                    let mut sorted = xs.clone();
                    sorted.sort_by(f64::total_cmp);
                    xs.iter()
                        .map(|x| {
                            let rank = sorted.partition_point(|s| s < x);
                            rank * bins / sorted.len()
                        })
                        .collect()
                }
            };
            (name.clone(), eta_squared(&values, &groups))
        })
        .collect();
    let total: f64 = raw.iter().map(|(_, v)| v).sum();
    if total <= 0.0 {
        return Vec::new();
    }
    raw.into_iter().map(|(n, v)| (n, v / total)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_parameter_the_objective_depends_on_is_the_important_one() {
        let space = vec![
            (
                "a".to_string(),
                Distribution::Float {
                    low: 0.0,
                    high: 1.0,
                    log: false,
                    step: None,
                },
            ),
            (
                "b".to_string(),
                Distribution::Categorical {
                    choices: vec![serde_json::json!(1), serde_json::json!(2)],
                },
            ),
        ];
        // value = 10 a; b alternates independently of a.
        let trials: Vec<Trial> = (0..12)
            .map(|i| {
                let a = ((i * 7) % 12) as f64 / 11.0;
                Trial {
                    number: i,
                    state: TrialState::Complete,
                    value: Some(10.0 * a),
                    params: BTreeMap::from([("a".into(), a), ("b".into(), (i % 2) as f64)]),
                    intermediate: BTreeMap::new(),
                    system_attrs: BTreeMap::new(),
                }
            })
            .collect();
        let shares = importance(&space, &trials);
        assert!(shares[0].1 > 0.9, "{shares:?}");
        assert!((shares[0].1 + shares[1].1 - 1.0).abs() < 1e-12);
        // By hand: eta^2 of 4 bins of 3 values, a = k/11 in rank order.
        let values: Vec<f64> = (0..12).map(|k| 10.0 * k as f64 / 11.0).collect();
        let groups: Vec<usize> = (0..12).map(|k| k * 4 / 12).collect();
        // Within each bin the deviations are -10/11, 0, 10/11: SS_within = 4 * 2 * (10/11)^2;
        // SS_total = 100/121 * sum (k - 5.5)^2 = 100/121 * 143.
        let expected = 1.0 - 8.0 / 143.0;
        assert!((eta_squared(&values, &groups) - expected).abs() < 1e-12);
    }
}
