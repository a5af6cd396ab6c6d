//! Running one side of a comparison: a child process whose peak resident memory comes from the
//! kernel (`wait4`'s `ru_maxrss`) and, on CUDA, whose peak device memory is sampled from
//! `nvidia-smi` every 100 ms. Both sides are measured the same way.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

/// What one finished child left.
pub struct Finished {
    /// Its standard output.
    pub stdout: String,
    /// Its exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// Its peak resident set size, bytes.
    pub peak_rss: u64,
    /// Its peak device memory as `nvidia-smi` saw it, bytes (when sampled).
    pub peak_device: Option<u64>,
}

/// The device memory `nvidia-smi` reports for process `pid`, bytes.
fn device_memory_of(pid: u32) -> Option<u64> {
    let out = Command::new("nvidia-smi")
        .args([
            "--query-compute-apps=pid,used_memory",
            "--format=csv,noheader,nounits",
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| {
            let (p, mib) = line.split_once(',')?;
            (p.trim().parse::<u32>().ok()? == pid)
                .then(|| mib.trim().parse::<u64>().ok().map(|m| m << 20))?
        })
}

/// Runs `command` to its end (stderr passes through, stdout is kept), sampling device memory
/// when `sample_device`.
pub fn run(mut command: Command, sample_device: bool) -> Result<Finished, String> {
    command.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {command:?}: {e}"))?;
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout is piped");
    let reader = thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let done = Arc::new(AtomicBool::new(false));
    let peak_device = Arc::new(AtomicU64::new(0));
    let sampler = sample_device.then(|| {
        let (done, peak) = (Arc::clone(&done), Arc::clone(&peak_device));
        thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(bytes) = device_memory_of(pid) {
                    peak.fetch_max(bytes, Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(100));
            }
        })
    });
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value, and wait4 writes only into it and `status`.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = loop {
        // SAFETY: `pid` is our own child, not yet reaped (std::process::Child does not reap it
        // unless its wait methods are called, and they are not).
        let reaped = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        let error = std::io::Error::last_os_error();
        if reaped == -1 && error.kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break (reaped == pid as libc::pid_t).then_some(()).ok_or(error);
    };
    done.store(true, Ordering::Relaxed);
    if let Some(sampler) = sampler {
        let _ = sampler.join();
    }
    if let Err(error) = reaped {
        return Err(format!("waiting for {command:?}: {error}"));
    }
    let stdout = reader.join().unwrap_or_default();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let device = peak_device.load(Ordering::Relaxed);
    Ok(Finished {
        stdout,
        code,
        // Linux reports ru_maxrss in kibibytes.
        peak_rss: usage.ru_maxrss as u64 * 1024,
        peak_device: (sample_device && device > 0).then_some(device),
    })
}
