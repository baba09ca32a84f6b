//! Ctrl-C, SIGTERM and SIGHUP as a request to stop: long-running verbs finish
//! what they hold (a capture file, a bundle, a summary) instead of dying mid-write.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

static STOP: Mutex<bool> = Mutex::new(false);
static WAKE: Condvar = Condvar::new();

/// Routes SIGINT, SIGTERM and SIGHUP to the stop flag (once per process).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if let Ok(mut stop) = STOP.lock() {
            *stop = true;
        }
        WAKE.notify_all();
    });
}

pub fn requested() -> bool {
    STOP.lock().map(|s| *s).unwrap_or(true)
}

/// Sleeps for `duration` unless a stop is requested first; false if it was.
pub fn sleep(duration: Duration) -> bool {
    let deadline = Instant::now() + duration;
    let Ok(mut stop) = STOP.lock() else {
        return false;
    };
    while !*stop {
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        match WAKE.wait_timeout(stop, deadline - now) {
            Ok((guard, _)) => stop = guard,
            Err(_) => return false,
        }
    }
    false
}
