//! The C program against the rules' meaning: random rule lists are compiled into
//! the real program's maps, random frames are run through it in the kernel
//! (BPF_PROG_TEST_RUN), and each verdict must be the first matching rule's
//! (`Rule::matches`), or pass. Needs root (CAP_BPF).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::net::IpAddr;

use netsight_xdp::compile::{compile, SlottedRule};
use netsight_xdp::kernel;
use netsight_xdp::rules::{Action, PacketHeader, PortRange, Prefix, Rule};
use proptest::prelude::*;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

/// An Ethernet frame (optionally VLAN-tagged) carrying `p` with its ports.
fn frame(p: &PacketHeader, vlan: bool) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    if vlan {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
    }
    let l4: Vec<u8> = match (p.proto, p.ports) {
        (6, Some((s, d))) => {
            let mut t = vec![0u8; 20];
            t[0..2].copy_from_slice(&s.to_be_bytes());
            t[2..4].copy_from_slice(&d.to_be_bytes());
            t[12] = 0x50;
            t[13] = 0x10; // ACK: not a SYN
            t
        }
        (17, Some((s, d))) => {
            let mut u = vec![0u8; 8];
            u[0..2].copy_from_slice(&s.to_be_bytes());
            u[2..4].copy_from_slice(&d.to_be_bytes());
            u
        }
        _ => vec![0u8; 8],
    };
    match (p.src, p.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&[0x08, 0x00]);
            let mut ip = vec![0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
            ip[8] = 64;
            ip[9] = p.proto;
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            f.extend_from_slice(&ip);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend_from_slice(&[0x86, 0xdd]);
            let mut ip = vec![0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
            ip[6] = p.proto;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&s.octets());
            ip[24..40].copy_from_slice(&d.octets());
            f.extend_from_slice(&ip);
        }
        _ => unreachable!("one family per packet"),
    }
    f.extend_from_slice(&l4);
    f.resize(f.len().max(60), 0);
    f
}

fn any_rule() -> impl Strategy<Value = Rule> {
    let v4 = (0u32..4, 0u8..=32)
        .prop_map(|(a, l)| Prefix::new(IpAddr::V4((0x0a00_0000 | (a << 6)).into()), l).unwrap());
    let v6 = (0u128..4, 0u8..=128).prop_map(|(a, l)| {
        Prefix::new(IpAddr::V6(((0x2001_0db8u128 << 96) | (a << 60)).into()), l).unwrap()
    });
    let range = (0u16..8, 0u16..4).prop_map(|(lo, n)| PortRange { lo, hi: lo + n });
    (
        any::<bool>(),
        prop_oneof![Just(None), v4.clone().prop_map(Some), v6.prop_map(Some)],
        proptest::option::of(v4),
        proptest::option::of(prop_oneof![Just(6u8), Just(17u8), Just(1u8)]),
        proptest::option::of(range.clone()),
        proptest::option::of(range),
    )
        .prop_map(|(drop, src, dst, proto, sport, dport)| {
            let ports_ok = proto.is_none_or(|p| p != 1);
            Rule {
                action: if drop { Action::Drop } else { Action::Pass },
                dst: dst.filter(|d: &Prefix| src.is_none_or(|s: Prefix| s.is_v4() == d.is_v4())),
                src,
                proto,
                sport: sport.filter(|_| ports_ok),
                dport: dport.filter(|_| ports_ok),
            }
        })
}

fn any_packet() -> impl Strategy<Value = (PacketHeader, bool)> {
    let addr = prop_oneof![
        (0u32..300).prop_map(|a| IpAddr::V4((0x0a00_0000 | a).into())),
        (0u128..4, 0u128..1 << 60)
            .prop_map(|(a, b)| IpAddr::V6(((0x2001_0db8u128 << 96) | (a << 60) | b).into())),
    ];
    (
        addr,
        0u32..300,
        prop_oneof![Just(6u8), Just(17), Just(1)],
        (0u16..12, 0u16..12),
        any::<bool>(),
    )
        .prop_map(|(src, d, proto, ports, vlan)| {
            let dst = if src.is_ipv4() {
                IpAddr::V4((0x0a00_0000 | d).into())
            } else {
                IpAddr::V6(((0x2001_0db8u128 << 96) | u128::from(d)).into())
            };
            let ports = (proto != 1).then_some(ports);
            (
                PacketHeader {
                    src,
                    dst,
                    proto,
                    ports,
                },
                vlan,
            )
        })
}

#[test]
fn the_program_drops_exactly_what_the_first_matching_rule_says() {
    if !netsight_testkit::is_root() {
        netsight_testkit::skip(
            "the_program_drops_exactly_what_the_first_matching_rule_says",
            "needs root (CAP_BPF to load the program)",
        );
        return;
    }
    let mut loaded = kernel::load().expect("load the filter");
    loaded.maps.set_config(false, None).unwrap();
    // proptest's closure is Fn: the loaded program and the maps' contents change inside it.
    let state = std::cell::RefCell::new((loaded, compile(&[])));
    let config = proptest::test_runner::Config {
        cases: 48,
        ..Default::default()
    };
    proptest::proptest!(config, |(rules in proptest::collection::vec(any_rule(), 0..24), packets in proptest::collection::vec(any_packet(), 1..48))| {
        let slotted: Vec<SlottedRule> = rules.into_iter().enumerate().map(|(i, rule)| SlottedRule { slot: (i * 5 % 64) as u8, rule }).collect();
        let next = compile(&slotted);
        let mut st = state.borrow_mut();
        let (loaded, current) = &mut *st;
        loaded.maps.change_rules(current, &next).unwrap();
        *current = next;
        for (p, vlan) in &packets {
            let want = match slotted.iter().find(|r| r.rule.matches(p)) {
                Some(r) if r.rule.action == Action::Drop => XDP_DROP,
                _ => XDP_PASS,
            };
            let got = loaded.verdict(&frame(p, *vlan)).unwrap();
            prop_assert_eq!(got, want, "{:?} vlan {} under {:?}", p, vlan, slotted);
        }
    });
}
