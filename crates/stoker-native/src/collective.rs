//! Collectives between processes through libtorch's own c10d (`csrc/c10d.cpp`): the Gloo process
//! group PyTorch's DDP uses on CPU and, in a build with NCCL ([`nccl_available`]), the NCCL one it
//! uses on CUDA, with a file or TCP rendezvous. Every failure (a timeout, a process that died) is
//! an error with libtorch's message, never a hang past the timeout.

// burn-tch marks its types deprecated in favour of CubeCL backends; LibTorch is stoker's backend.
#![allow(deprecated)]

use std::ffi::{CString, c_char, c_int, c_void};
use std::path::PathBuf;
use std::time::Duration;

use std::collections::HashMap;

use burn::backend::libtorch::TchTensor;
use burn::optim::GradientsParams;
use stoker_core::model::DynModel;
use tch::Tensor;
use torch_sys::C_tensor;

use crate::dispatch::{from_plain, plain};
use crate::ffi::take_error;

unsafe extern "C" {
    fn stoker_c10d_gloo_new(
        address: *const c_char,
        port: c_int,
        rank: c_int,
        world: c_int,
        timeout_ms: i64,
        out: *mut *mut c_void,
    ) -> *mut c_char;
    fn stoker_c10d_has_nccl() -> c_int;
    #[cfg(stoker_nccl)]
    fn stoker_c10d_nccl_new(
        address: *const c_char,
        port: c_int,
        rank: c_int,
        world: c_int,
        timeout_ms: i64,
        device: c_int,
        out: *mut *mut c_void,
    ) -> *mut c_char;
    fn stoker_c10d_free(group: *mut c_void);
    fn stoker_c10d_all_reduce(
        group: *mut c_void,
        tensors: *const *const C_tensor,
        n: c_int,
        op: c_int,
    ) -> *mut c_char;
    fn stoker_c10d_broadcast(
        group: *mut c_void,
        tensors: *const *const C_tensor,
        n: c_int,
        root: c_int,
    ) -> *mut c_char;
    fn stoker_c10d_barrier(group: *mut c_void) -> *mut c_char;
    fn stoker_c10d_set_sync_group(group: *mut c_void);
    fn stoker_c10d_has_sync_group() -> c_int;
    fn stoker_c10d_sync_sum(x: *const C_tensor, out: *mut *mut C_tensor) -> *mut c_char;
}

/// Whether this build has libtorch's NCCL process group (built against a CUDA libtorch with
/// NCCL's headers, as `cargo xtask` sets it up).
pub fn nccl_available() -> bool {
    // SAFETY: reads a constant of the shim.
    unsafe { stoker_c10d_has_nccl() != 0 }
}

/// Whether batch normalization reduces its batch statistics over a process group
/// (`sync_batchnorm`, see [`ProcessGroup::sync_batch_norm`]).
pub fn sync_batch_norm_active() -> bool {
    // SAFETY: reads a flag of the shim.
    unsafe { stoker_c10d_has_sync_group() != 0 }
}

/// `x` summed over the `sync_batchnorm` group, differentiably: LibTorch's autograd records it,
/// and its backward sums the gradient over the processes too.
pub(crate) fn sync_sum(x: &Tensor) -> Result<Tensor, String> {
    let mut out = std::ptr::null_mut();
    // SAFETY: `x` is valid for the call; the shim writes a new tensor on success.
    let error = unsafe { stoker_c10d_sync_sum(x.as_ptr(), &mut out) };
    result(error, "sync_batchnorm's all-reduce of the batch statistics")?;
    // SAFETY: a new `torch::Tensor` the shim allocated and nobody else owns.
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// Where the processes of a group find each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendezvous {
    /// A file every process can reach (c10d's `FileStore`): one machine, or a shared file system.
    File(PathBuf),
    /// Rank 0 serves a `TCPStore` at this host and port (torchrun's `MASTER_ADDR`/`MASTER_PORT`).
    Tcp {
        /// The host of rank 0.
        host: String,
        /// Its port.
        port: u16,
    },
}

/// A Gloo or NCCL process group: this process's handle on the group.
pub struct ProcessGroup {
    handle: *mut c_void,
    rank: usize,
    world: usize,
}

// SAFETY: c10d's process group is used from one thread at a time (the training loop's); the
// handle is not shared.
unsafe impl Send for ProcessGroup {}

