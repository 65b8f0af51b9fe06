//! `zodbfs check`, `refs`, `recover`, `stats`, `oids` (the integrity issue; not built yet).

use std::path::PathBuf;

use crate::common::Ctx;

/// Arguments of `zodbfs check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The Data.fs file.
    pub file: PathBuf,
}
/// Arguments of `zodbfs refs`.
#[derive(clap::Args, Debug)]
pub struct RefsArgs {
    /// The Data.fs file.
    pub file: PathBuf,
}
/// Arguments of `zodbfs recover`.
#[derive(clap::Args, Debug)]
pub struct RecoverArgs {
    /// The damaged file.
    pub input: PathBuf,
    /// The new file.
    pub output: PathBuf,
}
/// Arguments of `zodbfs stats`.
#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// The Data.fs file.
    pub file: PathBuf,
}
/// Arguments of `zodbfs oids`.
#[derive(clap::Args, Debug)]
pub struct OidsArgs {
    /// The Data.fs file.
    pub file: PathBuf,
    /// Object ids in hex.
    pub oids: Vec<String>,
}

fn missing(what: &str) -> anyhow::Result<u8> {
    anyhow::bail!("'zodbfs {what}' is not implemented yet")
}
/// Runs `check`.
pub fn run_check(_a: CheckArgs, _c: &Ctx) -> anyhow::Result<u8> {
    missing("check")
}
/// Runs `refs`.
pub fn run_refs(_a: RefsArgs, _c: &Ctx) -> anyhow::Result<u8> {
    missing("refs")
}
/// Runs `recover`.
pub fn run_recover(_a: RecoverArgs, _c: &Ctx) -> anyhow::Result<u8> {
    missing("recover")
}
/// Runs `stats`.
pub fn run_stats(_a: StatsArgs, _c: &Ctx) -> anyhow::Result<u8> {
    missing("stats")
}
/// Runs `oids`.
pub fn run_oids(_a: OidsArgs, _c: &Ctx) -> anyhow::Result<u8> {
    missing("oids")
}
