//! Progress bars for reading, scoring and writing; silent when stderr is not a terminal or with `--no-progress`.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// The three bars of a run. All methods are no-ops when disabled.
#[derive(Clone)]
pub struct Progress {
    pub read: ProgressBar,
    pub score: ProgressBar,
    pub write: ProgressBar,
    _multi: Option<MultiProgress>,
}

impl Progress {
    /// Bars if `wanted` and stderr is a terminal; hidden bars otherwise.
    pub fn new(wanted: bool, total_estimate: u64) -> Progress {
        if !(wanted && std::io::stderr().is_terminal()) {
            return Progress {
                read: ProgressBar::hidden(),
                score: ProgressBar::hidden(),
                write: ProgressBar::hidden(),
                _multi: None,
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = |verb: &str| {
            ProgressStyle::with_template(&format!(
                "{verb:>8} [{{bar:30}}] {{pos:>9}}/{{len:9}} {{per_sec:>12}} ETA {{eta}} {{msg}}"
            ))
            .expect("valid template")
            .progress_chars("=> ")
        };
        let bar = |verb: &str| {
            let b = multi.add(ProgressBar::new(total_estimate));
            b.set_style(style(verb));
            b
        };
        Progress {
            read: bar("reading"),
            score: bar("scoring"),
            write: bar("writing"),
            _multi: Some(multi),
        }
    }

    pub fn finish(&self) {
        for b in [&self.read, &self.score, &self.write] {
            b.finish();
        }
    }
}
