//! The strategy contract: how training is spread over devices and processes. The loop calls a
//! strategy at fixed points (Lightning's `Strategy`), so that data-parallel training plugs in
//! without a change to the loop: set-up, the epoch's share of the data, gradient and metric
//! reduction, which process writes files, barriers, and tear-down.

use burn::optim::GradientsParams;

use crate::data::{DataModule, EpochBatches, Order, Shard, Split};
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

    /// This process's share of the data: all of it on one device.
    fn shard(&self) -> Shard {
        Shard::WHOLE
    }

    /// The number of processes training together (the global batch is this times the batch
    /// size of one process).
    fn world_size(&self) -> usize {
        self.shard().world
    }

    /// The batches of one epoch of `split` this process runs: its [`shard`](Strategy::shard)
    /// of the epoch's order.
    fn epoch<'d>(
        &self,
        data: &'d dyn DataModule,
        split: Split,
        epoch: usize,
        order: Order,
    ) -> Result<Box<dyn EpochBatches + 'd>> {
        data.epoch(split, epoch, order, self.shard())
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

    /// The step loop's flags after an optimizer step (a stop request, a signal), agreed by
    /// every process. One process: as they are. Data-parallel: they travel with the next
    /// optimizer step's gradients rather than in a collective of their own, so the agreed flags
    /// are those any process raised before this step's reduction: a request takes effect one
    /// step later, on every process at the same step.
    fn step_flags(&mut self, flags: [bool; 2]) -> [bool; 2] {
        flags
    }

    /// Whether every process holds the same `values` (where each starts: a resume must be the
    /// same checkpoint in all of them).
    fn agree(&mut self, _values: &[f64]) -> Result<bool> {
        Ok(true)
    }

    /// Each flag becomes whether it is set in any process (a stop request, a signal): all
    /// processes must stop at the same step.
    fn reduce_any(&mut self, _flags: &mut [bool]) -> Result<()> {
        Ok(())
    }

    /// Makes every process's model rank 0's where they differ: before each evaluation (batch
    /// norm's running statistics, which each process updates from its own batches, as DDP's
    /// `broadcast_buffers`) and after the fit's end (where a callback may have restored the best
    /// weights, which only rank 0 wrote). Whether they differed.
    fn sync_model(&mut self, _model: &mut dyn DynModel) -> Result<bool> {
        Ok(false)
    }

    /// `sync_batchnorm`: batch normalization takes its statistics over every process's batch
    /// until [`teardown`](Strategy::teardown). With one process they are already the whole
    /// batch's: nothing to do.
    fn sync_batchnorm(&mut self) -> Result<()> {
        Ok(())
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
