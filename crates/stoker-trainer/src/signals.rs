//! SIGINT and SIGTERM: the first asks the loop to stop after the current step and save a
//! checkpoint; a second one ends the process at once (a process alone; one of several, which
//! may get each signal twice, leaves that to its launcher).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;

/// Printed to stderr by the first signal's handler.
pub const ACKNOWLEDGED: &str = "stoker: stopping after the current step and saving a checkpoint; signal again to abort at once\n";

/// Set once SIGINT or SIGTERM has arrived.
pub struct Interrupt {
    requested: Arc<AtomicBool>,
    ids: Vec<signal_hook::SigId>,
}

impl Interrupt {
    /// Installs the handlers (until dropped).
    pub fn install() -> std::io::Result<Interrupt> {
        let requested = Arc::new(AtomicBool::new(false));
        let mut ids = Vec::new();
        // One of several processes of a data-parallel run may get the same signal twice (from
        // its launcher and from a scheduler that signals every process): that is still one
        // request. The launcher ends them at once on a second signal of its own.
        let one_of_several = crate::strategy::environment::process_world_size() > 1;
        for signal in [SIGINT, SIGTERM] {
            // Registered first, so that it sees the flag before the second handler sets it:
            // a second signal exits immediately (128 + SIGINT, as a shell reports Ctrl-C).
            if !one_of_several {
                ids.push(flag::register_conditional_shutdown(
                    signal,
                    130,
                    Arc::clone(&requested),
                )?);
            }
            ids.push(flag::register(signal, Arc::clone(&requested))?);
            // Reached only by the first signal (a second one has exited above). Says at once
            // that the signal was seen, with `write(2)`, which is async-signal-safe.
            // SAFETY: the action only calls `write` on stderr with a static buffer.
            ids.push(unsafe {
                signal_hook::low_level::register(signal, || {
                    let _ = libc::write(
                        libc::STDERR_FILENO,
                        ACKNOWLEDGED.as_ptr().cast(),
                        ACKNOWLEDGED.len(),
                    );
                })
            }?);
        }
        Ok(Interrupt { requested, ids })
    }

    /// Whether a signal arrived.
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// For a process that supervises others (the `--nproc` launcher, a sweep): counts SIGINT,
/// SIGTERM and SIGHUP instead of acting on them, so that it can pass the first on to its
/// processes and kill them on the second.
pub fn count_signals() -> Arc<AtomicUsize> {
    let signals = Arc::new(AtomicUsize::new(0));
    for signal in [SIGINT, SIGTERM, signal_hook::consts::SIGHUP] {
        let count = Arc::clone(&signals);
        // SAFETY: the action only increments an atomic counter.
        let registered = unsafe {
            signal_hook::low_level::register(signal, move || {
                count.fetch_add(1, Ordering::SeqCst);
            })
        };
        if let Err(e) = registered {
            stoker_core::console::warn(format!("cannot catch signals to pass them on: {e}"));
        }
    }
    signals
}
