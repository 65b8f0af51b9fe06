//! Fuzz target: see `zfs_format::fuzzing::refs_file` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    zfs_format::fuzzing::refs_file(input);
});
