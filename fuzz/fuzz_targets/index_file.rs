//! Loads arbitrary bytes as a `.index` file; what loads must save back to the same index.
#![no_main]

use zfs_format::index_file::{index_bytes, load_index};

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    if let Ok((pos, index)) = load_index(input) {
        let again = index_bytes(&index, pos);
        let (pos2, index2) = load_index(&again).expect("our own output loads");
        assert_eq!(pos, pos2);
        assert_eq!(index, index2);
    }
});
