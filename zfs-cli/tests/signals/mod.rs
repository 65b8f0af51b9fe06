//! Delivering a signal to a child at a known moment, for the interruption tests: no sleeps
//! that guess how long the child takes to start or to finish.

use std::process::Command;
use std::time::{Duration, Instant};

/// True when process `pid` has a handler for signal `sig` (its `SigCgt` mask says so).
fn catches(pid: u32, sig: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (sig - 1)) != 0)
}

/// Waits until `pid` handles SIGTERM (15), stops it, queues SIGTERM and lets it go on: the
/// handler runs before the process does any more work, so its first check of the flag
/// sees it.
pub fn sigterm_once_handled(pid: u32) {
    let t = Instant::now();
    while !catches(pid, 15) {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no SIGTERM handler after 60 s"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    let pid = pid.to_string();
    for sig in ["-STOP", "-TERM", "-CONT"] {
        let status = Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {sig} {pid}");
    }
}
