//! The rule language of `netsight xdp`: `drop|pass [src PREFIX] [dst PREFIX]
//! [proto NAME|N] [sport N[-M]] [dport N[-M]]`, and the SYN limit
//! `RATE/s [per /N[,/M]]`. Parsing normalises (host bits cleared); `Display`
//! prints the canonical form, which parses back to the same rule.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An address prefix with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, String> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(format!("/{len} is longer than an {}-bit address", max));
        }
        Ok(Self {
            addr: mask(addr, len),
            len,
        })
    }

    /// One address: a /32 or a /128.
    pub fn host(addr: IpAddr) -> Self {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, len }
    }

    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        addr.is_ipv4() == self.is_v4() && mask(addr, self.len) == self.addr
    }

    /// Whether every address of `other` is in this prefix.
    pub fn covers(&self, other: &Prefix) -> bool {
        other.is_v4() == self.is_v4() && other.len >= self.len && self.contains(other.addr)
    }

    /// The address bytes, network order (4 or 16).
    pub fn octets(&self) -> Vec<u8> {
        octets(self.addr)
    }
}

pub fn octets(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// `addr` with all but its first `len` bits cleared.
pub fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

impl FromStr for Prefix {
    type Err = String;
    /// `203.0.113.0/24`, `2001:db8::/32`, or one address; host bits are cleared.
    fn from_str(s: &str) -> Result<Self, String> {
        let c = netsight_kernel::endpoint::Cidr::parse(s)?;
        Prefix::new(c.addr(), c.prefix_len())
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let port = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| format!("{s:?}: a port is 0 to 65535, a range N-M"))
        };
        let (lo, hi) = match s.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(s)?, port(s)?),
        };
        if lo > hi {
            return Err(format!("{s:?}: the range is empty ({lo} > {hi})"));
        }
        Ok(Self { lo, hi })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

const PROTOCOLS: &[(&str, u8)] = &[
    ("icmp", 1),
    ("tcp", 6),
    ("udp", 17),
    ("gre", 47),
    ("esp", 50),
    ("icmpv6", 58),
    ("sctp", 132),
];

fn proto_name(n: u8) -> String {
    PROTOCOLS
        .iter()
        .find(|(_, p)| *p == n)
        .map_or_else(|| n.to_string(), |(name, _)| name.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Drop,
    Pass,
}

/// One filter rule; every part left out matches anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub action: Action,
    pub src: Option<Prefix>,
    pub dst: Option<Prefix>,
    pub proto: Option<u8>,
    pub sport: Option<PortRange>,
    pub dport: Option<PortRange>,
}

impl Rule {
    /// The address family the rule is limited to by its prefixes (None: both).
    pub fn v4_only(&self) -> Option<bool> {
        self.src.or(self.dst).map(|p| p.is_v4())
    }
}

/// The packet fields a rule looks at (what the XDP program parses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketHeader {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    /// Ports, for TCP, UDP and SCTP first fragments.
    pub ports: Option<(u16, u16)>,
}

impl Rule {
    /// The reference semantics the compiled maps must agree with.
    pub fn matches(&self, p: &PacketHeader) -> bool {
        let prefix_ok = |pre: Option<Prefix>, a: IpAddr| pre.is_none_or(|pre| pre.contains(a));
        let port_ok = |range: Option<PortRange>, port: Option<u16>| match range {
            None => true,
            Some(r) if r.lo == 0 && r.hi == u16::MAX => true,
            Some(r) => port.is_some_and(|v| r.lo <= v && v <= r.hi),
        };
        self.v4_only().is_none_or(|v4| v4 == p.src.is_ipv4())
            && prefix_ok(self.src, p.src)
            && prefix_ok(self.dst, p.dst)
            && self.proto.is_none_or(|n| n == p.proto)
            && port_ok(self.sport, p.ports.map(|x| x.0))
            && port_ok(self.dport, p.ports.map(|x| x.1))
    }
}

