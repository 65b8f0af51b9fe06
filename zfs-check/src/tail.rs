//! `fstail`'s text: the last transactions, newest first, with a SHA-1 of their records.

use std::io::Write;
use std::ops::Deref;

use sha1::{Digest, Sha1};
use zfs_format::repr::bytes_repr;
use zfs_format::timestamp::TimeStamp;
use zfs_format::{Error, FileStorage};

fn out_err(e: std::io::Error) -> Error {
    Error::io("<output>", e)
}

/// Writes fstail's text for the last `n` transactions of `fs` to `out`.
///
/// fstail walks back from the end of the file, so a last transaction still in its `c`
/// (checkpoint) state is shown, and so do we. Where the file ends in a torn transaction
/// (fstail fails there), we walk back from the end of the last complete transaction
/// instead. Returns the number of transactions printed.
pub fn tail<T: Deref<Target = [u8]>>(
    fs: &FileStorage<T>,
    n: u64,
    out: &mut dyn Write,
) -> Result<u64, Error> {
    let whole_file = fs.len();
    let start = match fs.transactions_rev(whole_file).next() {
        Some(Ok(_)) => whole_file,
        _ => fs.end()?.pos,
    };
    let mut printed = 0;
    for txn in fs.transactions_rev(start) {
        if printed == n {
            break;
        }
        let txn = txn?;
        let h = &txn.header;
        let hash = Sha1::digest(txn.records_bytes());
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        // fstail leaves user and description as the empty str '' unless the header has any
        // of the three strings, and then each present one is bytes.
        let field = |len: u16, b: &[u8]| {
            if len == 0 {
                "''".to_string()
            } else {
                bytes_repr(b)
            }
        };
        writeln!(out, "{}: hash={hex}", TimeStamp::from_bytes(txn.tid().0)).map_err(out_err)?;
        writeln!(
            out,
            "user={} description={} length={} offset={} (+{})",
            field(h.ulen, txn.user),
            field(h.dlen, txn.description),
            h.tlen,
            h.pos,
            h.header_len()
        )
        .map_err(out_err)?;
        writeln!(out).map_err(out_err)?;
        printed += 1;
    }
    Ok(printed)
}
