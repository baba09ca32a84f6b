//! `xdp suggest`: rules for what was seen. A SYN flood's sources are the ones
//! that send SYNs and never complete a handshake; they are grouped into the
//! widest prefixes (no wider than /16, or /32 for v6) that hold no source that
//! did complete one, so a rule drops the flood and spares the clients seen.
//! What no prefix covers is left to the per-source SYN limit, or to SYN cookies
//! when the flood has no sources worth limiting (spoofed at random). UDP floods
//! are suggested per source and port above a packet rate.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::Serialize;

use crate::rules::{mask, Prefix};

/// Below this many half-open SYNs per second nothing is called a flood.
pub const MIN_SYN_FLOOD_PER_S: f64 = 50.0;
/// A UDP source sending this many packets per second to one port is suggested.
pub const MIN_UDP_FLOOD_PER_S: f64 = 1000.0;
/// At most this many rules are proposed (the rest goes to the SYN limit).
pub const MAX_SUGGESTED_RULES: usize = 16;

#[derive(Debug, Default, Clone)]
struct Seen {
    syns: u64,
    /// TCP segments other than a bare SYN: the source completed a handshake (or tried to).
    other_tcp: u64,
}

/// What was watched.
#[derive(Debug, Default, Clone)]
pub struct Observations {
    sources: HashMap<IpAddr, Seen>,
    syn_dports: HashMap<u16, u64>,
    udp: HashMap<(IpAddr, u16), u64>,
    pub seconds: f64,
}

impl Observations {
    pub fn over(seconds: f64) -> Self {
        Self {
            seconds,
            ..Default::default()
        }
    }

    /// A TCP segment from `src` to `dport`; `bare_syn`: SYN set, ACK clear.
    pub fn tcp(&mut self, src: IpAddr, dport: u16, bare_syn: bool) {
        let s = self.sources.entry(src).or_default();
        if bare_syn {
            s.syns += 1;
            *self.syn_dports.entry(dport).or_default() += 1;
        } else {
            s.other_tcp += 1;
        }
    }

