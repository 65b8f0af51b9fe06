//! `zodbfs pack` (the pack issue; not built yet).

use std::path::PathBuf;

use crate::common::Ctx;

/// Arguments of `zodbfs pack`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The Data.fs file.
    pub file: PathBuf,
}

/// Runs `pack`.
pub fn run(_a: Args, _c: &Ctx) -> anyhow::Result<u8> {
    anyhow::bail!("'zodbfs pack' is not implemented yet")
}
