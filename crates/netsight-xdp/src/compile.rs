//! Rules → the contents of the XDP program's maps (bpf/xdp_filter.bpf.c).
//!
//! First match wins, but an LPM trie answers only the longest prefix. So each
//! trie (source/destination × v4/v6) holds, at every prefix a rule names (and
//! at /0), the bitmask of the rule slots whose prefix contains that prefix: the
//! longest match for an address is then exactly the set of rules whose prefix
//! contains the address. The program ANDs the source and destination masks and
//! checks protocol and ports of the slots left, taking the lowest priority.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::rules::{Action, PacketHeader, Prefix, Rule};

/// Rule slots in the program (one bit of a u64 mask each).
pub const MAX_RULES: usize = 64;

/// A rule in its slot; the slot keeps its counters while other rules come and go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlottedRule {
    pub slot: u8,
    /// As text (the canonical form), in the journal and in JSON output.
    #[serde(with = "rule_text")]
    pub rule: Rule,
}

mod rule_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::rules::Rule;

    pub fn serialize<S: Serializer>(rule: &Rule, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(rule)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Rule, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// struct xf_rule.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RuleEntry {
    pub enabled: u8,
    pub drop: u8,
    pub proto: u8,
    pub pad: u8,
    pub sport_lo: u16,
    pub sport_hi: u16,
    pub dport_lo: u16,
    pub dport_hi: u16,
    pub priority: u32,
}

/// The four tries: prefix → slot mask.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tries {
    pub src_v4: BTreeMap<Prefix, u64>,
    pub dst_v4: BTreeMap<Prefix, u64>,
    pub src_v6: BTreeMap<Prefix, u64>,
    pub dst_v6: BTreeMap<Prefix, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub tries: Tries,
    pub entries: [RuleEntry; MAX_RULES],
}

fn zero(v4: bool) -> Prefix {
    let addr = if v4 {
        IpAddr::V4(0.into())
    } else {
        IpAddr::V6(0.into())
    };
    Prefix { addr, len: 0 }
}

fn trie(
    rules: &[&SlottedRule],
    v4: bool,
    side: impl Fn(&Rule) -> Option<Prefix>,
) -> BTreeMap<Prefix, u64> {
    let mut prefixes: Vec<Prefix> = rules.iter().filter_map(|r| side(&r.rule)).collect();
    prefixes.push(zero(v4));
    prefixes.sort();
    prefixes.dedup();
    prefixes
        .into_iter()
        .map(|p| {
            let mask = rules
                .iter()
                .filter(|r| side(&r.rule).is_none_or(|q| q.covers(&p)))
                .fold(0u64, |m, r| m | 1u64 << r.slot);
            (p, mask)
        })
        .collect()
}

/// The maps' contents for `rules`, in priority order. Slots must be distinct and below MAX_RULES.
pub fn compile(rules: &[SlottedRule]) -> Compiled {
    let family = |v4: bool| -> Vec<&SlottedRule> {
        rules
            .iter()
            .filter(|r| r.rule.v4_only().is_none_or(|x| x == v4))
            .collect()
    };
    let (v4, v6) = (family(true), family(false));
    let tries = Tries {
        src_v4: trie(&v4, true, |r| r.src),
        dst_v4: trie(&v4, true, |r| r.dst),
        src_v6: trie(&v6, false, |r| r.src),
        dst_v6: trie(&v6, false, |r| r.dst),
    };
    let mut entries = [RuleEntry::default(); MAX_RULES];
    for (priority, r) in rules.iter().enumerate() {
        let any = crate::rules::PortRange {
            lo: 0,
            hi: u16::MAX,
        };
        let (sport, dport) = (r.rule.sport.unwrap_or(any), r.rule.dport.unwrap_or(any));
        entries[usize::from(r.slot)] = RuleEntry {
            enabled: 1,
            drop: u8::from(r.rule.action == Action::Drop),
            proto: r.rule.proto.unwrap_or(0),
            pad: 0,
            sport_lo: sport.lo,
            sport_hi: sport.hi,
            dport_lo: dport.lo,
            dport_hi: dport.hi,
            priority: priority as u32,
        };
    }
    Compiled { tries, entries }
}

/// What the kernel's LPM lookup returns: the value of the longest prefix containing `addr`.
fn longest(trie: &BTreeMap<Prefix, u64>, addr: IpAddr) -> u64 {
    trie.iter()
        .filter(|(p, _)| p.contains(addr))
        .max_by_key(|(p, _)| p.len)
        .map_or(0, |(_, m)| *m)
}

