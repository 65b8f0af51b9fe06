//! What `--version` prints: the version, the commit the binary was built from (recorded by
//! `build.rs`) and, in the long form, which MD5 code repozo's checksums run on.

/// `0.1.0 (commit 0123456789ab)`.
pub const SHORT: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ZODBFS_COMMIT"),
    ")"
);

/// The date of that commit (`YYYY-MM-DD`, or `unknown`), for the man pages.
pub const COMMIT_DATE: &str = env!("ZODBFS_COMMIT_DATE");

/// The short form, then one line naming the MD5 implementation this CPU gets.
pub fn long() -> String {
    format!("{SHORT}\nMD5: {}", zfs_repozo::md5::Md5::implementation())
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_version_and_commit() {
        assert!(super::SHORT.starts_with(concat!(env!("CARGO_PKG_VERSION"), " (commit ")));
        let commit =
            &super::SHORT[super::SHORT.find("commit ").unwrap() + 7..super::SHORT.len() - 1];
        assert!(
            commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit()),
            "{commit}"
        );
        assert!(super::long().starts_with(super::SHORT));
        assert!(super::long().contains("\nMD5: "));
    }
}
