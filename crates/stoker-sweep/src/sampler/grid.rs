//! `grid`: every combination of the parameters' values once, in order (the product over the
//! parameters sorted by name, as Optuna's GridSampler builds it, without its shuffle). Each trial
//! stores Optuna's `search_space` and `grid_id` attributes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stoker::rng::Rng;
use stoker::spec::SamplerSpec;
use stoker::sweep::{Distribution, Proposal, Sampler, Study};
use stoker::{BuildError, Component};

/// Grid search: every combination of the parameters' values exactly once (choices, integer ranges, and float ranges with a step), in order; the sweep ends when the grid is done.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(sampler, name = "grid")]
pub struct GridSpec {}

impl SamplerSpec for GridSpec {
    fn build(&self) -> Result<Box<dyn Sampler>, BuildError> {
        Ok(Box::new(Grid))
    }

    fn seed(&self) -> u64 {
        0
    }
}

/// The grid sampler.
#[derive(Debug, Clone, Copy)]
pub struct Grid;

/// The grid's axes: each parameter (sorted by name) and its internal values; an error names a
/// parameter that has no finite set of values.
pub fn axes(space: &[(String, Distribution)]) -> Result<Vec<(String, Vec<f64>)>, String> {
    let mut axes: Vec<(String, Vec<f64>)> = Vec::new();
    for (name, dist) in space {
        let points = dist.grid_points().ok_or_else(|| name.clone())?;
        axes.push((name.clone(), points));
    }
    axes.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(axes)
}

/// The point `grid_id` of the product (the last axis fastest, as `itertools.product`).
fn point(axes: &[(String, Vec<f64>)], mut grid_id: usize) -> BTreeMap<String, f64> {
    let mut params = BTreeMap::new();
    for (name, values) in axes.iter().rev() {
        params.insert(name.clone(), values[grid_id % values.len()]);
        grid_id /= values.len();
    }
    params
}

impl Sampler for Grid {
    fn propose(&mut self, study: &Study<'_>, _number: usize, _rng: &mut Rng) -> Option<Proposal> {
        let axes = axes(study.space).ok()?;
        let size: usize = axes.iter().map(|(_, v)| v.len()).product();
        let taken: Vec<usize> = study
            .trials
            .iter()
            .filter_map(|t| t.system_attrs.get("grid_id")?.as_u64())
            .map(|id| id as usize)
            .collect();
        let grid_id = (0..size).find(|id| !taken.contains(id))?;
        let search_space: serde_json::Map<String, serde_json::Value> = axes
            .iter()
            .map(|(name, values)| {
                let dist = &study.space.iter().find(|(n, _)| n == name).expect("axis").1;
                let external = values.iter().map(|v| dist.external(*v)).collect();
                (name.clone(), serde_json::Value::Array(external))
            })
            .collect();
        Some(Proposal {
            params: point(&axes, grid_id),
            system_attrs: vec![
                (
                    "search_space".into(),
                    serde_json::Value::Object(search_space),
                ),
                ("grid_id".into(), serde_json::json!(grid_id)),
            ],
        })
    }

    fn check(&self, space: &[(String, Distribution)]) -> Result<(), (String, String)> {
        axes(space).map(|_| ()).map_err(|name| {
            (
                name,
                "a grid search needs a finite set of values".to_string(),
            )
        })
    }

    fn capacity(&self, space: &[(String, Distribution)]) -> Option<usize> {
        axes(space)
            .ok()
            .map(|axes| axes.iter().map(|(_, v)| v.len()).product())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stoker::sweep::{Direction, Trial, TrialState};

    #[test]
    fn enumerates_the_product_exactly_once() {
        let space = vec![
            (
                "width".to_string(),
                Distribution::Int {
                    low: 16,
                    high: 48,
                    log: false,
                    step: 16,
                },
            ),
            (
                "modes".to_string(),
                Distribution::Categorical {
                    choices: vec![serde_json::json!(4), serde_json::json!(8)],
                },
            ),
        ];
        let mut trials: Vec<Trial> = Vec::new();
        let mut seen = Vec::new();
        let mut rng = Rng::new(0);
        while let Some(p) = Grid.propose(
            &Study {
                direction: Direction::Minimize,
                space: &space,
                trials: &trials,
            },
            trials.len(),
            &mut rng,
        ) {
            seen.push((p.params["modes"], p.params["width"]));
            let attrs = p.system_attrs.into_iter().collect();
            trials.push(Trial {
                number: trials.len(),
                state: TrialState::Complete,
                value: Some(0.0),
                params: p.params,
                intermediate: BTreeMap::new(),
                system_attrs: attrs,
            });
        }
        // `modes` sorts before `width`; the last axis runs fastest.
        assert_eq!(
            seen,
            vec![
                (0.0, 16.0),
                (0.0, 32.0),
                (0.0, 48.0),
                (1.0, 16.0),
                (1.0, 32.0),
                (1.0, 48.0)
            ]
        );
        assert_eq!(Grid.capacity(&space), Some(6));
        assert_eq!(
            trials[4].system_attrs["search_space"],
            serde_json::json!({"modes": [4, 8], "width": [16, 32, 48]})
        );
        let continuous = vec![(
            "lr".to_string(),
            Distribution::Float {
                low: 0.0,
                high: 1.0,
                log: false,
                step: None,
            },
        )];
        assert_eq!(axes(&continuous).unwrap_err(), "lr");
    }
}
