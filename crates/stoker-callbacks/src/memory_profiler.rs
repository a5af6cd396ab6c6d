//! `MemoryProfiler`: peak host memory, and CUDA memory on a GPU.

use serde::{Deserialize, Serialize};
use stoker::native::device::libtorch_cuda_index;
use stoker::prelude::*;

/// Logs the process's peak and current resident host memory (memory_host_peak_mb, memory_host_rss_mb) and, on a CUDA device, the device memory in use and its peak (memory_cuda_used_mb, memory_cuda_peak_mb), every epoch and every N steps.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(callback, name = "MemoryProfiler")]
pub struct MemoryProfilerSpec {
    /// Also sample every N optimizer steps (0: at epoch ends only).
    #[serde(default)]
    pub every_n_steps: usize,
}

/// Resident and peak resident host memory of this process in MB, from `/proc/self/status`.
pub fn host_memory_mb() -> Option<(f64, f64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Device memory in use on CUDA device `index`, in MB, through the CUDA runtime that LibTorch
/// loaded (`cudaMemGetInfo`: the whole device's use, this process's CUDA context included).
pub fn cuda_used_mb(index: usize) -> Option<f64> {
    type SetDevice = unsafe extern "C" fn(i32) -> i32;
    type MemGetInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> i32;
    for name in ["libcudart.so.13", "libcudart.so.12", "libcudart.so"] {
        // SAFETY: loading the CUDA runtime runs no initialisers with preconditions; the two
        // symbols have the C signatures declared above (CUDA runtime API).
        unsafe {
            let Ok(library) = libloading::Library::new(name) else {
                continue;
            };
            let set: libloading::Symbol<SetDevice> = library.get(b"cudaSetDevice\0").ok()?;
            let info: libloading::Symbol<MemGetInfo> = library.get(b"cudaMemGetInfo\0").ok()?;
            if set(index as i32) != 0 {
                return None;
            }
            let (mut free, mut total) = (0usize, 0usize);
            if info(&mut free, &mut total) != 0 {
                return None;
            }
            return Some((total - free) as f64 / (1024.0 * 1024.0));
        }
    }
    None
}

/// The built callback.
pub struct MemoryProfiler {
    every_n_steps: usize,
    cuda_peak: f64,
}

impl MemoryProfiler {
    fn sample(&mut self, ctx: &mut HookContext<'_>) {
        if let Some((rss, peak)) = host_memory_mb() {
            ctx.control.log("memory_host_rss_mb", rss);
            ctx.control.log("memory_host_peak_mb", peak);
        }
        if let Some(used) = libtorch_cuda_index(ctx.device).and_then(cuda_used_mb) {
            self.cuda_peak = self.cuda_peak.max(used);
            ctx.control.log("memory_cuda_used_mb", used);
            ctx.control.log("memory_cuda_peak_mb", self.cuda_peak);
        }
    }
}

impl Callback for MemoryProfiler {
    fn logs(&self, name: &str) -> bool {
        matches!(
            name,
            "memory_host_rss_mb"
                | "memory_host_peak_mb"
                | "memory_cuda_used_mb"
                | "memory_cuda_peak_mb"
        )
    }

    fn on_train_batch_end(
        &mut self,
        ctx: &mut HookContext<'_>,
        _step: &StepView<'_>,
        stepped: bool,
    ) -> Result<()> {
        if self.every_n_steps > 0
            && stepped
            && ctx.position.global_step.is_multiple_of(self.every_n_steps)
        {
            self.sample(ctx);
        }
        Ok(())
    }

    fn on_train_epoch_end(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        self.sample(ctx);
        Ok(())
    }
}

impl CallbackSpec for MemoryProfilerSpec {
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn Callback>, BuildError> {
        Ok(Box::new(MemoryProfiler {
            every_n_steps: self.every_n_steps,
            cuda_peak: 0.0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_memory_is_read_and_peak_is_at_least_current() {
        let (rss, peak) = host_memory_mb().expect("/proc/self/status is readable on Linux");
        assert!(rss > 1.0 && peak >= rss, "rss {rss} peak {peak}");
    }
}
