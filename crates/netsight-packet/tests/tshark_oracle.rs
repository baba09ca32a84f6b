//! tshark is the oracle: expert counts and per-stream packet/byte totals must agree on every
//! corpus capture and on synthetic conversations built to trigger each tcp.analysis flag.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{
    corpus_files, handshake, have, netsight_view, seg, skip, tshark_view, write_conversation, Seg,
};
use netsight_packet::analyze_file;

/// Corpus files where netsight deliberately differs from tshark (see ARCHITECTURE.md).
/// Expert counts agree on these too; only the stream table differs.
const TUNNEL: &str =
    "VXLAN/Geneve are not decapsulated: netsight reports the outer UDP flow, tshark the inner TCP";
const BIG_TCP: &str = "IPv6 BIG TCP jumbogram (payload length 0 + jumbo option): netsight decodes the TCP segment, tshark 4.0 does not";
const DOCUMENTED_DIFFERENCES: &[(&str, &str)] = &[
    ("gso-ipv4-geneve-ipv6.pcap", TUNNEL),
    ("gso-ipv4-vxlan-ipv6.pcap", TUNNEL),
    ("gso-ipv6-geneve-ipv4.pcap", TUNNEL),
    ("gso-ipv6-geneve-ipv6.pcap", TUNNEL),
    ("gso-ipv6-vxlan-ipv4.pcap", TUNNEL),
    ("gso-ipv6-vxlan-ipv6.pcap", TUNNEL),
    ("bigtcp-ipv4-geneve-ipv4.pcap", TUNNEL),
    ("bigtcp-ipv4-geneve-ipv6.pcap", TUNNEL),
    ("bigtcp-ipv4-vxlan-ipv4.pcap", TUNNEL),
    ("bigtcp-ipv4-vxlan-ipv6.pcap", TUNNEL),
    ("bigtcp-ipv6-geneve-ipv4.pcap", TUNNEL),
    ("bigtcp-ipv6-geneve-ipv6.pcap", TUNNEL),
    ("bigtcp-ipv6-vxlan-ipv4.pcap", TUNNEL),
    ("bigtcp-ipv6-vxlan-ipv6.pcap", TUNNEL),
    ("bigtcp-ipv6.pcap", BIG_TCP),
    (
        "tok2str-oobr-2.pcap",
        "IPv4 header with the reserved (evil) bit set is rejected by etherparse; tshark decodes it",
    ),
    (
        "wb-oobr.pcap",
        "PPP link type (and MPLS inside it) is not decoded",
    ),
];

