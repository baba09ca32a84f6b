//! The units of numbers people give netsight: durations and bit rates. One
//! parser for every flag, so `2s`, `500ms` and a bare `2` mean the same
//! everywhere, and NaN, infinities, negatives and absurd sizes are clear errors.

use std::time::Duration;

/// The longest interval, duration or deadline any flag accepts.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);

fn number_and_unit(text: &str) -> Result<(f64, &str), String> {
    let t = text.trim();
    let split = t
        .find(|c: char| {
            !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E')
        })
        .unwrap_or(t.len());
    // An exponent's `e` is part of the number only when digits follow it ("1e3s").
    let (mut number, mut unit) = t.split_at(split);
    if number.ends_with(['e', 'E']) {
        (number, unit) = t.split_at(split - 1);
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a number with an optional unit"))?;
    if !value.is_finite() {
        return Err(format!("{text:?} is not a finite number"));
    }
    Ok((value, unit.trim()))
}

/// A duration: a number with an optional unit (ns, us, µs, ms, s, m, min, h, d);
/// a bare number is seconds. Must be above 0 and at most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    parse_duration_with(text, Some(1.0))
}

/// Like [`parse_duration`], but a unit is required (`--rtt 80` is ambiguous).
pub fn parse_duration_with_unit(text: &str) -> Result<Duration, String> {
    parse_duration_with(text, None)
}

fn parse_duration_with(text: &str, bare_scale: Option<f64>) -> Result<Duration, String> {
    let (value, unit) = number_and_unit(text)?;
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "" => bare_scale.ok_or_else(|| format!("{text:?}: add a unit (us, ms, s)"))?,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use us, ms, s, m, h)"
            ))
        }
    };
    let seconds = value * scale;
    if seconds <= 0.0 {
        return Err(format!("{text:?}: must be above zero"));
    }
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if d <= MAX_DURATION && !d.is_zero() => Ok(d),
        Ok(d) if d.is_zero() => Err(format!("{text:?}: below one nanosecond")),
        _ => Err(format!(
            "{text:?}: longer than {} days",
            MAX_DURATION.as_secs() / 86_400
        )),
    }
}

/// A bit rate in bits per second. Bits: `b`, `bit`, `k`/`kbit`/`Kb`, `M`/`Mbit`/`Mb`,
/// `G`/`Gbit`/`Gb`, `T`; bytes (times 8): `B`, `KB`, `MB`, `GB`, `TB` and `KiB`, `MiB`,
/// `GiB` (a trailing `/s` or `ps` is allowed). A bare number needs a unit.
pub fn parse_bit_rate(text: &str) -> Result<u64, String> {
    let (value, unit) = number_and_unit(text)?;
    let unit = unit.trim_end_matches("/s").trim_end_matches("ps");
    let (prefix, bytes) = if let Some(p) = unit.strip_suffix("iB") {
        (format!("{p}i"), true)
    } else if let Some(p) = unit.strip_suffix('B') {
        (p.to_string(), true)
    } else {
        let p = unit
            .strip_suffix("bit")
            .or_else(|| unit.strip_suffix('b'))
            .unwrap_or(unit);
        (p.to_string(), false)
    };
    if unit.is_empty() {
        return Err(format!("{text:?}: add a unit (10G, 100M, 1000Mbit, 125MB)"));
    }
    let scale = match prefix.as_str() {
        "" => 1.0,
        "k" | "K" => 1e3,
        "M" | "m" => 1e6,
        "G" | "g" => 1e9,
        "T" | "t" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use G, M, K, bit, or GB/MB for bytes)"
            ))
        }
    };
    let bits = value * scale * if bytes { 8.0 } else { 1.0 };
    if !(1.0..=1e15).contains(&bits) {
        return Err(format!("{text:?}: rate out of range (1 bit/s to 1 Pbit/s)"));
    }
    Ok(bits as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1e3ms").unwrap(), Duration::from_secs(1));
        assert_eq!(
            parse_duration(" 200us ").unwrap(),
            Duration::from_micros(200)
        );
        for bad in [
            "",
            "-1",
            "0",
            "0s",
            "nan",
            "inf",
            "-inf",
            "1e300",
            "1e300s",
            "2 parsecs",
            "s",
            "1x",
            "NaNs",
            "0.0000000001ns",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_duration_with_unit("80").is_err());
        assert_eq!(
            parse_duration_with_unit("80ms").unwrap(),
            Duration::from_millis(80)
        );
    }

    #[test]
    fn rates_tell_bits_from_bytes() {
        assert_eq!(parse_bit_rate("10G").unwrap(), 10_000_000_000);
        assert_eq!(parse_bit_rate("10Gbit").unwrap(), 10_000_000_000);
        assert_eq!(parse_bit_rate("10Gb").unwrap(), 10_000_000_000);
        assert_eq!(
            parse_bit_rate("10GB").unwrap(),
            80_000_000_000,
            "GB is bytes"
        );
        assert_eq!(parse_bit_rate("125MB/s").unwrap(), 1_000_000_000);
        assert_eq!(parse_bit_rate("100Mbps").unwrap(), 100_000_000);
        assert_eq!(parse_bit_rate("1KiB").unwrap(), 8192);
        assert_eq!(parse_bit_rate("2.5G").unwrap(), 2_500_000_000);
        for bad in ["10", "-1G", "nanG", "infG", "1e30G", "10Q", ""] {
            assert!(parse_bit_rate(bad).is_err(), "{bad:?} accepted");
        }
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in ".{0,24}") {
            let _ = parse_duration(&text);
            let _ = parse_duration_with_unit(&text);
            let _ = parse_bit_rate(&text);
        }

        #[test]
        fn numbers_with_units_never_panic(v in proptest::num::f64::ANY, unit in "(ns|us|ms|s|m|h|d|G|GB|Mbit|KiB|)") {
            let text = format!("{v}{unit}");
            let _ = parse_duration(&text);
            let _ = parse_bit_rate(&text);
        }
    }
}
