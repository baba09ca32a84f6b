//! Hostile input: every corpus file, every truncation of a real capture, random mutations and
//! random frames must give a clear error or counted skips, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::Cursor;

use netsight_packet::analyze_reader;
use netsight_packet::dissect::decode;
use netsight_packet::pcap_read::PcapReadError;
use proptest::prelude::*;

fn corpus_file(name: &str) -> Option<Vec<u8>> {
    std::fs::read(common::corpus_dir()?.join(name)).ok()
}

#[test]
fn every_corpus_file_is_analysed_or_refused_cleanly() {
    let files = common::corpus_files();
    if files.is_empty() {
        return common::skip("shared corpus not found (set NETSIGHT_CORPUS)");
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

#[test]
fn every_truncation_of_a_capture_keeps_the_frames_before_the_cut() {
    let Some(bytes) = corpus_file("netsight-lab-anomalies.pcap") else {
        return common::skip("shared corpus not found (set NETSIGHT_CORPUS)");
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
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mutated_captures_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..40), cut in any::<prop::sample::Index>()) {
        let Some(bytes) = corpus_file("tcp-handshake-nano.pcap").or_else(|| corpus_file("dns_tcp.pcap")) else {
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