#[test]
fn corpus_agrees_with_tshark() {
    // tcpdump's test captures, and reductions of real-world captures (shared/corpus/realworld).
    let mut files = corpus_files();
    files.extend(common::realworld_files());
    if files.is_empty() {
        return skip(
            "corpus_agrees_with_tshark",
            "shared corpus not found (set NETSIGHT_CORPUS)",
        );
    }
    if !have("tshark") {
        return skip(
            "corpus_agrees_with_tshark",
            "tshark not installed (scripts/setup installs it)",
        );
    }
    let mut mismatches = Vec::new();
    let mut compared_streams = 0;
    for file in &files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let documented = DOCUMENTED_DIFFERENCES.iter().any(|(n, _)| *n == name);
        let Some(oracle) = tshark_view(file) else {
            continue;
        };
        let ours = match analyze_file(file) {
            Ok(a) => netsight_view(&a),
            Err(e) => {
                mismatches.push(format!("{name}: netsight error {e}"));
                continue;
            }
        };
        compared_streams += oracle.streams.len();
        if ours.expert != oracle.expert {
            mismatches.push(format!(
                "{name}: expert\n  tshark   {:?}\n  netsight {:?}",
                oracle.expert, ours.expert
            ));
        }
        if ours.streams != oracle.streams && !documented {
            mismatches.push(format!(
                "{name}: streams\n  tshark   {:?}\n  netsight {:?}",
                oracle.streams, ours.streams
            ));
        }
    }
    eprintln!("compared {} files, {compared_streams} streams", files.len());
    assert!(
        compared_streams > 50,
        "the corpus should hold many TCP/UDP streams"
    );
    assert!(
        mismatches.is_empty(),
        "{} files differ from tshark:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Loss, duplicate ACKs, fast and plain retransmission, spurious retransmission, a gap, reordering.
fn loss_and_reordering() -> Vec<Seg> {
    let mut s = handshake(Some(7), 502);
    let c = true;
    s.extend([
        seg(21_000, c, "PA", 1001, 5001, 502, 100),
        seg(21_100, c, "PA", 1101, 5001, 502, 100),
        seg(21_200, c, "PA", 1201, 5001, 502, 100),
        seg(21_300, c, "PA", 1301, 5001, 502, 100),
        seg(30_000, !c, "A", 5001, 1101, 502, 0),
        seg(30_100, !c, "A", 5001, 1101, 502, 0),
        seg(30_200, !c, "A", 5001, 1101, 502, 0),
        seg(30_300, !c, "A", 5001, 1101, 502, 0),
        seg(31_000, c, "PA", 1101, 5001, 502, 100), // fast retransmission
        seg(40_000, !c, "A", 5001, 1401, 502, 0),
        seg(41_000, c, "PA", 1101, 5001, 502, 100), // spurious: already acked
        seg(42_000, c, "PA", 1501, 5001, 502, 100), // previous segment (1401) not captured
        seg(42_100, c, "PA", 1401, 5001, 502, 100), // out of order: fills the gap at once
        seg(60_000, !c, "A", 5001, 1601, 502, 0),
        seg(61_000, c, "PA", 1601, 5001, 502, 100),
        seg(400_000, c, "PA", 1601, 5001, 502, 100), // RTO retransmission
        seg(410_000, !c, "A", 5001, 1701, 502, 0),
        seg(420_000, c, "FA", 1701, 5001, 502, 0),
        seg(430_000, !c, "FA", 5001, 1702, 502, 0),
        seg(440_000, c, "A", 1702, 5002, 502, 0),
    ]);
    s
}

/// A receiver whose window fills and closes: window full, zero window, probes and their ACKs,
/// window update, keep-alive and its ACK, then a reset.
fn window_stall() -> Vec<Seg> {
    let mut s = handshake(None, 300);
    let c = true;
    s.extend([
        seg(21_000, c, "PA", 1001, 5001, 64240, 300), // fills the 300-byte window
        seg(30_000, !c, "A", 5001, 1301, 0, 0),       // zero window
        seg(230_000, c, "A", 1301, 5001, 64240, 1),   // zero-window probe
        seg(240_000, !c, "A", 5001, 1301, 0, 0),      // probe ACK
        seg(640_000, c, "A", 1301, 5001, 64240, 1),   // probe
        seg(650_000, !c, "A", 5001, 1301, 0, 0),      // probe ACK
        seg(700_000, !c, "A", 5001, 1301, 2000, 0),   // window update
        seg(701_000, c, "PA", 1301, 5001, 64240, 100),
        seg(710_000, !c, "A", 5001, 1401, 2000, 0),
        seg(5_000_000, c, "A", 1400, 5001, 64240, 0), // keep-alive
        seg(5_010_000, !c, "A", 5001, 1401, 2000, 0), // keep-alive ACK
        seg(5_020_000, !c, "A", 5001, 1401, 2000, 0), // duplicate ACK
        seg(6_000_000, c, "RA", 1401, 5001, 0, 0),
    ]);
    s
}

/// A refused connection, and a SYN retransmitted without answer.
fn refused_and_unanswered() -> Vec<Seg> {
    vec![
        seg(0, true, "S", 1000, 0, 64240, 0),
        seg(100, false, "RA", 0, 1001, 0, 0),
        seg(1_000_000, true, "S", 77_000, 0, 64240, 0),
        seg(2_000_000, true, "S", 77_000, 0, 64240, 0),
        seg(4_000_000, true, "S", 77_000, 0, 64240, 0),
    ]
}

#[test]
fn synthetic_conversations_agree_with_tshark() {
    if !have("tshark") {
        return skip(
            "synthetic_conversations_agree_with_tshark",
            "tshark not installed (scripts/setup installs it)",
        );
    }
    let dir = std::env::temp_dir().join(format!("netsight-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cases: [(&str, Vec<Seg>, &[&str]); 3] = [
        (
            "loss",
            loss_and_reordering(),
            &[
                "retransmission",
                "fast_retransmission",
                "spurious_retransmission",
                "out_of_order",
                "lost_segment",
                "dup_ack",
            ],
        ),
        (
            "stall",
            window_stall(),
            &[
                "window_full",
                "zero_window",
                "zero_window_probe",
                "zero_window_probe_ack",
                "window_update",
                "keep_alive",
                "keep_alive_ack",
                "rst",
            ],
        ),
        (
            "refused",
            refused_and_unanswered(),
            &["rst", "retransmission"],
        ),
    ];
    let mut failures = Vec::new();
    for (name, segs, exercised) in cases {
        let path = dir.join(format!("{name}.pcap"));
        write_conversation(&path, &segs);
        let oracle = tshark_view(&path).expect("tshark runs");
        let analysis = analyze_file(&path).expect("analyze");
        let ours = netsight_view(&analysis);
        for flag in exercised {
            // The case must really trigger the flag, or agreement proves nothing.
            assert!(
                oracle.expert[flag] > 0,
                "{name}: tshark finds no {flag}; the case does not exercise it"
            );
        }
        if ours != oracle {
            failures.push(format!(
                "{name}:\n  tshark   {:?}\n  netsight {:?}",
                oracle, ours
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Link layers tshark decodes that netsight once skipped: DLT_NULL whose 4-byte
/// header holds an Ethertype instead of an address family (both byte orders), and
/// PPPoE session frames. The same conversation must give tshark's counts.
#[test]
fn null_with_ethertype_and_pppoe_agree_with_tshark() {
    if !have("tshark") {
        return skip(
            "null_with_ethertype_and_pppoe_agree_with_tshark",
            "tshark not installed (scripts/setup installs it)",
        );
    }
    let dir = std::env::temp_dir().join(format!("netsight-links-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    fn null_le(f: &[u8]) -> Vec<u8> {
        [&0x0800u32.to_le_bytes()[..], &f[14..]].concat()
    }
    fn null_be(f: &[u8]) -> Vec<u8> {
        [&0x0800u32.to_be_bytes()[..], &f[14..]].concat()
    }
    fn pppoe(f: &[u8]) -> Vec<u8> {
        let ip = &f[14..];
        let len = (ip.len() + 2) as u16;
        let mut out = f[..12].to_vec();
        out.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x12, 0x34]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&[0x00, 0x21]);
        out.extend_from_slice(ip);
        out
    }
    let conversation = loss_and_reordering();
    for (name, linktype, wrap) in [
        ("null-le.pcap", 0u32, null_le as fn(&[u8]) -> Vec<u8>),
        ("null-be.pcap", 0, null_be),
        ("pppoe.pcap", 1, pppoe),
    ] {
        let path = dir.join(name);
        common::write_conversation_as(&path, &conversation, linktype, wrap);
        let oracle = tshark_view(&path).expect("tshark reads it");
        assert!(
            !oracle.streams.is_empty(),
            "{name}: tshark decodes no stream"
        );
        let ours = netsight_view(&analyze_file(&path).unwrap());
        assert_eq!(ours.expert, oracle.expert, "{name}");
        assert_eq!(ours.streams, oracle.streams, "{name}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
