//! A data module with named test sets beside its splits (`test: {16: a.npz, 32: b.npz}`): the
//! splits are the main module's, and each named set is a module of its own whose test split it
//! is, normalized with the main module's statistics.

use stoker::batch::{Batch, Output};
use stoker::data::{DataInfo, DataModule, EpochBatches, NormalizationReport, Order, Shard, Split};
use stoker::error::Result;

/// The main data module and its named test sets.
pub struct WithNamedTests {
    /// Train, val (and no test split of its own).
    pub main: Box<dyn DataModule>,
    /// The named test sets, in the config's order.
    pub named: Vec<(String, Box<dyn DataModule>)>,
}

impl DataModule for WithNamedTests {
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
        self.named
            .iter()
            .map(|(name, data)| (name.as_str(), data.as_ref()))
            .collect()
    }
}
