//! `ddp` (and `auto` in a process started as one of several): data-parallel training as
//! PyTorch's DistributedDataParallel does it, on libtorch's own c10d (`ProcessGroupGloo` on the
//! CPU, `ProcessGroupNCCL` on CUDA, each process on the GPU of its local rank).
//!
//! Every process holds the whole model and trains on its shard of each epoch
//! (`DistributedSampler`'s rules). Rank 0's initial parameters are broadcast at set-up; the
//! gradients of each optimizer step are averaged over the processes in one flattened bucket,
//! once per step (after the accumulation group's last micro-batch, as DDP's `no_sync`), before
//! the precision plugin unscales them and before clipping; metrics add their sums and counts
//! over the processes before they are computed; a stop request or a signal in any process stops
//! all of them at the same step; only rank 0 writes files.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use stoker::burn::optim::GradientsParams;
use stoker::burn::tensor::Device;
use stoker::data::Shard;
use stoker::error::{BuildError, Result, StokerError};
use stoker::metric::{Metric, Reducer};
use stoker::model::DynModel;
use stoker::spec::{BuildContext, StrategySpec};
use stoker::strategy::Strategy;
use stoker_derive::Component;
use stoker_native::collective::{ProcessGroup, Rendezvous, nccl_available};
use stoker_native::device::libtorch_cuda_index;

use super::environment::ClusterEnvironment;

fn thirty_minutes() -> f64 {
    1800.0
}

/// Data-parallel training over the processes a launcher started (`cargo xtask train --nproc N`, torchrun, srun): each process trains on its shard of every epoch, gradients are averaged every optimizer step, metrics are exact over all samples, only rank 0 writes the run directory.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(strategy, name = "ddp")]
pub struct DdpSpec {
    /// Seconds the rendezvous and every collective wait for the other processes before the run fails with a message naming the rank and the collective (torch's default, 1800).
    #[serde(default = "thirty_minutes")]
    pub process_group_timeout: f64,
}

impl Default for DdpSpec {
    fn default() -> Self {
        DdpSpec {
            process_group_timeout: thirty_minutes(),
        }
    }
}

/// The built `ddp` strategy: this process's handle on the process group.
pub struct Ddp {
    group: ProcessGroup,
    device: Device,
    /// The step loop's flags raised here since the last optimizer step, sent with the next
    /// step's gradients.
    pending: [bool; 2],
    /// The flags every process sent with the last optimizer step's gradients, combined.
    agreed: [bool; 2],
    /// The model's trainable parameters (set up at the fit's start): each must have a gradient
    /// in every step, or the processes' buckets would not line up.
    trainable: Vec<String>,
}

impl DdpSpec {
    /// Joins the process group the launcher's variables describe.
    pub fn connect(
        &self,
        env: &ClusterEnvironment,
        ctx: &BuildContext,
    ) -> std::result::Result<Ddp, BuildError> {
        let timeout = self.process_group_timeout;
        if !(timeout.is_finite() && timeout > 0.0) {
            return Err(BuildError::at(
                "process_group_timeout",
                format!("must be a positive number of seconds, not {timeout}"),
            ));
        }
        let cuda = libtorch_cuda_index(&ctx.device.clone().without_autodiff());
        if cuda.is_some() && !nccl_available() {
            return Err(BuildError::new(
                "data-parallel training on CUDA needs libtorch's NCCL process group, and this stoker was built without it",
            )
            .hint("build stoker through `cargo xtask` against PyPI's CUDA torch (it installs the headers NCCL needs), or set environment.device: cpu to train the processes on the CPU (Gloo)"));
        }
        if ctx.device == Device::flex() {
            return Err(BuildError::new(
                "data-parallel training needs a LibTorch device (`cpu` or `cuda`): c10d reduces LibTorch tensors",
            )
            .hint("set environment.device: cpu"));
        }
        let rendezvous = Rendezvous::Tcp {
            host: env.master_addr.clone(),
            port: env.master_port,
        };
        let timeout_duration = Duration::from_secs_f64(timeout);
        let group = match cuda {
            Some(device) => ProcessGroup::nccl(
                &rendezvous,
                env.rank,
                env.world_size,
                timeout_duration,
                device,
            ),
            None => ProcessGroup::gloo(&rendezvous, env.rank, env.world_size, timeout_duration),
        }
        .map_err(|e| {
            BuildError::new(format!(
                "rank {} of {}: {e}",
                env.rank, env.world_size
            ))
            .hint(format!(
                "every process must reach {}:{} within process_group_timeout ({timeout} s); rank 0 serves it, so the port must be free on rank 0's machine (MASTER_PORT picks another)",
                env.master_addr, env.master_port
            ))
        })?;
        Ok(Ddp {
            group,
            device: ctx.device.clone(),
            pending: [false; 2],
            agreed: [false; 2],
            trainable: Vec::new(),
        })
    }
}

