//! Wall-clock labels for lines of output, in local time.

fn local(unix_ms: u64, format: &str) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms as i64)
        .map(|t| t.with_timezone(&chrono::Local).format(format).to_string())
        .unwrap_or_else(|| "?".into())
}

/// `HH:MM:SS`, as sar labels its intervals.
pub fn seconds(unix_ms: u64) -> String {
    local(unix_ms, "%H:%M:%S")
}

/// `HH:MM:SS.mmm`, for events.
pub fn millis(unix_ms: u64) -> String {
    local(unix_ms, "%H:%M:%S%.3f")
}
