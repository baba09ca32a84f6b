//! Counter deltas. Kernel counters are unsigned and may wrap (32-bit on some
//! drivers and older /proc fields) or reset (an interface re-created, a module reloaded).

/// How a counter behaves, which decides what a decrease between two readings means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterKind {
    /// A 32-bit counter (softnet_stat columns, qdisc packet/drop counts): it wraps at 2^32.
    Wrapping32,
    /// A 64-bit counter (MIBs on 64-bit kernels, rtnl_link_stats64, ethtool -S):
    /// it never wraps in practice, so a decrease is a reset.
    Monotonic64,
}

/// The increase of a counter between two readings, None when it was reset
/// (module reloaded, interface or qdisc re-created, a bundle from another boot):
/// a reset is reported and not rated, never guessed into a huge rate.
/// A 32-bit counter wrapped only if its first reading was in the upper half of
/// its range: a counter that advances by 2^31 within one interval is not one we
/// could have rated anyway, while a reset lands anywhere.
pub fn increase(kind: CounterKind, prev: u64, cur: u64) -> Option<u64> {
    if cur >= prev {
        return Some(cur - prev);
    }
    match kind {
        CounterKind::Wrapping32 if prev <= u64::from(u32::MAX) && prev >= 1 << 31 => {
            Some((u64::from(u32::MAX) - prev) + cur + 1)
        }
        _ => None,
    }
}

/// Per-second rate of a counter; 0 when it was reset (the reset is reported apart).
pub fn per_second(kind: CounterKind, prev: u64, cur: u64, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        return 0.0;
    }
    increase(kind, prev, cur).map_or(0.0, |d| d as f64 / seconds)
}

/// Defines a struct of u64 counters, its twin of per-second f64 rates, and
/// `rates_since(prev, seconds)` between them, so each counter set is listed once.
macro_rules! counter_set {
    ($(#[$m:meta])* $name:ident => $rates:ident, kind $kind:expr, { $($(#[$fm:meta])* $field:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub struct $name { $($(#[$fm])* pub $field: u64,)* }

        #[doc = concat!("Per-second rates of [`", stringify!($name), "`].")]
        #[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct $rates { $(pub $field: f64,)* }

        impl $name {
            /// The kind of each counter, by field name.
            pub const KIND: fn(&str) -> $crate::rates::CounterKind = $kind;
            /// Every counter's name, in declaration order.
            pub const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Every counter with its name, in declaration order.
            pub fn named(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($field), self.$field)),*]
            }

            pub fn rates_since(&self, prev: &Self, seconds: f64) -> $rates {
                $rates { $($field: $crate::rates::per_second(Self::KIND(stringify!($field)), prev.$field, self.$field, seconds),)* }
            }

            /// The counters that went down since `prev` and were not wraps: (name, before, after).
            pub fn resets_since(&self, prev: &Self) -> Vec<(&'static str, u64, u64)> {
                let mut out = Vec::new();
                $(if $crate::rates::increase(Self::KIND(stringify!($field)), prev.$field, self.$field).is_none() {
                    out.push((stringify!($field), prev.$field, self.$field));
                })*
                out
            }
        }
    };
}
pub(crate) use counter_set;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_follow_the_counter_kind() {
        use CounterKind::*;
        assert_eq!(increase(Monotonic64, 10, 15), Some(5));
        assert_eq!(increase(Wrapping32, u64::from(u32::MAX) - 1, 3), Some(5));
        // A 64-bit counter that goes down was reset, whatever its size.
        assert_eq!(increase(Monotonic64, u64::from(u32::MAX) - 1, 3), None);
        assert_eq!(increase(Monotonic64, 2078619561, 7), None);
        // A 32-bit counter low in its range that goes down was reset, not wrapped.
        assert_eq!(increase(Wrapping32, 1000, 10), None);
        assert_eq!(increase(Wrapping32, 1 << 40, 7), None);
        assert_eq!(per_second(Monotonic64, 0, 10, 2.0), 5.0);
        assert_eq!(per_second(Monotonic64, 0, 10, 0.0), 0.0);
        assert_eq!(per_second(Monotonic64, 10, 0, 1.0), 0.0);
    }
}
