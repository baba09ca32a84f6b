//! Ctrl-C, SIGTERM and SIGHUP as a request to stop: long-running verbs finish
//! what they hold (a capture file, a bundle, a summary) instead of dying mid-write.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

static STOP: Mutex<bool> = Mutex::new(false);
static WAKE: Condvar = Condvar::new();
/// Sockets a byte is written to on a stop: loops that sleep in poll(2).
static ALSO_WAKE: Mutex<Vec<Arc<UnixStream>>> = Mutex::new(Vec::new());

/// Routes SIGINT, SIGTERM and SIGHUP to the stop flag (once per process).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if let Ok(mut stop) = STOP.lock() {
            *stop = true;
        }
        WAKE.notify_all();
        if let Ok(streams) = ALSO_WAKE.lock() {
            streams.iter().for_each(|s| wake(s));
        }
    });
}

/// Also writes a byte to `stream` when a stop is requested (for a loop that
/// waits on the other end with poll(2) rather than in `sleep`).
pub fn wake_on_stop(stream: Arc<UnixStream>) {
    if let Ok(mut streams) = ALSO_WAKE.lock() {
        streams.push(stream);
    }
}

/// Writes the byte that wakes a loop polling the other end of `stream`.
pub fn wake(stream: &UnixStream) {
    // Full or closed: the loop has a byte to read already, or is gone.
    let _ = (&*stream).write(&[0]);
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
