//! A SYN flood of many spoofed sources: memory follows the live conversations,
//! not the SYNs (half-open attempts are folded per server), and the flood is
//! still diagnosed with every attempt counted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use etherparse::PacketBuilder;
use netsight_packet::flows::FOLD_HALF_OPEN_AT;
use netsight_packet::pcap_write::{Format, PcapWriter};

/// `n` SYNs to 10.0.0.2:80 from distinct sources, 10 µs apart, plus one complete
/// conversation at the end that must keep its own row.
fn flood(n: u32) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), Format::Pcap, 1, 65535, "flood").unwrap();
    let frame = |src: [u8; 4],
                 sport: u16,
                 dst: [u8; 4],
                 dport: u16,
                 syn: bool,
                 ack: Option<u32>,
                 seq: u32| {
        let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .tcp(sport, dport, seq, 64240);
        if syn {
            b = b.syn();
        }
        if let Some(a) = ack {
            b = b.ack(a);
        }
        let mut out = Vec::new();
        b.write(&mut out, &[]).unwrap();
        out
    };
    let mut t = 1_700_000_000_000_000_000i64;
    for i in 0..n {
        let src = [11, (i >> 16) as u8, (i >> 8) as u8, i as u8];
        let f = frame(
            src,
            1024 + (i % 60000) as u16,
            [10, 0, 0, 2],
            80,
            true,
            None,
            i,
        );
        w.write_frame(t, f.len() as u32, &f).unwrap();
        t += 10_000;
    }
    // A real client completes a handshake after the flood.
    t += 2_000_000_000;
    for (f, dt) in [
        (
            frame([10, 0, 0, 9], 5000, [10, 0, 0, 2], 80, true, None, 100),
            0,
        ),
        (
            frame([10, 0, 0, 2], 80, [10, 0, 0, 9], 5000, true, Some(101), 900),
            100_000,
        ),
        (
            frame(
                [10, 0, 0, 9],
                5000,
                [10, 0, 0, 2],
                80,
                false,
                Some(901),
                101,
            ),
            200_000,
        ),
    ] {
        w.write_frame(t + dt, f.len() as u32, &f).unwrap();
    }
    w.into_inner()
}

#[test]
fn a_syn_flood_is_folded_and_still_diagnosed() {
    let n = 150_000u32;
    let a = netsight_packet::analyze_reader("flood", std::io::Cursor::new(flood(n))).unwrap();
    let folded: u64 = a.half_open_folded.iter().map(|h| h.attempts).sum();
    assert!(folded > 0, "nothing folded");
    // Every attempt is either a row or folded; rows stay near the folding threshold.
    assert_eq!(folded + a.flows.len() as u64, u64::from(n) + 1);
    assert!(
        a.flows.len() <= FOLD_HALF_OPEN_AT + (1 << 16),
        "{} rows kept",
        a.flows.len()
    );
    let flood = a
        .diagnoses
        .iter()
        .find(|d| d.id == "syn-flood")
        .expect("syn-flood diagnosed");
    assert!(
        flood.title.contains(&format!("{n} SYNs"))
            || flood.title.contains(&format!("{} SYNs", n + 1)),
        "{}",
        flood.title
    );
    // The real conversation keeps its own row with its handshake.
    let real = a
        .flows
        .iter()
        .find(|f| f.a.ip() == std::net::IpAddr::from([10, 0, 0, 9]))
        .expect("the real client's row");
    assert!(
        real.handshake.is_some_and(|h| h.synack_to_ack_us.is_some()),
        "{real:?}"
    );
    // Stream numbers stay tshark's: the last conversation is stream n.
    assert_eq!(real.stream, n);
}

#[test]
fn ordinary_captures_fold_nothing() {
    let a = netsight_packet::analyze_reader("small", std::io::Cursor::new(flood(1000))).unwrap();
    assert!(a.half_open_folded.is_empty());
    assert_eq!(a.flows.len(), 1001);
}