/// `Err` with the shim's message for `what`, when there is one.
fn result(error: *mut c_char, what: &str) -> Result<(), String> {
    match take_error(error) {
        None => Ok(()),
        Some(message) => Err(format!("{what}: {message}")),
    }
}

fn handles(tensors: &[Tensor]) -> Vec<*const C_tensor> {
    tensors.iter().map(|t| t.as_ptr()).collect()
}

impl ProcessGroup {
    /// Joins the Gloo group of `world` processes as `rank`, waiting for the others at most
    /// `timeout` (which then bounds every collective too).
    pub fn gloo(
        rendezvous: &Rendezvous,
        rank: usize,
        world: usize,
        timeout: Duration,
    ) -> Result<Self, String> {
        Self::join(rendezvous, rank, world, "Gloo", |address, port, handle| {
            // SAFETY: the address lives through the call; the shim writes the handle on success.
            unsafe {
                stoker_c10d_gloo_new(
                    address,
                    port,
                    rank as c_int,
                    world as c_int,
                    timeout.as_millis() as i64,
                    handle,
                )
            }
        })
    }

    /// Joins the NCCL group of `world` processes as `rank`, on CUDA device `device`; NCCL's
    /// watchdog ends a collective that takes longer than `timeout`. An error in a build without
    /// NCCL ([`nccl_available`]).
    pub fn nccl(
        rendezvous: &Rendezvous,
        rank: usize,
        world: usize,
        timeout: Duration,
        device: usize,
    ) -> Result<Self, String> {
        #[cfg(stoker_nccl)]
        return Self::join(rendezvous, rank, world, "NCCL", |address, port, handle| {
            // SAFETY: as in gloo.
            unsafe {
                stoker_c10d_nccl_new(
                    address,
                    port,
                    rank as c_int,
                    world as c_int,
                    timeout.as_millis() as i64,
                    device as c_int,
                    handle,
                )
            }
        });
        #[cfg(not(stoker_nccl))]
        {
            let _ = (rendezvous, rank, world, timeout, device);
            Err("this stoker was built against a libtorch without NCCL's headers (a CPU-only libtorch, or its environment lacks nvidia-nccl and CUDA's crt and cccl headers), so it cannot reduce CUDA tensors across processes".into())
        }
    }

    /// Checks the place, then joins the group `backend` names through `new(address, port,
    /// handle)`, the shim's constructor.
    fn join(
        rendezvous: &Rendezvous,
        rank: usize,
        world: usize,
        backend: &str,
        new: impl FnOnce(*const c_char, c_int, *mut *mut c_void) -> *mut c_char,
    ) -> Result<Self, String> {
        if world == 0 || rank >= world {
            return Err(format!("rank {rank} in a world of {world} processes"));
        }
        let (address, port) = match rendezvous {
            Rendezvous::File(path) => (path.display().to_string(), 0),
            Rendezvous::Tcp { host, port } => (host.clone(), i32::from(*port)),
        };
        let address = CString::new(address).map_err(|e| e.to_string())?;
        let mut handle = std::ptr::null_mut();
        let error = new(address.as_ptr(), port, &mut handle);
        result(error, &format!("joining the {backend} process group"))?;
        Ok(ProcessGroup {
            handle,
            rank,
            world,
        })
    }

