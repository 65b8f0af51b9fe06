//! `ZFS_MD5` as the binaries see it: `--version` names the MD5 code a run uses, and the
//! variable chooses it.

use assert_cmd::Command;

fn md5_line(var: Option<&str>) -> String {
    let mut c = Command::cargo_bin("zodbfs").expect("built");
    c.arg("--version");
    match var {
        Some(v) => c.env("ZFS_MD5", v),
        None => c.env_remove("ZFS_MD5"),
    };
    let out = c.output().expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    text.lines()
        .find(|l| l.starts_with("MD5: "))
        .unwrap_or_else(|| panic!("no MD5 line: {text}"))
        .to_string()
}

#[test]
fn scalar_forces_the_portable_code() {
    assert_eq!(
        md5_line(Some("scalar")),
        "MD5: scalar (zodbfs, ZFS_MD5=scalar)"
    );
}

#[test]
fn an_unknown_value_is_named_as_ignored() {
    let line = md5_line(Some("turbo"));
    assert!(line.contains("ZFS_MD5=\"turbo\" ignored"), "{line}");
}

#[test]
fn unset_the_code_is_chosen_by_timing() {
    let line = md5_line(None);
    assert!(
        line == "MD5: scalar (zodbfs)" || line == "MD5: AVX-512 (zodbfs)",
        "{line}"
    );
}
