//! The run context of a long operation: where it reports progress (drawn by the CLI; the
//! libraries never print) and whether it should stop ([`Progress::interrupted`], a flag the
//! binaries set on SIGINT and SIGTERM). Every long walk of every crate (check, refs, stats,
//! recover, scans, pack, backups, conversions) takes one, so Ctrl-C stops all of them alike:
//! between chunks of work, with an "interrupted" error, nothing renamed into place.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The error of a long operation that stopped because its run context was interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// The run context of long operations: receives their progress and tells them whether to
/// stop. Implementations must be cheap and thread-safe.
pub trait Progress: Sync {
    /// Announces the amount of work (bytes, usually) of a new phase.
    fn start(&self, phase: &str, total: u64);
    /// Adds `n` units of completed work to the current phase.
    fn advance(&self, n: u64);
    /// Announces a new phase whose work is counted in `unit`s (objects, files) rather than
    /// bytes. By default the same as [`Progress::start`].
    fn start_counting(&self, phase: &str, total: u64, unit: &'static str) {
        let _ = unit;
        self.start(phase, total);
    }
    /// Whether the operation should stop now (the user pressed Ctrl-C). Long operations ask
    /// between chunks of work. By default never.
    fn interrupted(&self) -> bool {
        false
    }
    /// `Err(Interrupted)` once [`Progress::interrupted`] is true.
    fn check_interrupted(&self) -> Result<(), Interrupted> {
        if self.interrupted() {
            Err(Interrupted)
        } else {
            Ok(())
        }
    }
}

/// A run context made of a [`Progress`] and an interrupt flag (set by a signal handler):
/// progress goes to `progress`, and the run is interrupted once `flag` is set (or once
/// `progress` says so).
#[derive(Clone, Copy)]
pub struct Interruptible<'a> {
    /// Where progress goes.
    pub progress: &'a dyn Progress,
    /// Set to stop the run.
    pub flag: &'a AtomicBool,
}

impl Progress for Interruptible<'_> {
    fn start(&self, phase: &str, total: u64) {
        self.progress.start(phase, total);
    }
    fn advance(&self, n: u64) {
        self.progress.advance(n);
    }
    fn start_counting(&self, phase: &str, total: u64, unit: &'static str) {
        self.progress.start_counting(phase, total, unit);
    }
    fn interrupted(&self) -> bool {
        self.flag.load(Ordering::Relaxed) || self.progress.interrupted()
    }
}

/// A bare interrupt flag as a run context: no progress shown, interrupted once set.
impl Progress for AtomicBool {
    fn start(&self, _phase: &str, _total: u64) {}
    fn advance(&self, _n: u64) {}
    fn interrupted(&self) -> bool {
        self.load(Ordering::Relaxed)
    }
}

/// Discards all progress.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _phase: &str, _total: u64) {}
    fn advance(&self, _n: u64) {}
}

/// Counts progress; useful in tests.
#[derive(Debug, Default)]
pub struct Counter {
    /// Total of the last phase started.
    pub total: AtomicU64,
    /// Work done in the current phase.
    pub done: AtomicU64,
}

impl Progress for Counter {
    fn start(&self, _phase: &str, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
    }
    fn advance(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_interrupts_and_progress_passes_through() {
        let counter = Counter::default();
        let flag = AtomicBool::new(false);
        let run = Interruptible {
            progress: &counter,
            flag: &flag,
        };
        run.start("x", 10);
        run.advance(3);
        assert_eq!(counter.done.load(Ordering::Relaxed), 3);
        assert_eq!(counter.total.load(Ordering::Relaxed), 10);
        assert_eq!(run.check_interrupted(), Ok(()));
        assert!(!NoProgress.interrupted());
        flag.store(true, Ordering::Relaxed);
        assert!(run.interrupted());
        assert_eq!(run.check_interrupted(), Err(Interrupted));
        // Nested contexts see an outer interruption.
        let quiet = AtomicBool::new(false);
        let outer = Interruptible {
            progress: &run,
            flag: &quiet,
        };
        assert!(outer.interrupted());
        assert!(Progress::interrupted(&flag));
        assert!(!Progress::interrupted(&quiet));
    }
}
