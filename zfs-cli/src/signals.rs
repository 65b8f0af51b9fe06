//! SIGINT and SIGTERM for long runs: the first sets a flag that the libraries check between
//! chunks of work (they then remove their temporary files and return an "interrupted"
//! error); a second one ends the process at once with status 130.

use std::sync::atomic::{AtomicBool, Ordering};

static FLAG: AtomicBool = AtomicBool::new(false);

extern "C" fn handler(_sig: libc::c_int) {
    if FLAG.swap(true, Ordering::SeqCst) {
        // A second signal: the user insists. Temporary files may be left (the next run
        // removes them); nothing was renamed over the user's files.
        // SAFETY: `_exit` is async-signal-safe and ends the process without running any
        // non-reentrant code.
        #[allow(unsafe_code)]
        unsafe {
            libc::_exit(130)
        };
    }
}

/// Installs the handlers once; returns the flag they set.
pub fn on_signals() -> &'static AtomicBool {
    let h = handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only touches an atomic and calls `_exit`, both
        // async-signal-safe.
        #[allow(unsafe_code)]
        unsafe {
            libc::signal(sig, h);
        }
    }
    &FLAG
}
