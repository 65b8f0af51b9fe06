//! `zodbfs backup`, `restore`, `verify` (the repozo issue; not built yet).

use std::path::PathBuf;

use crate::common::Ctx;

/// Arguments of `zodbfs backup`.
#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The Data.fs file.
    pub file: PathBuf,
}
/// Arguments of `zodbfs restore`.
#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The repository.
    pub repository: PathBuf,
}
/// Arguments of `zodbfs verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The repository.
    pub repository: PathBuf,
}

fn missing(what: &str) -> anyhow::Result<u8> {
    anyhow::bail!("'zodbfs {what}' is not implemented yet")
}
/// Runs `backup`.
pub fn run_backup(_a: BackupArgs, _c: &Ctx) -> anyhow::Result<u8> {
    missing("backup")
}
/// Runs `restore`.
pub fn run_restore(_a: RestoreArgs, _c: &Ctx) -> anyhow::Result<u8> {
    missing("restore")
}
/// Runs `verify`.
pub fn run_verify(_a: VerifyArgs, _c: &Ctx) -> anyhow::Result<u8> {
    missing("verify")
}