impl FromStr for Rule {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let mut words = text.split_whitespace();
        let action = match words.next() {
            Some("drop") => Action::Drop,
            Some("pass") => Action::Pass,
            Some(w) => {
                return Err(format!(
                    "rule {text:?}: starts with drop or pass, not {w:?}"
                ))
            }
            None => {
                return Err(
                    "an empty rule (example: 'drop src 203.0.113.0/24 proto udp dport 53')".into(),
                )
            }
        };
        let mut rule = Rule {
            action,
            src: None,
            dst: None,
            proto: None,
            sport: None,
            dport: None,
        };
        const KEYS: &[&str] = &[
            "src", "from", "dst", "to", "proto", "sport", "dport", "port",
        ];
        while let Some(key) = words.next() {
            if !KEYS.contains(&key) {
                return Err(format!(
                    "rule {text:?}: unknown word {key:?} (src, dst, proto, sport, dport)"
                ));
            }
            let value = words
                .next()
                .ok_or_else(|| format!("rule {text:?}: {key:?} needs a value"))?;
            let dup = |set: bool| {
                if set {
                    Err(format!("rule {text:?}: {key:?} given twice"))
                } else {
                    Ok(())
                }
            };
            let ctx = |e: String| format!("rule {text:?}: {e}");
            match key {
                "src" | "from" => {
                    dup(rule.src.is_some())?;
                    rule.src = Some(value.parse().map_err(ctx)?);
                }
                "dst" | "to" => {
                    dup(rule.dst.is_some())?;
                    rule.dst = Some(value.parse().map_err(ctx)?);
                }
                "proto" => {
                    dup(rule.proto.is_some())?;
                    let n = PROTOCOLS
                        .iter()
                        .find(|(name, _)| *name == value)
                        .map(|(_, n)| *n)
                        .or_else(|| value.parse::<u8>().ok())
                        .ok_or_else(|| {
                            ctx(format!("proto {value:?}: tcp, udp, icmp, icmpv6, sctp, gre, esp or a number 0-255"))
                        })?;
                    rule.proto = Some(n);
                }
                "sport" => {
                    dup(rule.sport.is_some())?;
                    rule.sport = Some(value.parse().map_err(ctx)?);
                }
                "dport" | "port" => {
                    dup(rule.dport.is_some())?;
                    rule.dport = Some(value.parse().map_err(ctx)?);
                }
                other => {
                    return Err(format!(
                        "rule {text:?}: unknown word {other:?} (src, dst, proto, sport, dport)"
                    ))
                }
            }
        }
        if let (Some(s), Some(d)) = (rule.src, rule.dst) {
            if s.is_v4() != d.is_v4() {
                return Err(format!(
                    "rule {text:?}: src and dst are of different address families"
                ));
            }
        }
        if (rule.sport.is_some() || rule.dport.is_some())
            && rule.proto.is_some_and(|p| ![6, 17, 132].contains(&p))
        {
            return Err(format!("rule {text:?}: ports need proto tcp, udp or sctp"));
        }
        Ok(rule)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.action {
            Action::Drop => "drop",
            Action::Pass => "pass",
        })?;
        if let Some(p) = self.src {
            write!(f, " src {p}")?;
        }
        if let Some(p) = self.dst {
            write!(f, " dst {p}")?;
        }
        if let Some(p) = self.proto {
            write!(f, " proto {}", proto_name(p))?;
        }
        if let Some(p) = self.sport {
            write!(f, " sport {p}")?;
        }
        if let Some(p) = self.dport {
            write!(f, " dport {p}")?;
        }
        Ok(())
    }
}

/// At most this many SYNs per second may be asked for.
pub const MAX_SYN_RATE: u64 = 100_000_000;

/// A token bucket per source prefix for TCP SYNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SynLimit {
    pub per_second: u64,
    /// Bucket depth in SYNs (default: a tenth of a second's worth, at least 1).
    pub burst: u64,
    pub prefix_v4: u8,
    pub prefix_v6: u8,
}

impl FromStr for SynLimit {
    type Err = String;
    /// `2000/s`, `2000/s per /24`, `2000/s per /24,/48`.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!("--syn-limit {text:?}: expected RATE/s [per /N] (e.g. '2000/s per /32'; v6 sources per /64 unless '/N,/M')")
        };
        let mut words = text.split_whitespace();
        let rate = words.next().ok_or_else(bad)?;
        let rate = rate.strip_suffix("/s").unwrap_or(rate);
        let per_second: u64 = rate.parse().map_err(|_| bad())?;
        if per_second == 0 || per_second > MAX_SYN_RATE {
            return Err(format!(
                "--syn-limit {text:?}: the rate must be 1 to {MAX_SYN_RATE} per second"
            ));
        }
        let (mut prefix_v4, mut prefix_v6) = (32u8, 64u8);
        match (words.next(), words.next(), words.next()) {
            (None, _, _) => {}
            (Some("per"), Some(lens), None) => {
                let mut parts = lens.split(',');
                let len = |p: Option<&str>, max: u8| -> Result<Option<u8>, String> {
                    match p {
                        None => Ok(None),
                        Some(p) => p
                            .strip_prefix('/')
                            .and_then(|n| n.parse::<u8>().ok())
                            .filter(|n| (1..=max).contains(n))
                            .map(Some)
                            .ok_or_else(bad),
                    }
                };
                if let Some(n) = len(parts.next(), 32)? {
                    prefix_v4 = n;
                }
                if let Some(n) = len(parts.next(), 128)? {
                    prefix_v6 = n;
                }
                if parts.next().is_some() {
                    return Err(bad());
                }
            }
            _ => return Err(bad()),
        }
        Ok(Self {
            per_second,
            burst: (per_second / 10).max(1),
            prefix_v4,
            prefix_v6,
        })
    }
}

