//! Bandwidth-delay product: how many bytes must be in flight to fill a path, and
//! the socket buffer that allows it.

use serde::Serialize;

/// The kernel's tcp_rmem/tcp_wmem maximum defaults (6 MiB / 4 MiB): never recommend less.
pub const KERNEL_TCP_RMEM_MAX: u64 = 6 << 20;
/// Buffers are int-sized in the kernel.
const BUFFER_CAP_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bdp {
    pub speed_bits_per_s: u64,
    pub rtt_us: u64,
    pub bdp_bytes: u64,
    /// The socket buffer that lets one flow fill the path: about twice the BDP,
    /// because the kernel advertises only part of the buffer as window (the rest
    /// covers skb overhead; tcp_adv_win_scale / scaling_ratio), rounded up to a power of two.
    pub buffer_bytes: u64,
}

pub fn bdp(speed_bits_per_s: u64, rtt_us: u64) -> Bdp {
    let bdp_bytes = (u128::from(speed_bits_per_s) * u128::from(rtt_us) / 8 / 1_000_000) as u64;
    let buffer_bytes = bdp_bytes
        .saturating_mul(2)
        .max(1)
        .checked_next_power_of_two()
        .unwrap_or(BUFFER_CAP_BYTES)
        .min(BUFFER_CAP_BYTES);
    Bdp {
        speed_bits_per_s,
        rtt_us,
        bdp_bytes,
        buffer_bytes,
    }
}

/// "2.5Gbit" -> (2.5, "gbit"): the leading decimal number and the lower-case rest.
fn number_and_unit(text: &str, expected: &str) -> Result<(f64, String), String> {
    let lower = text.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let value = number
        .parse()
        .map_err(|_| format!("{text:?}: expected {expected}"))?;
    Ok((value, unit.to_string()))
}

/// "10G", "10Gbit", "2.5gbps", "100M", "100mbit", "1T", "9600bit": bits per second.
pub fn parse_speed(text: &str) -> Result<u64, String> {
    let (value, unit) = number_and_unit(text, "a speed like 10G, 2.5Gbit or 100M")?;
    let scale = match unit.trim_end_matches("ps").trim_end_matches("it/s") {
        "t" | "tbit" | "tb" => 1e12,
        "g" | "gbit" | "gb" => 1e9,
        "m" | "mbit" | "mb" => 1e6,
        "k" | "kbit" | "kb" => 1e3,
        "bit" | "b" => 1.0,
        "" => return Err(format!("{text:?}: add a unit (10G, 100M, 1000Mbit)")),
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use G, M, K, bit)"
            ))
        }
    };
    let bits = value * scale;
    if !(1.0..=1e15).contains(&bits) {
        return Err(format!("{text:?}: speed out of range"));
    }
    Ok(bits as u64)
}

/// "80ms", "0.5ms", "200us", "1s": microseconds.
pub fn parse_duration_us(text: &str) -> Result<u64, String> {
    let (value, unit) = number_and_unit(text, "a duration like 80ms, 200us or 1s")?;
    let scale = match unit.as_str() {
        "s" => 1e6,
        "ms" => 1e3,
        "us" | "µs" => 1.0,
        "" => return Err(format!("{text:?}: add a unit (ms, us, s)")),
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use ms, us, s)")),
    };
    let us = value * scale;
    if !(1.0..=600e6).contains(&us) {
        return Err(format!("{text:?}: duration out of range (1us to 600s)"));
    }
    Ok(us as u64)
}

/// 33554432 -> "32 MiB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// 10000000000 -> "10 Gbit/s", 2500000000 -> "2.5 Gbit/s", 100000000 -> "100 Mbit/s".
pub fn human_speed(bits_per_s: u64) -> String {
    if bits_per_s >= 1_000_000_000 {
        format!("{} Gbit/s", bits_per_s as f64 / 1e9)
    } else if bits_per_s >= 1_000_000 {
        format!("{} Mbit/s", bits_per_s as f64 / 1e6)
    } else {
        format!("{bits_per_s} bit/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_gigabit_at_80ms() {
        let b = bdp(
            parse_speed("10G").unwrap(),
            parse_duration_us("80ms").unwrap(),
        );
        assert_eq!(b.bdp_bytes, 100_000_000);
        assert_eq!(b.buffer_bytes, 256 << 20);
        assert_eq!(bdp(1_000_000_000, 1000).bdp_bytes, 125_000);
        assert_eq!(bdp(1, 1).buffer_bytes, 1);
    }

    #[test]
    fn units() {
        assert_eq!(parse_speed("2.5Gbit").unwrap(), 2_500_000_000);
        assert_eq!(parse_speed("100mbps").unwrap(), 100_000_000);
        assert_eq!(parse_speed("100M").unwrap(), 100_000_000);
        assert!(parse_speed("100").unwrap_err().contains("unit"));
        assert!(parse_speed("fast").is_err());
        assert_eq!(parse_duration_us("0.5ms").unwrap(), 500);
        assert_eq!(parse_duration_us("1s").unwrap(), 1_000_000);
        assert!(parse_duration_us("80").is_err());
        assert!(parse_duration_us("-3ms").is_err());
        assert_eq!(human_bytes(33554432), "32 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_speed(2_500_000_000), "2.5 Gbit/s");
        assert_eq!(human_speed(100_000_000), "100 Mbit/s");
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,20}") {
            let _ = parse_speed(&s);
            let _ = parse_duration_us(&s);
        }

        #[test]
        fn buffer_covers_twice_the_bdp(speed in 1u64..400_000_000_000, rtt in 1u64..2_000_000) {
            let b = bdp(speed, rtt);
            proptest::prop_assert!(b.buffer_bytes >= (b.bdp_bytes * 2).min(1 << 30));
            proptest::prop_assert!(b.buffer_bytes.is_power_of_two());
        }
    }
}
