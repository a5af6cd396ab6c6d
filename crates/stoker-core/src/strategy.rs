//! The strategy contract: how training is spread over devices and processes. The loop calls a
//! strategy at fixed points (Lightning's `Strategy`), so that data-parallel training plugs in
//! without a change to the loop: set-up, the epoch's share of the data, gradient and metric
//! reduction, which process writes files, barriers, and tear-down.

use burn::optim::GradientsParams;

use crate::data::{DataModule, EpochBatches, Order, Split};
use crate::error::Result;
use crate::metric::Metric;
use crate::model::DynModel;

/// A built strategy (`trainer.args.strategy`).
pub trait Strategy: Send {
    /// Before training starts (also when resuming, after the checkpoint is loaded): make every
    /// process start from the same parameters (a broadcast from rank 0).
    fn setup(&mut self, _model: &mut dyn DynModel) -> Result<()> {
        Ok(())
    }

    /// The batches of one epoch of `split` this process runs: all of them on one device, its
    /// shard of the epoch's order with several processes.
    fn epoch<'d>(
        &self,
        data: &'d dyn DataModule,
        split: Split,
        epoch: usize,
        order: Order,
    ) -> Result<Box<dyn EpochBatches + 'd>> {
        data.epoch(split, epoch, order)
    }

    /// The gradients of one optimizer step combined over the processes (averaged), before the
    /// precision plugin unscales them and before clipping.
    fn reduce_gradients(
        &mut self,
        _model: &dyn DynModel,
        grads: GradientsParams,
    ) -> Result<GradientsParams> {
        Ok(grads)
    }

    /// Combines the metrics' accumulated sums over the processes before they are computed, so
    /// that every sample counts once (sums and counts, never a mean of means).
    fn reduce_metrics(&mut self, _metrics: &mut [Box<dyn Metric>]) -> Result<()> {
        Ok(())
    }

    /// Whether any process asked to stop (all processes must stop at the same step).
    fn reduce_stop(&mut self, stop: bool) -> Result<bool> {
        Ok(stop)
    }

    /// Whether this process writes files and logs (rank 0).
    fn is_global_zero(&self) -> bool {
        true
    }

    /// Waits until every process reaches this point.
    fn barrier(&mut self) -> Result<()> {
        Ok(())
    }

    /// After training (also after a failure): release what `setup` acquired.
    fn teardown(&mut self) -> Result<()> {
        Ok(())
    }
}
