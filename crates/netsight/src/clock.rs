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

/// `YYYY-MM-DD HH:MM:SS`, for reports spanning days.
pub fn date_seconds(unix_ms: u64) -> String {
    local(unix_ms, "%Y-%m-%d %H:%M:%S")
}

/// A moment as people type it, in ms since the epoch: RFC 3339
/// (`2026-12-02T03:00:00Z`), local `YYYY-MM-DD HH:MM[:SS]` or `HH:MM[:SS]`
/// (today), `-DURATION` before `now_ms` (`-1h`), `now`, or `@UNIX_SECONDS`.
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, String> {
    use chrono::{Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
    let t = text.trim();
    let bad = || {
        format!(
            "{text:?} is not a time: give RFC 3339 (2026-12-02T03:00:00Z), 'YYYY-MM-DD HH:MM', 'HH:MM', -1h or @UNIX_SECONDS"
        )
    };
    if t == "now" {
        return Ok(now_ms);
    }
    if let Some(ago) = t.strip_prefix('-') {
        let d = netsight_kernel::units::parse_duration(ago)?;
        return Ok(now_ms - d.as_millis() as i64);
    }
    if let Some(secs) = t.strip_prefix('@') {
        let s: f64 = secs.parse().map_err(|_| bad())?;
        if !s.is_finite() || !(0.0..=4.0e9).contains(&s) {
            return Err(format!("{text:?}: seconds since 1970 up to year 2096"));
        }
        return Ok((s * 1e3) as i64);
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_millis());
    }
    let local_ms = |naive: NaiveDateTime| -> Result<i64, String> {
        Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|d| d.timestamp_millis())
            .ok_or_else(|| format!("{text:?} does not exist in local time (a DST gap)"))
    };
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
            return local_ms(naive);
        }
    }
    if let Ok(day) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return local_ms(day.and_time(NaiveTime::MIN));
    }
    for format in ["%H:%M:%S", "%H:%M"] {
        if let Ok(time) = NaiveTime::parse_from_str(t, format) {
            let today = chrono::DateTime::from_timestamp_millis(now_ms)
                .map(|d| d.with_timezone(&Local).date_naive())
                .ok_or_else(bad)?;
            return local_ms(today.and_time(time));
        }
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_people_type() {
        let now = 1_764_644_400_000; // 2025-12-02T03:00:00Z
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("-1h", now), Ok(now - 3_600_000));
        assert_eq!(parse_time("@1700000000", now), Ok(1_700_000_000_000));
        assert_eq!(parse_time("2025-12-02T03:00:00Z", now), Ok(now));
        assert!(parse_time("2025-12-02 03:00", now).is_ok());
        assert!(parse_time("03:00", now).is_ok());
        for bad in [
            "",
            "yesterday",
            "-",
            "-0s",
            "@-5",
            "@1e300",
            "25:00",
            "2025-13-01",
            "-99999d",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad:?} accepted");
        }
    }
}
