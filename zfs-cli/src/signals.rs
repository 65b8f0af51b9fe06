//! SIGINT and SIGTERM for long runs: the first sets a flag that the libraries check between
//! chunks of work (they then remove their temporary files and return an "interrupted"
//! error); a second one ends the process at once with status 130. A temporary file left by
//! that second signal is removed by the next run (see `zfs_files::remove_stale_temps`);
//! nothing is ever renamed over the user's files by an interrupted run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use signal_hook::consts::{SIGINT, SIGTERM};

static FLAG: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<()> = OnceLock::new();

/// Installs the handlers once; returns the flag they set.
pub fn on_signals() -> &'static AtomicBool {
    INSTALLED.get_or_init(|| {
        for sig in [SIGINT, SIGTERM] {
            // One action per signal, so there is no moment at which a signal is caught but
            // not recorded.
            // SAFETY: the action only swaps an atomic and calls `_exit`, both
            // async-signal-safe.
            #[allow(unsafe_code)]
            let _ = unsafe {
                signal_hook::low_level::register(sig, || {
                    if FLAG.swap(true, Ordering::SeqCst) {
                        signal_hook::low_level::exit(130);
                    }
                })
            };
        }
    });
    &FLAG
}