impl fmt::Display for SynLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/s per /{},/{}",
            self.per_second, self.prefix_v4, self.prefix_v6
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rules_parse_and_print_canonically() {
        let r: Rule = "drop src 203.0.113.7/24 proto udp dport 53"
            .parse()
            .unwrap();
        assert_eq!(r.to_string(), "drop src 203.0.113.0/24 proto udp dport 53");
        let r: Rule = "pass dst 2001:db8::1 proto tcp sport 1000-2000"
            .parse()
            .unwrap();
        assert_eq!(
            r.to_string(),
            "pass dst 2001:db8::1/128 proto tcp sport 1000-2000"
        );
        assert_eq!("drop".parse::<Rule>().unwrap().to_string(), "drop");
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        for (text, says) in [
            ("", "empty"),
            ("block src 1.2.3.4", "drop or pass"),
            ("drop src", "needs a value"),
            ("drop src 1.2.3.4/33", "0..=32"),
            ("drop src nonsense", "not an IP address"),
            ("drop src 1.2.3.4 src 1.2.3.5", "twice"),
            ("drop src 1.2.3.4 dst ::1", "families"),
            ("drop proto icmp dport 5", "ports need"),
            ("drop dport 9-3", "empty"),
            ("drop dport 70000", "0 to 65535"),
            ("drop proto bogus", "proto"),
            ("drop colour red", "unknown word"),
        ] {
            let e = text.parse::<Rule>().unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn syn_limits_parse() {
        let l: SynLimit = "2000/s per /32".parse().unwrap();
        assert_eq!(
            (l.per_second, l.burst, l.prefix_v4, l.prefix_v6),
            (2000, 200, 32, 64)
        );
        let l: SynLimit = "5/s per /24,/48".parse().unwrap();
        assert_eq!((l.burst, l.prefix_v4, l.prefix_v6), (1, 24, 48));
        for bad in [
            "",
            "0/s",
            "fast",
            "10/s per",
            "10/s per /33",
            "10/s by /24",
            "999999999999/s",
        ] {
            assert!(bad.parse::<SynLimit>().is_err(), "{bad:?}");
        }
    }

    fn any_prefix() -> impl Strategy<Value = Prefix> {
        prop_oneof![
            (any::<u32>(), 0u8..=32)
                .prop_map(|(a, l)| Prefix::new(IpAddr::V4(a.into()), l).unwrap()),
            (any::<u128>(), 0u8..=128)
                .prop_map(|(a, l)| Prefix::new(IpAddr::V6(a.into()), l).unwrap()),
        ]
    }

    proptest! {
        #[test]
        fn any_text_parses_or_errs_without_panicking(s in "\\PC{0,80}") {
            let _ = s.parse::<Rule>();
            let _ = s.parse::<SynLimit>();
        }

        #[test]
        fn printed_rules_parse_back(src in proptest::option::of(any_prefix()), proto in proptest::option::of(prop_oneof![Just(6u8), Just(17), Just(1), any::<u8>()]),
                                    lo in any::<u16>(), span in 0u16..100, drop in any::<bool>()) {
            let ports = proto.is_none_or(|p| [6, 17, 132].contains(&p));
            let rule = Rule {
                action: if drop { Action::Drop } else { Action::Pass },
                src,
                dst: None,
                proto,
                sport: None,
                dport: ports.then(|| PortRange { lo, hi: lo.saturating_add(span) }),
            };
            prop_assert_eq!(rule.to_string().parse::<Rule>().unwrap(), rule);
        }
    }
}
