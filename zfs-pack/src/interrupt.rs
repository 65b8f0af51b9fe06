//! Stopping a pack cleanly: a flag the pack checks between batches of work, and a helper
//! for binaries that sets it on SIGINT and SIGTERM.
//!
//! The library itself never installs handlers; a binary calls [`on_signals`] once and
//! passes the flag in [`PackOptions::interrupt`](crate::PackOptions::interrupt). When the
//! flag is seen, the pack removes its `.pack` file and returns
//! [`PackError::Interrupted`](crate::PackError::Interrupted); the original is unchanged.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{PackError, Result};

static FLAG: AtomicBool = AtomicBool::new(false);

extern "C" fn handler(_sig: libc::c_int) {
    if FLAG.swap(true, Ordering::SeqCst) {
        // A second signal: the user insists. `_exit` is async-signal-safe; a `.pack`
        // file may be left, the original is still unchanged.
        // SAFETY: `_exit` ends the process without running any non-reentrant code.
        #[allow(unsafe_code)]
        unsafe {
            libc::_exit(130)
        };
    }
}

/// Sets the returned flag when the process receives SIGINT or SIGTERM (a second signal
/// ends the process at once with status 130).
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

/// `Err(Interrupted)` once `flag` is set.
pub(crate) fn check(flag: Option<&AtomicBool>) -> Result<()> {
    match flag {
        Some(f) if f.load(Ordering::Relaxed) => Err(PackError::Interrupted),
        _ => Ok(()),
    }
}
