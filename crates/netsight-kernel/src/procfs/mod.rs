//! Parsers for /proc/net files. They take bytes, never paths: the I/O lives in `collect`.

pub mod conntrack;
pub mod netdev;
pub mod snmp;
pub mod sockstat;
pub mod softnet;

/// Parses a decimal counter as the kernel prints it; signed because a few MIB
/// entries are gauges that use -1 (Tcp MaxConn).
fn parse_i64(token: &str) -> Option<i64> {
    token
        .parse::<i64>()
        .ok()
        .or_else(|| token.parse::<u64>().ok().map(|v| v as i64))
}
