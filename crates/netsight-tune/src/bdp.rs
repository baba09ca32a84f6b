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
        let b = bdp(10_000_000_000, 80_000);
        assert_eq!(b.bdp_bytes, 100_000_000);
        assert_eq!(b.buffer_bytes, 256 << 20);
        assert_eq!(bdp(1_000_000_000, 1000).bdp_bytes, 125_000);
        assert_eq!(bdp(1, 1).buffer_bytes, 1);
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(33554432), "32 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_speed(2_500_000_000), "2.5 Gbit/s");
        assert_eq!(human_speed(100_000_000), "100 Mbit/s");
    }

    proptest::proptest! {
        #[test]
        fn buffer_covers_twice_the_bdp(speed in 1u64..400_000_000_000, rtt in 1u64..2_000_000) {
            let b = bdp(speed, rtt);
            proptest::prop_assert!(b.buffer_bytes >= (b.bdp_bytes * 2).min(1 << 30));
            proptest::prop_assert!(b.buffer_bytes.is_power_of_two());
        }
    }
}
