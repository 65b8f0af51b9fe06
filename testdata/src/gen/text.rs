//! Words, user names and notes for bodies and transaction metadata.

use super::rng::Rng;

/// Words of bodies and tags (two of them not ASCII).
pub const WORDS: &[&str] = &[
    "alpha", "beta", "gamma", "delta", "school", "pupil", "grade", "teacher", "course", "term",
    "report", "backup", "restore", "pack", "zodb", "storage", "record", "object", "index", "blob",
    "cache", "commit", "undo", "tree", "bucket", "élève", "réglage", "archive", "folder",
    "document", "version", "policy",
];

/// User names as ZODB stores them (`path user`, a bare user, or none).
pub const USERS: &[&str] = &[
    "/ admin",
    "/site teacher",
    "/acl_users cron",
    "/ Zoë",
    "/acl_users José Núñez",
    "管理者",
    "o'brien",
    "",
];

/// Notes appended to descriptions.
pub const NOTES: &[&str] = &[
    "edit",
    "import batch",
    "nightly job",
    "réglage → ok",
    "修正",
    "fix: \"quotes\"",
    "multi\nline note",
    "tab\tnote",
];

/// Appends `n` words separated by spaces.
pub fn words(rng: &mut Rng, n: usize, out: &mut Vec<u8>) {
    for i in 0..n {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(rng.pick(WORDS).as_bytes());
    }
}
