//! What packaging relies on: `--version` of both binaries, `zodbfs completions` and the
//! man pages and completions that `zodbfs generate-docs` writes under a prefix.

use assert_cmd::Command;
use predicates::prelude::*;

fn bin(name: &str) -> Command {
    Command::cargo_bin(name).expect("the binary is built")
}

#[test]
fn both_binaries_print_version_and_commit() {
    let want = format!("{} (commit ", env!("CARGO_PKG_VERSION"));
    bin("zodbfs")
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with(format!("zodbfs {want}")))
        .stdout(predicate::str::contains("\nMD5: "));
    bin("zodbfs")
        .arg("-V")
        .assert()
        .success()
        .stdout(predicate::str::starts_with(format!("zodbfs {want}")))
        .stdout(predicate::str::contains("MD5").not());
    bin("zodbfs-repozo")
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with(format!("zodbfs-repozo {want}")));
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef zodbfs"),
        ("fish", "complete -c zodbfs"),
    ] {
        bin("zodbfs")
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains(marker))
            .stdout(predicate::str::contains("reindex"));
    }
    bin("zodbfs").args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn generate_docs_writes_pages_and_completions_under_the_prefix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = dir.path().join("prefix");
    bin("zodbfs")
        .arg("generate-docs")
        .arg(&prefix)
        .assert()
        .success();
    for rel in [
        "share/man/man1/zodbfs.1",
        "share/man/man1/zodbfs-pack.1",
        "share/man/man1/zodbfs-repozo.1",
        "share/bash-completion/completions/zodbfs",
        "share/zsh/site-functions/_zodbfs",
        "share/fish/vendor_completions.d/zodbfs.fish",
    ] {
        let text = std::fs::read_to_string(prefix.join(rel)).expect(rel);
        assert!(text.contains("zodbfs"), "{rel}");
    }
    let pack =
        std::fs::read_to_string(prefix.join("share/man/man1/zodbfs-pack.1")).expect("pack page");
    assert!(
        pack.contains("\\-\\-days"),
        "the pack page documents --days"
    );
    // The hidden command documents nothing of itself.
    assert!(!prefix
        .join("share/man/man1/zodbfs-generate-docs.1")
        .exists());
}
