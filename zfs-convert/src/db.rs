//! Connections to the destination.

use postgres::{Client, Config, NoTls};

use crate::error::{DbContext, Result};

/// Opens a connection to `url` (a libpq URL or key=value string), named in
/// `pg_stat_activity` as zodbfs.
pub(crate) fn connect(url: &str) -> Result<Client> {
    let mut cfg: Config = url.parse().db(|| format!("the database URL '{url}'"))?;
    cfg.application_name("zodbfs convert");
    let mut c = cfg.connect(NoTls).db(|| format!("connecting to '{url}'"))?;
    // Durability of each batch is not needed: a batch lost to a server crash is lost with
    // its manifest entry, and copied again on resume.
    c.batch_execute("SET synchronous_commit = off")
        .db(|| "configuring the session".into())?;
    Ok(c)
}
