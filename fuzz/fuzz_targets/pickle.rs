//! Fuzz target: see `zfs_format::fuzzing::pickle` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    zfs_format::fuzzing::pickle(input);
});
