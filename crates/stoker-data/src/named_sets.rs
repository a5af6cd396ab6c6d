//! A data module with named validation or test sets (`val: {near: a.npz, far: b.npz}`,
//! `test: {16: a.npz, 32: b.npz}`): the splits are the main module's, and each named set is a
//! module of its own whose validation or test split it is, normalized with the main module's
//! statistics.

use stoker::batch::{Batch, Output};
use stoker::data::{DataInfo, DataModule, EpochBatches, NormalizationReport, Order, Shard, Split};
use stoker::error::Result;

/// The main data module and its named sets.
pub struct WithNamedSets {
    /// The splits (without a validation or test split of its own where named sets replace it).
    pub main: Box<dyn DataModule>,
    /// The named validation sets, in the config's order.
    pub vals: Vec<(String, Box<dyn DataModule>)>,
    /// The named test sets, in the config's order.
    pub tests: Vec<(String, Box<dyn DataModule>)>,
}

impl WithNamedSets {
    /// The data module: the main one alone when no set is named.
    pub fn into_module(self) -> Box<dyn DataModule> {
        if self.vals.is_empty() && self.tests.is_empty() {
            self.main
        } else {
            Box::new(self)
        }
    }
}

fn borrowed(sets: &[(String, Box<dyn DataModule>)]) -> Vec<(&str, &dyn DataModule)> {
    sets.iter()
        .map(|(name, data)| (name.as_str(), data.as_ref()))
        .collect()
}

impl DataModule for WithNamedSets {
    fn info(&self) -> &DataInfo {
        self.main.info()
    }

    fn epoch(
        &self,
        split: Split,
        epoch: usize,
        order: Order,
        shard: Shard,
    ) -> Result<Box<dyn EpochBatches + '_>> {
        self.main.epoch(split, epoch, order, shard)
    }

    fn decode(&self, batch: &Batch, output: &Output) -> Result<Option<(Batch, Output)>> {
        self.main.decode(batch, output)
    }

    fn normalization(&self) -> Option<NormalizationReport> {
        self.main.normalization()
    }

    fn named_tests(&self) -> Vec<(&str, &dyn DataModule)> {
        borrowed(&self.tests)
    }

    fn named_vals(&self) -> Vec<(&str, &dyn DataModule)> {
        borrowed(&self.vals)
    }
}
