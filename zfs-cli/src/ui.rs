//! Progress bars on stderr, shown only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const BYTES: &str = "{msg:28} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}";

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A [`zfs_format::Progress`] drawn with indicatif, hidden when stderr is not a terminal or
/// when asked to be quiet.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A bar on stderr when it is a terminal and `quiet` is false; a hidden one otherwise.
    pub fn new(quiet: bool) -> Self {
        let visible = !quiet && std::io::stderr().is_terminal();
        let bar = if visible {
            ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(style(BYTES));
        Bar { bar }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl zfs_format::Progress for Bar {
    fn start(&self, phase: &str, total: u64) {
        self.bar.set_style(style(BYTES));
        self.bar.set_message(phase.to_string());
        self.bar.set_length(total);
        self.bar.set_position(0);
    }
    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }
    fn start_counting(&self, phase: &str, total: u64, unit: &'static str) {
        let template =
            format!("{{msg:28}} [{{bar:40}}] {{human_pos}}/{{human_len}} {unit} eta {{eta}}");
        self.bar.set_style(style(&template));
        self.bar.set_message(phase.to_string());
        self.bar.set_length(total);
        self.bar.set_position(0);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
