//! Exit codes shared by the binaries, documented in `zodbfs --help`.

/// Success: the command did its work and found nothing wrong.
pub const OK: u8 = 0;
/// An error stopped the command (unreadable file, bad input, I/O failure).
pub const ERROR: u8 = 1;
/// Usage error (bad arguments).
pub const USAGE: u8 = 2;
/// The command ran to its end and found problems (damage, dangling references, data lost).
pub const FOUND_PROBLEMS: u8 = 3;
/// Interrupted (Ctrl-C).
pub const INTERRUPTED: u8 = 130;