impl StrategySpec for DdpSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Strategy>, BuildError> {
        let env = ClusterEnvironment::from_process().map_err(BuildError::new)?;
        let Some(env) = env else {
            return Err(BuildError::new(
                "strategy ddp needs several processes, and this one was started alone (no WORLD_SIZE/RANK or SLURM variables)",
            )
            .hint("start the processes with `cargo xtask train CONFIG --nproc 2`, `torchrun --nproc-per-node 2 --no-python <stoker> train CONFIG`, or srun"));
        };
        Ok(Box::new(self.connect(&env, ctx)?))
    }
}

impl Ddp {
    /// `what` failed in the process group: an error naming this rank and the collective.
    fn failed(&self, what: &str, error: String) -> StokerError {
        StokerError::msg(format!(
            "rank {} of {}: {what}: {error} (another process failed, was stopped, or did not reach {what} within process_group_timeout)",
            self.group.rank(),
            self.group.world_size()
        ))
    }
}

impl Ddp {
    /// Makes every process's weights rank 0's.
    fn broadcast_weights(&self, model: &mut dyn DynModel) -> Result<()> {
        self.group
            .broadcast_model(model, 0)
            .map_err(|e| self.failed("the broadcast of rank 0's weights", e))
    }

    /// `values` summed (or, with `max`, their maximum taken) over the processes, in place: one
    /// all-reduce of one float64 tensor. `what` names the collective in an error.
    fn all_reduce_values(&self, values: &mut [f64], max: bool, what: &str) -> Result<()> {
        let tensors = [tch::Tensor::from_slice(values)];
        let reduced = if max {
            self.group.all_reduce_max(&tensors)
        } else {
            self.group.all_reduce_sum(&tensors)
        };
        reduced.map_err(|e| self.failed(what, e))?;
        let out = Vec::<f64>::try_from(&tensors[0])
            .map_err(|e| StokerError::msg(format!("reading the result of {what}: {e}")))?;
        values.copy_from_slice(&out);
        Ok(())
    }

    /// Whether every process holds the same `values`: one all-reduce of the maxima of the
    /// values and of their negations.
    fn same_everywhere(&self, values: &[f64], what: &str) -> Result<bool> {
        let n = values.len();
        let mut both: Vec<f64> = values.iter().chain(values.iter()).copied().collect();
        both[n..].iter_mut().for_each(|v| *v = -*v);
        self.all_reduce_values(&mut both, true, what)?;
        Ok((0..n).all(|i| both[i] == -both[n + i]))
    }

    /// Whether every process holds the same weights: a hash of this process's (each
    /// tensor's name and bytes) compared in its two halves, each exact in a float64.
    fn weights_agree(&self, model: &dyn DynModel) -> Result<bool> {
        use std::hash::{Hash, Hasher};
        let bytes = model.to_safetensors()?;
        let file = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| StokerError::msg(format!("reading this process's weights: {e}")))?;
        let mut tensors = file.tensors();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let mut hasher = std::hash::DefaultHasher::new();
        for (name, view) in tensors {
            name.hash(&mut hasher);
            view.data().hash(&mut hasher);
        }
        let hash = hasher.finish();
        let halves = [(hash >> 32) as f64, (hash & 0xFFFF_FFFF) as f64];
        self.same_everywhere(&halves, "the weights' comparison")
    }
}

