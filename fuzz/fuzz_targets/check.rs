//! Fuzz target: see `zfs_check::fuzzing::check` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    zfs_check::fuzzing::check(input);
});
