//! Hostile input: every corpus file, every truncation of a real capture, random mutations and
//! random frames must give a clear error or counted skips, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::Cursor;

use etherparse::{PacketBuilder, TcpOptionElement};
use netsight_packet::analyze_reader;
use netsight_packet::dissect::{decode, decode_general};
use netsight_packet::pcap_read::PcapReadError;
use proptest::prelude::*;

fn corpus_file(name: &str) -> Option<Vec<u8>> {
    std::fs::read(common::corpus_dir()?.join(name)).ok()
}

#[test]
fn every_corpus_file_is_analysed_or_refused_cleanly() {
    let files = common::corpus_files();
    if files.is_empty() {
        return common::skip(
            "every_corpus_file_is_analysed_or_refused_cleanly",
            "shared corpus not found (set NETSIGHT_CORPUS)",
        );
    }
    let mut frames = 0;
    for file in &files {
        match netsight_packet::analyze_file(file) {
            Ok(a) => {
                let p = &a.packets;
                let decoded = p.tcp + p.udp + p.icmp_errors + p.other_ip;
                let skipped = p.skipped_link_type
                    + p.skipped_not_ip
                    + p.skipped_truncated
                    + p.skipped_fragment;
                assert_eq!(
                    decoded + skipped,
                    p.frames,
                    "{}: every frame is decoded or counted as skipped",
                    file.display()
                );
                frames += p.frames;
            }
            Err(e) => {
                // Only files that are not captures at all may be refused, and the error says so.
                assert!(
                    matches!(e, PcapReadError::NotACapture(_) | PcapReadError::Empty(_)),
                    "{}: {e}",
                    file.display()
                );
            }
        }
    }
    assert!(
        frames > 3000,
        "the corpus holds thousands of frames, read {frames}"
    );
}

