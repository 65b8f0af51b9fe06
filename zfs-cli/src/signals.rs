//! SIGINT and SIGTERM for long runs: the first sets a flag that the libraries check between
//! chunks of work (they then remove their temporary files and return an "interrupted"
//! error); a second one ends the process at once with status 130. A temporary file left by
//! that second signal is removed by the next run (see `zfs_files::remove_stale_temps`);
//! nothing is ever renamed over the user's files by an interrupted run.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Installs the handlers once; returns the flag they set.
pub fn on_signals() -> &'static AtomicBool {
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [SIGINT, SIGTERM] {
            // The order matters: the shutdown action fires only once the flag is already
            // set, i.e. on the second signal.
            let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag));
            let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        }
        flag
    })
}