/// [`Reducer`] over the process group: the values cross as one float64 tensor per call.
struct GroupReducer<'a>(&'a Ddp);

impl Reducer for GroupReducer<'_> {
    fn sum(&mut self, values: &mut [f64]) -> Result<()> {
        self.0
            .all_reduce_values(values, false, "the metrics' all-reduce")
    }

    fn max(&mut self, values: &mut [f64]) -> Result<()> {
        self.0
            .all_reduce_values(values, true, "the metrics' all-reduce")
    }
}

impl Strategy for Ddp {
    fn setup(&mut self, model: &mut dyn DynModel) -> Result<()> {
        self.trainable = model
            .parameters()
            .into_iter()
            .filter(|p| p.trainable)
            .map(|p| p.path)
            .collect();
        self.broadcast_weights(model)
    }

    fn shard(&self) -> Shard {
        Shard {
            rank: self.group.rank(),
            world: self.group.world_size(),
        }
    }

    fn reduce_gradients(
        &mut self,
        model: &dyn DynModel,
        grads: GradientsParams,
    ) -> Result<GradientsParams> {
        if grads.len() != self.trainable.len() {
            let with: Vec<String> = model
                .gradients_flat(&grads)
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            let without: Vec<&String> = self
                .trainable
                .iter()
                .filter(|p| !with.contains(p))
                .collect();
            return Err(StokerError::msg(format!(
                "rank {}: {} of the model's trainable parameters got no gradient in this step ({}): data-parallel training needs a gradient for every trainable parameter in every step, so that the processes' gradients line up (DDP's find_unused_parameters=False)",
                self.group.rank(),
                without.len(),
                without
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut flags = self.pending.map(|f| f32::from(u8::from(f)));
        let grads = self
            .group
            .average_gradients(model, grads, &mut flags)
            .map_err(|e| self.failed("the gradients' all-reduce", e))?;
        self.agreed = flags.map(|f| f > 0.0);
        Ok(grads)
    }

    fn step_flags(&mut self, flags: [bool; 2]) -> [bool; 2] {
        for (pending, raised) in self.pending.iter_mut().zip(flags) {
            *pending |= raised;
        }
        self.agreed
    }

    fn reduce_metrics(&mut self, metrics: &mut [Box<dyn Metric>]) -> Result<()> {
        let device = self.device.clone();
        let mut reducer = GroupReducer(self);
        for metric in metrics.iter_mut() {
            metric.reduce(&mut reducer, &device)?;
        }
        Ok(())
    }

    fn agree(&mut self, values: &[f64]) -> Result<bool> {
        self.same_everywhere(values, "the comparison of where each process starts")
    }

    fn reduce_any(&mut self, flags: &mut [bool]) -> Result<()> {
        let mut values: Vec<f64> = flags.iter().map(|&f| f64::from(u8::from(f))).collect();
        self.all_reduce_values(&mut values, true, "the stop flags' all-reduce")?;
        for (flag, value) in flags.iter_mut().zip(values) {
            *flag = value > 0.0;
        }
        Ok(())
    }

    /// One all-reduce of a hash of each process's weights; rank 0's are broadcast only where
    /// they differ.
    fn sync_model(&mut self, model: &mut dyn DynModel) -> Result<bool> {
        if self.weights_agree(model)? {
            return Ok(false);
        }
        self.broadcast_weights(model)?;
        Ok(true)
    }

    fn sync_batchnorm(&mut self) -> Result<()> {
        self.group.sync_batch_norm(true);
        Ok(())
    }

    fn teardown(&mut self) -> Result<()> {
        self.group.sync_batch_norm(false);
        Ok(())
    }

    fn is_global_zero(&self) -> bool {
        self.group.rank() == 0
    }

    fn barrier(&mut self) -> Result<()> {
        self.group
            .barrier()
            .map_err(|e| self.failed("a barrier", e))
    }
}