impl Compiled {
    /// The slot the program picks for `p` (a model of xdp_filter.bpf.c, for tests).
    pub fn lookup(&self, p: &PacketHeader) -> Option<u8> {
        let t = &self.tries;
        let cand = if p.src.is_ipv4() {
            longest(&t.src_v4, p.src) & longest(&t.dst_v4, p.dst)
        } else {
            longest(&t.src_v6, p.src) & longest(&t.dst_v6, p.dst)
        };
        (0..MAX_RULES)
            .filter(|i| cand & (1u64 << i) != 0)
            .map(|i| (i, self.entries[i]))
            .filter(|(_, r)| {
                let any_s = r.sport_lo == 0 && r.sport_hi == u16::MAX;
                let any_d = r.dport_lo == 0 && r.dport_hi == u16::MAX;
                r.enabled == 1
                    && (r.proto == 0 || r.proto == p.proto)
                    && (any_s
                        || p.ports
                            .is_some_and(|(s, _)| r.sport_lo <= s && s <= r.sport_hi))
                    && (any_d
                        || p.ports
                            .is_some_and(|(_, d)| r.dport_lo <= d && d <= r.dport_hi))
            })
            .min_by_key(|(_, r)| r.priority)
            .map(|(i, _)| i as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::PortRange;
    use proptest::prelude::*;

    fn slotted(texts: &[&str]) -> Vec<SlottedRule> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| SlottedRule {
                slot: (texts.len() - 1 - i) as u8, // slots need not follow priority
                rule: t.parse().unwrap(),
            })
            .collect()
    }

    fn pkt(src: &str, dst: &str, proto: u8, dport: u16) -> PacketHeader {
        PacketHeader {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto,
            ports: Some((40000, dport)),
        }
    }

    #[test]
    fn the_first_matching_rule_wins_across_nested_prefixes() {
        let rules = slotted(&[
            "pass src 10.1.2.3",
            "drop src 10.1.0.0/16 proto udp dport 53",
            "drop src 10.0.0.0/8 proto tcp dport 1000-2000",
            "drop proto udp",
        ]);
        let c = compile(&rules);
        let slot_of = |i: usize| Some(rules[i].slot);
        assert_eq!(c.lookup(&pkt("10.1.2.3", "1.1.1.1", 17, 53)), slot_of(0));
        assert_eq!(c.lookup(&pkt("10.1.9.9", "1.1.1.1", 17, 53)), slot_of(1));
        assert_eq!(c.lookup(&pkt("10.1.9.9", "1.1.1.1", 6, 1500)), slot_of(2));
        assert_eq!(c.lookup(&pkt("10.1.9.9", "1.1.1.1", 6, 2001)), None);
        assert_eq!(c.lookup(&pkt("192.0.2.1", "1.1.1.1", 17, 9)), slot_of(3));
        assert_eq!(c.lookup(&pkt("2001:db8::1", "::1", 17, 9)), slot_of(3));
        assert_eq!(c.lookup(&pkt("2001:db8::1", "::1", 6, 1500)), None);
    }

    fn any_rule() -> impl Strategy<Value = Rule> {
        // Few distinct addresses, so prefixes nest and packets hit them.
        let v4 = (0u32..4, 0u8..=32)
            .prop_map(|(a, l)| Prefix::new(IpAddr::V4((0x0a00_0000 | a << 6).into()), l).unwrap());
        let v6 = (0u128..4, 0u8..=128).prop_map(|(a, l)| {
            Prefix::new(IpAddr::V6((0x2001_0db8u128 << 96 | a << 60).into()), l).unwrap()
        });
        let range = (0u16..8, 0u16..4).prop_map(|(lo, n)| PortRange { lo, hi: lo + n });
        (
            any::<bool>(),
            prop_oneof![Just(None), v4.clone().prop_map(Some), v6.prop_map(Some)],
            proptest::option::of(v4),
            proptest::option::of(prop_oneof![Just(6u8), Just(17u8)]),
            proptest::option::of(range.clone()),
            proptest::option::of(range),
        )
            .prop_map(|(drop, src, dst, proto, sport, dport)| Rule {
                action: if drop { Action::Drop } else { Action::Pass },
                dst: dst.filter(|d: &Prefix| src.is_none_or(|s: Prefix| s.is_v4() == d.is_v4())),
                src,
                proto,
                sport,
                dport,
            })
    }

    fn any_packet() -> impl Strategy<Value = PacketHeader> {
        let addr = prop_oneof![
            (0u32..300).prop_map(|a| IpAddr::V4((0x0a00_0000 | a).into())),
            (0u128..4, 0u128..1 << 60)
                .prop_map(|(a, b)| IpAddr::V6((0x2001_0db8u128 << 96 | a << 60 | b).into())),
        ];
        (
            addr,
            any::<u32>(),
            prop_oneof![Just(6u8), Just(17), Just(1)],
            proptest::option::of((0u16..12, 0u16..12)),
        )
            .prop_map(|(src, d, proto, ports)| {
                let dst = if src.is_ipv4() {
                    IpAddr::V4((0x0a00_0000 | (d % 300)).into())
                } else {
                    IpAddr::V6((0x2001_0db8u128 << 96 | u128::from(d)).into())
                };
                PacketHeader {
                    src,
                    dst,
                    proto,
                    ports,
                }
            })
    }

    proptest! {
        /// The tries and slot checks pick exactly the first rule, in order, that matches.
        #[test]
        fn compiled_maps_agree_with_first_match(rules in proptest::collection::vec(any_rule(), 0..20), packets in proptest::collection::vec(any_packet(), 1..40)) {
            let slotted: Vec<SlottedRule> = rules.into_iter().enumerate().map(|(i, rule)| SlottedRule { slot: (i * 7 % MAX_RULES) as u8, rule }).collect();
            let c = compile(&slotted);
            for p in &packets {
                let want = slotted.iter().find(|r| r.rule.matches(p)).map(|r| r.slot);
                prop_assert_eq!(c.lookup(p), want, "{:?}", p);
            }
        }
    }
}
