//! Stopping a pack cleanly: a flag the pack checks between batches of work.
//!
//! The library never installs signal handlers; a binary sets the flag (zodbfs does on
//! SIGINT and SIGTERM) and passes it in [`PackOptions::interrupt`](crate::PackOptions::interrupt). When the
//! flag is seen, the pack removes its `.pack` file and returns
//! [`PackError::Interrupted`]; the original is unchanged.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{PackError, Result};

/// `Err(Interrupted)` once `flag` is set.
pub(crate) fn check(flag: Option<&AtomicBool>) -> Result<()> {
    match flag {
        Some(f) if f.load(Ordering::Relaxed) => Err(PackError::Interrupted),
        _ => Ok(()),
    }
}