/// `decode` takes a hand-written path for Ethernet → IP → TCP; it must say exactly what
/// etherparse's general path says, frame by frame.
#[test]
fn the_fast_path_decodes_every_corpus_frame_as_etherparse_does() {
    let files = common::corpus_files();
    if files.is_empty() {
        return common::skip(
            "the_fast_path_decodes_every_corpus_frame_as_etherparse_does",
            "shared corpus not found (set NETSIGHT_CORPUS)",
        );
    }
    let (mut compared, mut tcp) = (0u64, 0u64);
    let mut differences = Vec::new();
    for file in &files {
        let Ok(input) = std::fs::File::open(file) else {
            continue;
        };
        let _ = netsight_packet::pcap_read::read_frames("corpus", input, |f| {
            let general = decode_general(f.linktype, f.data);
            if f.linktype == 1 {
                compared += 1;
                tcp += u64::from(matches!(
                    &general,
                    Ok(p) if matches!(p.transport, netsight_packet::dissect::Transport::Tcp(_))
                ));
            }
            let fast = decode(f.linktype, f.data);
            if fast != general && differences.len() < 10 {
                differences.push(format!(
                    "{} frame {}:\n  fast    {fast:?}\n  general {general:?}",
                    file.display(),
                    f.number
                ));
            }
        });
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    assert!(
        compared > 3000 && tcp > 1000,
        "too few Ethernet TCP frames to mean anything: {compared} frames, {tcp} TCP"
    );
}

/// A valid Ethernet frame carrying TCP with options and payload, over IPv4 or IPv6.
fn ethernet_tcp_frame(v6: bool, payload_len: usize) -> Vec<u8> {
    let link = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let ip = if v6 {
        link.ipv6([0xfe; 16], [0xfd; 16], 64)
    } else {
        link.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
    };
    let tcp = ip
        .tcp(40000, 443, 123_456, 512)
        .syn()
        .ack(99)
        .options(&[
            TcpOptionElement::MaximumSegmentSize(1460),
            TcpOptionElement::SelectiveAcknowledgementPermitted,
            TcpOptionElement::WindowScale(9),
        ])
        .unwrap();
    let mut frame = Vec::new();
    tcp.write(&mut frame, &vec![0x61; payload_len]).unwrap();
    frame
}

#[test]
fn every_truncation_of_a_capture_keeps_the_frames_before_the_cut() {
    let Some(bytes) = corpus_file("netsight-lab-anomalies.pcap") else {
        return common::skip(
            "every_truncation_of_a_capture_keeps_the_frames_before_the_cut",
            "shared corpus not found (set NETSIGHT_CORPUS)",
        );
    };
    let whole = analyze_reader("whole", Cursor::new(bytes.clone())).expect("whole file");
    assert!(whole.capture.stopped.is_none());
    let mut previous = 0;
    // Cut inside the file header, then at many points through the records.
    for cut in (0..64).chain((64..bytes.len()).step_by(997)) {
        match analyze_reader("cut", Cursor::new(bytes[..cut].to_vec())) {
            Ok(a) => {
                assert!(
                    a.packets.frames >= previous,
                    "a longer prefix never yields fewer frames"
                );
                assert!(a.packets.frames <= whole.packets.frames);
                previous = a.packets.frames;
                if a.packets.frames < whole.packets.frames && cut > 24 {
                    // Cut mid-record: said so, unless the cut fell exactly on a record boundary.
                    let at_boundary = a.capture.stopped.is_none();
                    assert!(
                        at_boundary
                            || a.capture
                                .stopped
                                .as_deref()
                                .is_some_and(|s| s.contains("truncated")),
                        "{cut}: {:?}",
                        a.capture.stopped
                    );
                }
            }
            Err(e) => assert!(
                cut < 24,
                "only a cut inside the 24-byte header may fail: {cut}: {e}"
            ),
        }
    }
}

#[test]
fn a_text_file_is_refused_with_a_clear_error() {
    let err = analyze_reader(
        "notes.txt",
        Cursor::new(b"hello, this is not a capture\n".to_vec()),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("not a pcap or pcapng file"),
        "{err}"
    );
    let err = analyze_reader("empty.pcap", Cursor::new(Vec::new())).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_frames_never_panic(
        linktype in prop::sample::select(vec![0u32, 1, 12, 14, 101, 108, 113, 129, 228, 229, 276, 9, 105]),
        data in prop::collection::vec(any::<u8>(), 0..160),
    ) {
        let _ = decode(linktype, &data);
    }

    #[test]
    fn random_ip_headers_behind_ethernet_never_panic(data in prop::collection::vec(any::<u8>(), 0..120), v6 in any::<bool>()) {
        // Steer the fuzz past the link layer: a valid Ethernet header, then random IP bytes
        // with the version nibble set, so the IP and TCP/UDP/ICMP paths are exercised.
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
        let mut ip = data;
        if let Some(b) = ip.first_mut() {
            *b = (*b & 0x0f) | if v6 { 0x60 } else { 0x45 & 0xf0 | 0x05 };
        }
        frame.extend_from_slice(&ip);
        let _ = decode(1, &frame);
    }

    #[test]
    fn the_fast_path_agrees_with_etherparse_on_mutated_frames(
        v6 in any::<bool>(),
        payload_len in 0usize..64,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        field_flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 0..3),
        cut in any::<prop::sample::Index>(),
        padding in 0usize..8,
    ) {
        let mut frame = ethernet_tcp_frame(v6, payload_len);
        frame.extend(std::iter::repeat_n(0, padding)); // Ethernet padding past the IP length
        // Single-bit flips in the bytes the fast path decides on: EtherType, version/IHL,
        // lengths, flags and fragment offset, protocol / next header, TCP data offset, options.
        let fields: &[usize] = if v6 {
            &[12, 13, 14, 18, 19, 20, 66, 74, 75, 76]
        } else {
            &[12, 13, 14, 16, 17, 20, 21, 23, 46, 54, 55, 56]
        };
        for (at, bit) in field_flips {
            frame[fields[at.index(fields.len())]] ^= 1 << bit;
        }
        for (at, value) in flips {
            let i = at.index(frame.len());
            frame[i] = value;
        }
        frame.truncate(cut.index(frame.len() + 1).max(14));
        prop_assert_eq!(decode(1, &frame), decode_general(1, &frame));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mutated_captures_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..40), cut in any::<prop::sample::Index>()) {
        let Some(bytes) = corpus_file("tcp-handshake-nano.pcap").or_else(|| corpus_file("dns_tcp.pcap")) else {
            common::skip_once("mutated_captures_never_panic", "shared corpus not found (set NETSIGHT_CORPUS)");
            return Ok(());
        };
        let mut bytes = bytes;
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep);
        let _ = analyze_reader("mutated", Cursor::new(bytes));
    }
}
