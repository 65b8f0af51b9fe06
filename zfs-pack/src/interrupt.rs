//! Stopping a pack cleanly: the run context ([`Progress::interrupted`]) is asked between
//! batches of work.
//!
//! The library never installs signal handlers; a binary's run context reports the
//! interruption (zodbfs's does on SIGINT and SIGTERM). When it is seen, the pack removes
//! its `.pack` file and returns [`PackError::Interrupted`]; the original is unchanged.

use zfs_format::Progress;

use crate::error::{PackError, Result};

/// `Err(Interrupted)` once the run context says to stop.
pub(crate) fn check(progress: &dyn Progress) -> Result<()> {
    progress
        .check_interrupted()
        .map_err(|_| PackError::Interrupted)
}
