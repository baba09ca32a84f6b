//! The terminal: whether text reports are coloured, and a progress line on
//! stderr during long waits (only when stderr is a terminal).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::cli::ColorWhen;

static COLOR: AtomicU8 = AtomicU8::new(0);

pub fn set_color(when: ColorWhen) {
    let v = match when {
        ColorWhen::Auto => 0,
        ColorWhen::Always => 1,
        ColorWhen::Never => 2,
    };
    COLOR.store(v, Ordering::Relaxed);
}

/// Colour on stdout: `--color always`, or auto with a terminal and NO_COLOR unset.
pub fn color_stdout() -> bool {
    match COLOR.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// Waits `duration`; on a terminal, counts down on stderr ("what: 3.2 s left"),
/// then clears the line so the report starts clean.
pub fn wait(duration: Duration, what: &str) {
    let stderr = std::io::stderr();
    if !stderr.is_terminal() {
        std::thread::sleep(duration);
        return;
    }
    let end = Instant::now() + duration;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = write!(
            stderr.lock(),
            "\r\x1b[K{what}: {:.1} s left",
            left.as_secs_f64()
        );
        std::thread::sleep(left.min(Duration::from_millis(200)));
    }
    let _ = write!(stderr.lock(), "\r\x1b[K");
}
