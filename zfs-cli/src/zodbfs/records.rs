//! `zodbfs records`: one line per data record with its class and references.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use zfs_cli::exit;
use zfs_format::pickle::{class_name, references};

use crate::common::{open, Ctx};

/// Arguments of `zodbfs records`.
///
/// For every data record that carries its own pickle, in file order:
/// `pos=<offset> oid=<hex> class=<module.name> refs=<hex>,<hex>...`, the references being
/// what ZODB's `referencesf` returns (strong references, in pickle order, duplicates kept).
/// FS21 pickles read strings as bytes, FS30 pickles as ASCII, as Python 2 and 3 ZODB do.
/// A pickle that cannot be read prints `refs=ERROR:<why>` and the exit code is 3.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit codes: 0 = every pickle was read; 3 = some pickles could not be read (their \
lines say ERROR); 1 = it could not run (a missing or unreadable file, not a \
FileStorage file, damage in the middle of the file); 2 = bad arguments."
)]
pub struct Args {
    /// The Data.fs file.
    pub file: PathBuf,
}

/// Runs `records`.
pub fn run(a: Args, _ctx: &Ctx) -> anyhow::Result<u8> {
    let fs = open(&a.file)?;
    let mode = fs.magic().string_mode();
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut failed = false;
    let ctx = || format!("'{}'", a.file.display());
    for t in fs.transactions() {
        let t = t.with_context(ctx)?;
        for r in t.records() {
            let r = r.with_context(ctx)?;
            let Some(data) = r.data() else { continue };
            let class = class_name(data, mode);
            write!(out, "pos={} oid={} class={class} refs=", r.pos, r.oid)?;
            match references(data, mode) {
                Ok(refs) => {
                    for (i, oid) in refs.iter().enumerate() {
                        if i > 0 {
                            out.write_all(b",")?;
                        }
                        for b in oid.iter() {
                            write!(out, "{b:02x}")?;
                        }
                    }
                    writeln!(out)?;
                }
                Err(e) => {
                    failed = true;
                    writeln!(out, "ERROR:{e}")?;
                }
            }
        }
    }
    out.flush()?;
    Ok(if failed {
        exit::FOUND_PROBLEMS
    } else {
        exit::OK
    })
}
