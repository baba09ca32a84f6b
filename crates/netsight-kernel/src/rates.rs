//! Counter deltas. Kernel counters are unsigned and may wrap (32-bit on some
//! drivers and older /proc fields) or reset (an interface re-created, a module reloaded).

/// The increase of a counter between two readings.
/// cur < prev: if prev fits in 32 bits we assume a 32-bit wrap; otherwise a reset,
/// and the best estimate of the increase is `cur` itself.
pub fn counter_delta(prev: u64, cur: u64) -> u64 {
    if cur >= prev {
        cur - prev
    } else if prev <= u64::from(u32::MAX) {
        (u64::from(u32::MAX) - prev) + cur + 1
    } else {
        cur
    }
}

pub fn per_second(prev: u64, cur: u64, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        return 0.0;
    }
    counter_delta(prev, cur) as f64 / seconds
}

/// Defines a struct of u64 counters, its twin of per-second f64 rates, and
/// `rates_since(prev, seconds)` between them, so each counter set is listed once.
macro_rules! counter_set {
    ($(#[$m:meta])* $name:ident => $rates:ident { $($(#[$fm:meta])* $field:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub struct $name { $($(#[$fm])* pub $field: u64,)* }

        #[doc = concat!("Per-second rates of [`", stringify!($name), "`].")]
        #[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct $rates { $(pub $field: f64,)* }

        impl $name {
            pub fn rates_since(&self, prev: &Self, seconds: f64) -> $rates {
                $rates { $($field: $crate::rates::per_second(prev.$field, self.$field, seconds),)* }
            }
        }
    };
}
pub(crate) use counter_set;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_handle_wrap_and_reset() {
        assert_eq!(counter_delta(10, 15), 5);
        assert_eq!(counter_delta(u64::from(u32::MAX) - 1, 3), 5);
        assert_eq!(counter_delta(1 << 40, 7), 7);
        assert_eq!(per_second(0, 10, 2.0), 5.0);
        assert_eq!(per_second(0, 10, 0.0), 0.0);
    }
}
