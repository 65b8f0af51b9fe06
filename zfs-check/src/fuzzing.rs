//! The bodies of the fuzz targets of the tolerant walkers, shared by `fuzz/` (cargo-fuzz)
//! and by the replay test `tests/fuzzed.rs`, so that an input once found by the fuzzer is
//! checked by `cargo test`. Each function must return normally on any input; a panic is a
//! bug (a failed assertion names the property that broke).

use std::hint::black_box;

use zfs_format::fuzzing::{assert_sound, Scratch};
use zfs_format::NoProgress;

use crate::check::{check as run_check, Kind, Options, Report};
use crate::recover::{recover as run_recover, RecoverError};

/// Checks arbitrary bytes as a Data.fs, in full and quick mode, and once more with the
/// same bytes as its saved `.index`. Both modes walk the same headers and records, so
/// they agree on what they counted; every finding lies in the file and they come in file
/// order.
pub fn check(input: &[u8]) {
    let full = run_check(input, &Options::default(), &NoProgress);
    let quick = run_check(
        input,
        &Options {
            quick: true,
            index: None,
        },
        &NoProgress,
    );
    for r in [&full, &quick] {
        sound_report(r, input.len() as u64);
    }
    assert_eq!(
        (full.transactions, full.records, full.skipped_bytes),
        (quick.transactions, quick.records, quick.skipped_bytes),
        "quick and full checks walked different structures"
    );
    let with_index = run_check(
        input,
        &Options {
            quick: false,
            index: Some(input),
        },
        &NoProgress,
    );
    black_box(with_index);
}

/// The properties every report has.
fn sound_report(r: &Report, len: u64) {
    assert_eq!(r.file_len, len);
    assert!(
        r.skipped_bytes <= len,
        "skipped {} of {len} bytes",
        r.skipped_bytes
    );
    assert!(
        r.findings.windows(2).all(|w| w[0].offset <= w[1].offset),
        "findings out of order"
    );
    for f in &r.findings {
        let about_index = matches!(
            f.kind,
            Kind::IndexUnreadable | Kind::IndexPosition | Kind::IndexMismatch
        );
        assert!(
            about_index || f.offset <= len,
            "finding past the end of the file: {f:?}"
        );
    }
}

/// Recovers arbitrary bytes into a file, which must then be a sound FileStorage holding
/// exactly the transactions and records the report counts.
pub fn recover(input: &[u8]) {
    let Some(dir) = Scratch::new() else {
        return;
    };
    let path = dir.path("out.fs");
    let Ok(out) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
    else {
        return;
    };
    let report = match run_recover(input, &out, &NoProgress) {
        Ok(r) => r,
        Err(RecoverError::NotAFileStorage(_)) => return,
        // The scratch space, not the input: nothing to learn.
        Err(RecoverError::Io(_)) => return,
    };
    let Ok(bytes) = std::fs::read(&path) else {
        return;
    };
    assert_eq!(bytes.len() as u64, report.output_len, "output length");
    let (txns, records) = assert_sound(&bytes, "recovered file");
    assert_eq!(
        (txns, records),
        (report.transactions, report.records),
        "the report counts other transactions or records than the output holds"
    );
    assert!(report.removed_bytes <= input.len() as u64);
}
