//! SIGINT and SIGTERM: the first asks the loop to stop after the current step and save a
//! checkpoint; a second one ends the process at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;

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
        for signal in [SIGINT, SIGTERM] {
            // Registered first, so that it sees the flag before the second handler sets it:
            // a second signal exits immediately (128 + SIGINT, as a shell reports Ctrl-C).
            ids.push(flag::register_conditional_shutdown(
                signal,
                130,
                Arc::clone(&requested),
            )?);
            ids.push(flag::register(signal, Arc::clone(&requested))?);
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
