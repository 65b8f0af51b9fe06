//! `zodbfs oids`: the history of given objects and who refers to them (fsoids).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use zfs_cli::exit;

use crate::common::{hex_oid, load_index, open, Ctx};

/// Exit codes, shown by `zodbfs oids --help`.
const EXIT_CODES: &str = "Exit codes: 0 = the histories were printed (unknown oids and \
unreadable revisions are part of them, not a failure: use `zodbfs check` and `zodbfs refs` \
to look for damage); 1 = it could not run (a missing or unreadable file, not a FileStorage \
file, damage that stops the index scan); 2 = bad arguments, such as an oid that does not \
parse.";

/// Arguments of `zodbfs oids`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct OidsArgs {
    /// The Data.fs file.
    pub file: PathBuf,
    /// Object ids: hex (`0x1a`, `000000000000001a`) or decimal (`26`).
    #[arg(required = true)]
    pub oids: Vec<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Parses an oid given as hex (`0x1a`, or 16 hex digits) or decimal.
fn parse_oid(s: &str) -> anyhow::Result<zfs_format::Oid> {
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if s.len() == 16 {
        u64::from_str_radix(s, 16).ok()
    } else {
        s.parse::<u64>().ok()
    };
    v.map(zfs_format::Oid::from_u64).ok_or_else(|| {
        crate::common::usage(format!(
            "'{s}' is not an oid (use 0x1a, 000000000000001a or 26)"
        ))
    })
}

/// Runs `oids`.
pub fn run(a: OidsArgs, ctx: &Ctx) -> anyhow::Result<u8> {
    use zfs_check::oids::What;
    let oids = a
        .oids
        .iter()
        .map(|s| parse_oid(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let fs = open(&a.file)?;
    let bar = ctx.bar();
    let index = load_index(&fs, &a.file, &bar)?;
    let hs = zfs_check::oids::histories(&fs, &index, &oids, &bar)
        .with_context(|| format!("'{}'", a.file.display()))?;
    bar.finish();
    let describe = |w: &What| -> String {
        match w {
            What::NewRevision {
                class,
                size,
                backpointer,
            } => {
                format!(
                    "new revision {class}, {size} bytes{}",
                    if *backpointer {
                        " (backpointer to an earlier state)"
                    } else {
                        ""
                    }
                )
            }
            What::Deleted => "does not exist from here (creation undone or deleted)".into(),
            What::Unreadable { error } => format!("unreadable revision: {error}"),
            What::References { target } => {
                let t = hex_oid(target);
                let known = <[u8; 8]>::try_from(target.as_slice())
                    .is_ok_and(|o| index.contains(zfs_format::Oid(o)));
                format!(
                    "references {t}{}",
                    if known {
                        ""
                    } else {
                        " (dangling: no such object)"
                    }
                )
            }
            What::ReferencedBy { referrer, class } => format!("referenced by {referrer} {class}"),
            What::Unscannable { error } => format!("references cannot be read: {error}"),
        }
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        #[derive(serde::Serialize)]
        struct Json<'a> {
            file: String,
            oids: &'a [zfs_check::oids::History],
        }
        let v = Json {
            file: a.file.display().to_string(),
            oids: &hs,
        };
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(exit::OK);
    }
    for h in &hs {
        writeln!(
            out,
            "oid {} {} {} revision{}{}",
            h.oid,
            h.class.as_deref().unwrap_or("<no data record>"),
            h.revisions,
            if h.revisions == 1 { "" } else { "s" },
            if h.in_index {
                ""
            } else {
                " (not in the index: never stored, or packed away)"
            }
        )?;
        let mut last_txn = None;
        for e in &h.events {
            if last_txn != Some(e.txn_pos) {
                writeln!(
                    out,
                    "    tid {} offset={} user={} description={}",
                    e.tid,
                    e.txn_pos,
                    zfs_format::repr::bytes_repr(&e.user),
                    zfs_format::repr::bytes_repr(&e.description)
                )?;
                last_txn = Some(e.txn_pos);
            }
            writeln!(out, "        {} at {}", describe(&e.what), e.offset)?;
        }
    }
    Ok(exit::OK)
}