    pub fn udp(&mut self, src: IpAddr, dport: u16) {
        *self.udp.entry((src, dport)).or_default() += 1;
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Suggestion {
    pub rule: String,
    #[serde(skip)]
    pub prefix: Option<Prefix>,
    /// Packets seen that the rule would have matched.
    pub packets: u64,
    pub per_s: f64,
    pub sources: usize,
    pub why: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Suggestions {
    pub rules: Vec<Suggestion>,
    pub syn_limit: Option<String>,
    pub notes: Vec<String>,
    pub seconds: f64,
    pub half_open_syn_per_s: f64,
}

impl Suggestions {
    /// The attach command that applies them.
    pub fn command(&self, interface: &str) -> Option<String> {
        if self.rules.is_empty() && self.syn_limit.is_none() {
            return None;
        }
        let mut cmd = format!("netsight xdp attach {interface}");
        for r in &self.rules {
            cmd.push_str(&format!(" --rule '{}'", r.rule));
        }
        if let Some(l) = &self.syn_limit {
            cmd.push_str(&format!(" --syn-limit '{l}'"));
        }
        Some(cmd)
    }
}

fn bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

/// The widest prefixes holding `bad` addresses and no `good` one, no wider than `min_len`.
fn clusters(bad: &[IpAddr], good: &[IpAddr], v4: bool, min_len: u8) -> Vec<Prefix> {
    fn walk(
        p: Prefix,
        bad: &[IpAddr],
        good: &[IpAddr],
        min_len: u8,
        max: u8,
        out: &mut Vec<Prefix>,
    ) {
        let bad: Vec<IpAddr> = bad.iter().copied().filter(|a| p.contains(*a)).collect();
        if bad.is_empty() {
            return;
        }
        let good: Vec<IpAddr> = good.iter().copied().filter(|a| p.contains(*a)).collect();
        if good.is_empty() && p.len >= min_len {
            out.push(p);
            return;
        }
        if p.len == max {
            return; // a source both completed handshakes and left half-open ones
        }
        let len = p.len + 1;
        let low = Prefix { addr: p.addr, len };
        let high_bits = bits(p.addr) | 1u128 << (max - len);
        let high_addr = if p.is_v4() {
            IpAddr::V4((high_bits as u32).into())
        } else {
            IpAddr::V6(high_bits.into())
        };
        walk(low, &bad, &good, min_len, max, out);
        walk(
            Prefix {
                addr: mask(high_addr, len),
                len,
            },
            &bad,
            &good,
            min_len,
            max,
            out,
        );
    }
    let (zero, max) = if v4 {
        (IpAddr::V4(0.into()), 32)
    } else {
        (IpAddr::V6(0.into()), 128)
    };
    let mut out = Vec::new();
    walk(
        Prefix { addr: zero, len: 0 },
        bad,
        good,
        min_len,
        max,
        &mut out,
    );
    out
}

/// Rules (and a SYN limit) for `obs`.
pub fn suggest(obs: &Observations) -> Suggestions {
    let seconds = obs.seconds.max(0.001);
    let mut out = Suggestions {
        seconds: obs.seconds,
        ..Default::default()
    };
    let half_open: Vec<(IpAddr, u64)> = obs
        .sources
        .iter()
        .filter(|(_, s)| s.syns > 0 && s.other_tcp == 0)
        .map(|(a, s)| (*a, s.syns))
        .collect();
    let good: Vec<IpAddr> = obs
        .sources
        .iter()
        .filter(|(_, s)| s.other_tcp > 0)
        .map(|(a, _)| *a)
        .collect();
    let half_open_syns: u64 = half_open.iter().map(|(_, n)| n).sum();
    out.half_open_syn_per_s = half_open_syns as f64 / seconds;
    if out.half_open_syn_per_s >= MIN_SYN_FLOOD_PER_S {
        let total: u64 = obs.syn_dports.values().sum();
        let (top_port, top_n) = obs
            .syn_dports
            .iter()
            .max_by_key(|(_, n)| **n)
            .map_or((0, 0), |(p, n)| (*p, *n));
        let port = if top_n * 10 >= total * 9 {
            format!(" dport {top_port}")
        } else {
            String::new()
        };
        let syns_of: BTreeMap<IpAddr, u64> = half_open.iter().copied().collect();
        let bad: Vec<IpAddr> = syns_of.keys().copied().collect();
        let (bad4, bad6): (Vec<IpAddr>, Vec<IpAddr>) = bad.iter().partition(|a| a.is_ipv4());
        let (good4, good6): (Vec<IpAddr>, Vec<IpAddr>) = good.iter().partition(|a| a.is_ipv4());
        let mut found: Vec<Suggestion> = clusters(&bad4, &good4, true, 16)
            .into_iter()
            .chain(clusters(&bad6, &good6, false, 32))
            .map(|p| {
                let inside: Vec<u64> = syns_of.iter().filter(|(a, _)| p.contains(**a)).map(|(_, n)| *n).collect();
                let packets: u64 = inside.iter().sum();
                Suggestion {
                    rule: format!("drop src {p} proto tcp{port}"),
                    prefix: Some(p),
                    packets,
                    per_s: packets as f64 / seconds,
                    sources: inside.len(),
                    why: format!(
                        "{} source(s) in {p} sent {packets} SYNs and completed no handshake; no source there that did",
                        inside.len()
                    ),
                }
            })
            .collect();
        found.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.rule.cmp(&b.rule)));
        // A rule must carry its weight: 1 % of the flood at least.
        found.retain(|s| s.packets * 100 >= half_open_syns);
        found.truncate(MAX_SUGGESTED_RULES);
        let covered: u64 = found.iter().map(|s| s.packets).sum();
        let covering: Vec<Prefix> = found.iter().filter_map(|s| s.prefix).collect();
        out.rules.extend(found);
        let rest = half_open_syns - covered;
        if rest * 5 > half_open_syns {
            // What is left: limit per source if some sources send many, else cookies.
            let heavy = half_open
                .iter()
                .filter(|(a, _)| !covering.iter().any(|p| p.contains(*a)))
                .map(|(_, n)| *n as f64 / seconds)
                .fold(0.0, f64::max);
            if heavy >= 10.0 {
                let limit = ((heavy / 4.0).max(10.0) as u64).next_power_of_two();
                out.syn_limit = Some(format!("{limit}/s per /32"));
                out.notes.push(format!(
                    "{rest} SYNs came from sources no prefix rule covers; the busiest sent {heavy:.0}/s: a limit of {limit}/s per source stops it"
                ));
            } else {
                out.notes.push(format!(
                    "{rest} SYNs came from {} sources with no common prefix, each sending few: a filter does not stop a spoofed flood; enable SYN cookies (net.ipv4.tcp_syncookies=1)",
                    half_open.len()
                ));
            }
        }
    }
    let mut udp: Vec<(&(IpAddr, u16), &u64)> = obs
        .udp
        .iter()
        .filter(|(_, n)| **n as f64 / seconds >= MIN_UDP_FLOOD_PER_S)
        .collect();
    udp.sort_by(|a, b| b.1.cmp(a.1));
    for ((src, dport), n) in udp
        .into_iter()
        .take(MAX_SUGGESTED_RULES.saturating_sub(out.rules.len()))
    {
        let p = Prefix::host(*src);
        out.rules.push(Suggestion {
            rule: format!("drop src {p} proto udp dport {dport}"),
            prefix: Some(p),
            packets: *n,
            per_s: *n as f64 / seconds,
            sources: 1,
            why: format!(
                "{src} sent {n} UDP packets to port {dport} ({:.0}/s)",
                *n as f64 / seconds
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_spoofed_block_next_to_a_client_becomes_prefixes_that_spare_it() {
        let mut o = Observations {
            seconds: 1.0,
            ..Default::default()
        };
        for i in 100..=249u8 {
            for _ in 0..20 {
                o.tcp(v4(&format!("10.77.1.{i}")), 8080, true);
            }
        }
        o.tcp(v4("10.77.1.1"), 8080, true);
        o.tcp(v4("10.77.1.1"), 8080, false);
        let s = suggest(&o);
        assert!(!s.rules.is_empty());
        let rules: Vec<crate::rules::Rule> =
            s.rules.iter().map(|r| r.rule.parse().unwrap()).collect();
        for i in 100..=249u8 {
            let a = v4(&format!("10.77.1.{i}"));
            assert!(
                rules.iter().any(|r| r.src.unwrap().contains(a)),
                "{a} not covered: {:?}",
                s.rules
            );
        }
        assert!(rules
            .iter()
            .all(|r| !r.src.unwrap().contains(v4("10.77.1.1"))));
        assert!(s
            .rules
            .iter()
            .all(|r| r.rule.ends_with("proto tcp dport 8080")));
        assert_eq!(s.rules.iter().map(|r| r.packets).sum::<u64>(), 150 * 20);
        assert!(s.syn_limit.is_none() && s.notes.is_empty(), "{s:?}");
    }

    #[test]
    fn a_flood_from_everywhere_gets_cookies_not_rules() {
        let mut o = Observations {
            seconds: 1.0,
            ..Default::default()
        };
        for i in 0..5000u32 {
            o.tcp(IpAddr::V4((i.wrapping_mul(2_654_435_761)).into()), 80, true);
        }
        for i in 0..50u32 {
            // Clients everywhere: no /16 is free of them... mostly.
            let a = IpAddr::V4((i.wrapping_mul(2_654_435_761) ^ 1).into());
            o.tcp(a, 80, false);
        }
        let s = suggest(&o);
        assert!(s.notes.iter().any(|n| n.contains("syncookies")), "{s:?}");
        assert!(s.rules.len() <= MAX_SUGGESTED_RULES);
    }

    #[test]
    fn quiet_traffic_gets_nothing() {
        let mut o = Observations {
            seconds: 5.0,
            ..Default::default()
        };
        for i in 0..100u8 {
            o.tcp(v4(&format!("192.0.2.{i}")), 443, true);
            o.tcp(v4(&format!("192.0.2.{i}")), 443, false);
            o.udp(v4("192.0.2.1"), 53);
        }
        let s = suggest(&o);
        assert!(
            s.rules.is_empty() && s.syn_limit.is_none() && s.notes.is_empty(),
            "{s:?}"
        );
        assert_eq!(s.command("eth0"), None);
    }

    #[test]
    fn a_udp_flood_is_dropped_per_source_and_port() {
        let mut o = Observations {
            seconds: 1.0,
            ..Default::default()
        };
        for _ in 0..5000 {
            o.udp(v4("198.51.100.9"), 53);
        }
        let s = suggest(&o);
        assert_eq!(
            s.rules[0].rule,
            "drop src 198.51.100.9/32 proto udp dport 53"
        );
        assert_eq!(
            s.command("eth0").unwrap(),
            "netsight xdp attach eth0 --rule 'drop src 198.51.100.9/32 proto udp dport 53'"
        );
    }
}
