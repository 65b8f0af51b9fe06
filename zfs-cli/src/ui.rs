//! Progress bars on stderr, shown only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const BYTES: &str = "{msg:28} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}{later_eta}";

/// The bar with an ETA shown only once it means something: after two seconds and 5% of
/// the work (early estimates of a fast run are minutes off).
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "later_eta",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                if state.elapsed().as_secs_f64() >= 2.0 && state.fraction() >= 0.05 {
                    let _ = write!(w, " eta {}", indicatif::HumanDuration(state.eta()));
                }
            },
        )
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
            // No length until a phase starts: nothing is drawn before (a bar of 0 of 0
            // bytes would show as full).
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(style(BYTES));
        Bar { bar }
    }

    /// Whether the bar is drawn (stderr is a terminal and not quiet).
    pub fn visible(&self) -> bool {
        !self.bar.is_hidden()
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
            format!("{{msg:28}} [{{bar:40}}] {{human_pos}}/{{human_len}} {unit}{{later_eta}}");
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
