//! Fuzz target: the parsers of a repozo repository: `.dat` text, data file names and stamps,
//! and the gzip reader (`.fsz`/`.deltafsz`), on arbitrary bytes.
#![no_main]

use std::hint::black_box;

use zfs_repozo::{gz, names, repo};

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    black_box(repo::parse_dat("fuzz.dat", input).ok());
    if let Ok(text) = std::str::from_utf8(input) {
        black_box(names::Stamp::parse(text));
        black_box(names::parse_data_name(text));
    }
    let mut total = 0usize;
    let _ = gz::gunzip(input, "fuzz.fsz", &mut |chunk| {
        total += chunk.len();
        Ok(())
    });
    black_box(total);
});