    /// Makes this group the one batch normalization reduces its batch statistics over
    /// (`sync_batchnorm`: mean and variance over every process's batch), or, with `false`, no
    /// group: each process's own batch. Dropping the group ends it too.
    pub fn sync_batch_norm(&self, on: bool) {
        let group = if on {
            self.handle
        } else {
            std::ptr::null_mut()
        };
        // SAFETY: the handle is this live group's, or null.
        unsafe { stoker_c10d_set_sync_group(group) }
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of processes.
    pub fn world_size(&self) -> usize {
        self.world
    }

    /// Sums each of `tensors` over the processes, in place (every process gets the sums).
    pub fn all_reduce_sum(&self, tensors: &[Tensor]) -> Result<(), String> {
        self.all_reduce(tensors, 0, "all-reduce (sum)")
    }

    /// Replaces each of `tensors` by its element-wise maximum over the processes, in place.
    pub fn all_reduce_max(&self, tensors: &[Tensor]) -> Result<(), String> {
        self.all_reduce(tensors, 1, "all-reduce (max)")
    }

    fn all_reduce(&self, tensors: &[Tensor], op: c_int, what: &str) -> Result<(), String> {
        let list = handles(tensors);
        // SAFETY: the handles are valid tensors for the call; c10d writes into their storage.
        let error =
            unsafe { stoker_c10d_all_reduce(self.handle, list.as_ptr(), list.len() as c_int, op) };
        result(error, what)
    }

    /// Copies rank `root`'s `tensors` into every process's, in place.
    pub fn broadcast(&self, tensors: &[Tensor], root: usize) -> Result<(), String> {
        let list = handles(tensors);
        // SAFETY: as in all_reduce_sum.
        let error = unsafe {
            stoker_c10d_broadcast(
                self.handle,
                list.as_ptr(),
                list.len() as c_int,
                root as c_int,
            )
        };
        result(error, "broadcast")
    }

    /// Makes every process's `model` rank `root`'s, as DDP does before training: its weights
    /// (safetensors bytes, the same form as a checkpoint's) broadcast, and loaded on the other
    /// ranks with their parameter ids kept (the optimizer state is keyed by them).
    pub fn broadcast_model(&self, model: &mut dyn DynModel, root: usize) -> Result<(), String> {
        let is_root = self.rank == root;
        let bytes = if is_root {
            model.to_safetensors().map_err(|e| e.to_string())?
        } else {
            Vec::new()
        };
        let length = [Tensor::from_slice(&[bytes.len() as i64])];
        self.broadcast(&length, root)?;
        let n = i64::try_from(&length[0]).map_err(|e| e.to_string())?;
        let buffer = [if is_root {
            Tensor::from_slice(&bytes)
        } else {
            Tensor::zeros([n], (tch::Kind::Uint8, tch::Device::Cpu))
        }];
        self.broadcast(&buffer, root)?;
        if !is_root {
            let bytes = Vec::<u8>::try_from(&buffer[0]).map_err(|e| e.to_string())?;
            let ids = model.param_ids();
            model.load_safetensors(bytes).map_err(|e| e.to_string())?;
            model.set_param_ids(&ids).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// `grads` of `model` averaged over the processes, as DDP averages them: one all-reduce of
    /// every gradient in one flattened bucket, divided by the world size. Gradients must be
    /// LibTorch tensors (a model on `cpu` or `cuda`). `extra` travels in the same bucket and
    /// comes back summed over the processes (not divided): a few values to agree on without a
    /// collective of their own.
    pub fn average_gradients(
        &self,
        model: &dyn DynModel,
        grads: GradientsParams,
        extra: &mut [f32],
    ) -> Result<GradientsParams, String> {
        let mut paths = Vec::new();
        let mut tensors = Vec::new();
        for (path, gradient) in model.gradients_flat(&grads) {
            let Some(tensor) = plain(gradient.into_dispatch()) else {
                return Err(format!(
                    "the gradient of `{path}` is not a LibTorch tensor: data-parallel training needs the device `cpu` or `cuda`"
                ));
            };
            paths.push(path);
            tensors.push(tensor.tensor);
        }
        let carried = match tensors.first() {
            Some(first) => Tensor::from_slice(extra)
                .to_kind(first.kind())
                .to_device(first.device()),
            None => Tensor::from_slice(extra),
        };
        tensors.push(carried);
        self.all_reduce_sum(&tensors)?;
        let carried = tensors
            .pop()
            .expect("pushed above")
            .to_kind(tch::Kind::Float);
        let summed = Vec::<f32>::try_from(&carried).map_err(|e| e.to_string())?;
        extra.copy_from_slice(&summed);
        let world = self.world as f64;
        let mut averaged: HashMap<String, Tensor> = paths
            .into_iter()
            .zip(tensors.iter().map(|t| t / world))
            .collect();
        Ok(
            model.map_gradients(grads, &mut |path, gradient| match averaged.remove(path) {
                Some(tensor) => from_plain(TchTensor::new(tensor)),
                None => gradient,
            }),
        )
    }

    /// Waits until every process reached this call.
    pub fn barrier(&self) -> Result<(), String> {
        // SAFETY: the handle is valid until drop.
        result(unsafe { stoker_c10d_barrier(self.handle) }, "barrier")
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: made by the shim (stoker_c10d_gloo_new or _nccl_new), freed once.
        unsafe { stoker_c10d_free(self.handle) };
    }
}
