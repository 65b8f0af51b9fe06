//! Progress reporting without printing: long operations call a [`Progress`] the CLI draws.

use std::sync::atomic::{AtomicU64, Ordering};

/// Receives progress from long operations. Implementations must be cheap and thread-safe.
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
