//! Scans arbitrary bytes as a record's pickles: references, class name, zlib untransform.
#![no_main]

use std::hint::black_box;

use zfs_format::pickle::{class_name, references, untransform, StringMode};

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    black_box(references(input, StringMode::Ascii).ok());
    black_box(references(input, StringMode::Bytes).ok());
    black_box(class_name(input, StringMode::Ascii));
    black_box(class_name(input, StringMode::Bytes));
    if let Ok(data) = untransform(input) {
        black_box(references(&data, StringMode::Bytes).ok());
    }
});
