//! `zodbfs completions` and the hidden `zodbfs generate-docs`: shell completions and man
//! pages made from the same clap definitions that parse the command line, plus the
//! hand-written page of `zodbfs-repozo` (its command line is Python repozo's, not clap's).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap_complete::Shell;
use zfs_cli::exit;

/// The man page of `zodbfs-repozo`, written by hand.
const REPOZO_MAN: &str = include_str!("../../man/zodbfs-repozo.1");

/// Arguments of `zodbfs completions`.
///
/// Prints the completion script for SHELL on stdout. For example, bash:
/// `zodbfs completions bash > ~/.local/share/bash-completion/completions/zodbfs`;
/// zsh: `zodbfs completions zsh > ~/.zfunc/_zodbfs` with `~/.zfunc` in `fpath`;
/// fish: `zodbfs completions fish > ~/.config/fish/completions/zodbfs.fish`.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: Shell,
}

/// Arguments of `zodbfs generate-docs` (hidden; used by `scripts/dist.sh`).
///
/// Writes man pages and completion scripts under PREFIX, where a package manager puts them:
/// `share/man/man1/`, `share/bash-completion/completions/`, `share/zsh/site-functions/`,
/// `share/fish/vendor_completions.d/`.
#[derive(clap::Args, Debug)]
pub struct GenerateDocsArgs {
    /// The installation prefix (for example `~/.local` or a packaging tree).
    pub prefix: PathBuf,
}

/// Runs `completions`.
pub fn run_completions(a: CompletionsArgs) -> anyhow::Result<u8> {
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut crate::command(), "zodbfs", &mut out);
    use std::io::Write as _;
    std::io::stdout().lock().write_all(&out)?;
    Ok(exit::OK)
}

/// Runs `generate-docs`.
pub fn run_generate_docs(a: GenerateDocsArgs) -> anyhow::Result<u8> {
    let files = documents()?;
    for (rel, bytes) in &files {
        let path = a.prefix.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("'{}'", dir.display()))?;
        }
        zfs_files::write_file(zfs_files::OutputSpec::new(&path), |w| w.write_all(bytes))?;
    }
    eprintln!("wrote {} files under '{}'", files.len(), a.prefix.display());
    Ok(exit::OK)
}

/// Every file `generate-docs` writes, as (path under the prefix, contents).
fn documents() -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let man1 = Path::new("share/man/man1");
    let mut files = Vec::new();
    let mut root = crate::command().disable_help_subcommand(true);
    root.build();
    man_pages(&root, man1, &mut files)?;
    files.push((man1.join("zodbfs-repozo.1"), REPOZO_MAN.as_bytes().to_vec()));
    for (shell, rel) in [
        (Shell::Bash, "share/bash-completion/completions/zodbfs"),
        (Shell::Zsh, "share/zsh/site-functions/_zodbfs"),
        (Shell::Fish, "share/fish/vendor_completions.d/zodbfs.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut crate::command(), "zodbfs", &mut out);
        files.push((PathBuf::from(rel), out));
    }
    Ok(files)
}

/// The page of `cmd` and of each visible subcommand (`zodbfs-pack.1`, ...).
fn man_pages(
    cmd: &clap::Command,
    dir: &Path,
    files: &mut Vec<(PathBuf, Vec<u8>)>,
) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, dir, files)?;
    }
    let man = clap_mangen::Man::new(cmd.clone())
        .date(zfs_cli::version::COMMIT_DATE)
        .source(concat!("zodbfs ", env!("CARGO_PKG_VERSION")))
        .manual("zodbfs manual");
    let mut out = Vec::new();
    man.render(&mut out)?;
    files.push((dir.join(man.get_filename()), out));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_visible_subcommand_has_a_page_and_hidden_ones_none() {
        let files = documents().expect("documents");
        let names: Vec<String> = files
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for sub in crate::command().get_subcommands() {
            let page = format!("zodbfs-{}.1", sub.get_name());
            assert_eq!(
                names.contains(&page),
                !sub.is_hide_set(),
                "{page} in {names:?}"
            );
        }
        for expected in [
            "zodbfs.1",
            "zodbfs-repozo.1",
            "zodbfs",
            "_zodbfs",
            "zodbfs.fish",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing");
        }
    }

    #[test]
    fn pages_are_roff_naming_their_command() {
        for (path, bytes) in documents().expect("documents") {
            let text = String::from_utf8(bytes).expect("utf-8");
            if path.extension().is_some_and(|e| e == "1") {
                assert!(
                    text.starts_with(".ie") || text.starts_with(".TH") || text.starts_with(".\\\""),
                    "{path:?}"
                );
                assert!(text.contains(".TH"), "{path:?} has no title");
            }
        }
        let bash = documents()
            .expect("documents")
            .into_iter()
            .find(|(p, _)| p.ends_with("completions/zodbfs"))
            .expect("bash completion");
        let bash = String::from_utf8(bash.1).expect("utf-8");
        assert!(
            bash.contains("pack") && bash.contains("--days"),
            "bash completion lacks pack --days"
        );
    }
}
