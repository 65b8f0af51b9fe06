//! `repozo`: a drop-in for ZODB's repozo script (not built yet).

fn main() -> std::process::ExitCode {
    eprintln!("repozo: not implemented yet");
    std::process::ExitCode::from(1)
}
