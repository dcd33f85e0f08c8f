//! Progress bars on stderr, silent when stderr is not a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use chids_detect::train::Step;

pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    pub fn new() -> Bar {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(
            ProgressStyle::with_template("{msg:28} [{bar:30}] {pos}/{len} {elapsed}")
                .expect("static template")
                .progress_chars("=> "),
        );
        Bar { bar }
    }

    /// The callback the library reports through.
    pub fn step(&self, step: Step<'_>) {
        match step {
            Step::Stage { name, total } => {
                self.bar.reset();
                self.bar.set_length(total as u64);
                self.bar.set_message(name.to_string());
            }
            Step::Recording { .. } => self.bar.inc(1),
            Step::Epoch { epoch, total, .. } => {
                if epoch <= 1 {
                    self.bar.reset();
                    self.bar.set_length(total as u64);
                    self.bar.set_message("training autoencoder (epochs)");
                }
                self.bar.set_position(epoch as u64);
            }
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
