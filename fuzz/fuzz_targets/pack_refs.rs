//! Fuzz target: see `zfs_pack::fuzzing::pack_refs` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    zfs_pack::fuzzing::pack_refs(input);
});
