//! Records the commit the binaries are built from, for `--version`: `ZODBFS_COMMIT` when set
//! (builds from an exported tree), else `git` in the source tree, else the
//! `.cargo_vcs_info.json` that `cargo package` writes (builds from crates.io), else `unknown`.
//! Its date (`ZODBFS_COMMIT_DATE`, the same way, without the cargo fallback) dates the man
//! pages.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}

/// The `"sha1"` value of `.cargo_vcs_info.json`, read without a JSON parser (its layout is
/// fixed by cargo).
fn packaged_commit(manifest_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest_dir.join(".cargo_vcs_info.json")).ok()?;
    let after = text.split("\"sha1\"").nth(1)?;
    let sha: String = after
        .chars()
        .skip_while(|c| !c.is_ascii_hexdigit())
        .take_while(char::is_ascii_hexdigit)
        .collect();
    (sha.len() >= 12).then(|| sha[..12].to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=ZODBFS_COMMIT");
    println!("cargo:rerun-if-env-changed=ZODBFS_COMMIT_DATE");
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let commit = if let Some(c) = std::env::var("ZODBFS_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
    {
        c
    } else if let Some(c) = git(&["rev-parse", "--short=12", "HEAD"]) {
        // Rebuild when HEAD moves: its reflog changes on every commit, checkout and reset.
        for name in ["HEAD", "logs/HEAD"] {
            if let Some(p) = git(&["rev-parse", "--path-format=absolute", "--git-path", name]) {
                if Path::new(&p).exists() {
                    println!("cargo:rerun-if-changed={p}");
                }
            }
        }
        c
    } else if let Some(c) = packaged_commit(manifest_dir) {
        c
    } else {
        "unknown".to_string()
    };
    let date = std::env::var("ZODBFS_COMMIT_DATE")
        .ok()
        .filter(|d| !d.is_empty())
        .or_else(|| git(&["log", "-1", "--format=%cs"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=ZODBFS_COMMIT={commit}");
    println!("cargo:rustc-env=ZODBFS_COMMIT_DATE={date}");
}
