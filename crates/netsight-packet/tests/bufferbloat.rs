//! The bufferbloat diagnosis on captures whose queueing is known exactly: a bulk sender in slow
//! start behind a FIFO bottleneck, simulated segment by segment, captured at the sender. The
//! same sender with a right-sized buffer, on a long path, and an interactive flow with delayed
//! ACKs must not be called bufferbloat.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{handshake, have, seg, skip, write_conversation, Seg};
use netsight_packet::{analyze_file, Analysis};

const MSS: u32 = 1448;
/// Client data starts after the handshake's SYN (ISN 1000); the server's ACKs carry seq 5001.
const CLIENT_DATA_SEQ: u32 = 1001;
const SERVER_SEQ: u32 = 5001;
/// Window 65535 << 7 (the handshake's scale): the receiver never limits the sender.
const OPEN_WINDOW: u16 = 65535;

/// A path through one FIFO bottleneck, and how much the sender sends into it.
struct Bottleneck {
    /// Two-way propagation delay without any queue, µs.
    base_rtt_us: i64,
    /// Rate, bytes per µs (0.625 = 5 Mbit/s).
    bytes_per_us: f64,
    /// Congestion window cap in segments (receive buffer, or what a right-sized queue allows).
    max_cwnd: u32,
    segments: u32,
}

/// A sender in slow start (10 segments, +1 per ACK) behind a FIFO bottleneck: each segment
/// leaves the queue after everything queued ahead of it, and its ACK (one per segment) arrives
/// one base RTT later. Returns the conversation as seen at the sender.
fn bulk_through_fifo(p: &Bottleneck) -> Vec<Seg> {
    let mut out = handshake(Some(7), OPEN_WINDOW);
    out[1].t_us = p.base_rtt_us;
    out[2].t_us = p.base_rtt_us + 1;
    let start = p.base_rtt_us + 10;
    let mut events: Vec<Seg> = Vec::new();
    let mut queue_free_at = 0.0f64;
    let mut ack_at: Vec<i64> = Vec::new();
    let (mut sent, mut acked, mut cwnd) = (0u32, 0u32, 10u32);
    let mut now = start;
    while acked < p.segments {
        while sent < p.segments && sent - acked < cwnd {
            let seq = CLIENT_DATA_SEQ + sent * MSS;
            events.push(seg(
                now,
                true,
                "A",
                seq,
                SERVER_SEQ,
                OPEN_WINDOW,
                MSS as usize,
            ));
            let leaves = queue_free_at.max(now as f64) + MSS as f64 / p.bytes_per_us;
            queue_free_at = leaves;
            ack_at.push(leaves as i64 + p.base_rtt_us);
            sent += 1;
            now += 1; // back-to-back segments keep their order in the capture
        }
        now = now.max(ack_at[acked as usize]);
        acked += 1;
        let ack = CLIENT_DATA_SEQ + acked * MSS;
        events.push(seg(now, false, "A", SERVER_SEQ, ack, OPEN_WINDOW, 0));
        cwnd = (cwnd + 1).min(p.max_cwnd);
    }
    events.sort_by_key(|s| s.t_us);
    out.extend(events);
    out
}

/// Request/response bursts of 1–3 segments, each answered by one ACK; every other burst's ACK
/// is delayed 40 ms (a delayed ACK), so RTT jumps without any relation to bytes in flight.
fn interactive_with_delayed_acks(bursts: u32) -> Vec<Seg> {
    let base = 2_000;
    let mut out = handshake(Some(7), OPEN_WINDOW);
    out[1].t_us = base;
    out[2].t_us = base + 1;
    let (mut now, mut seq) = (base + 10, CLIENT_DATA_SEQ);
    for k in 0..bursts {
        for _ in 0..=k % 3 {
            out.push(seg(
                now,
                true,
                "PA",
                seq,
                SERVER_SEQ,
                OPEN_WINDOW,
                MSS as usize,
            ));
            seq += MSS;
            now += 1;
        }
        now += if k % 2 == 0 { base + 40_000 } else { base };
        out.push(seg(now, false, "A", SERVER_SEQ, seq, OPEN_WINDOW, 0));
        now += 5_000;
    }
    out
}

struct Case {
    dir: PathBuf,
}

impl Case {
    /// A directory of its own per test: the tests of this file run in parallel.
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("netsight-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self { dir }
    }

    fn analyze(&self, name: &str, segs: &[Seg]) -> (PathBuf, Analysis) {
        let path = self.dir.join(format!("{name}.pcap"));
        write_conversation(&path, segs);
        let analysis = analyze_file(&path).expect("analyze");
        (path, analysis)
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn diagnosis_ids(a: &Analysis) -> Vec<&'static str> {
    a.diagnoses.iter().map(|d| d.id).collect()
}

#[test]
fn slow_start_into_a_deep_fifo_is_bufferbloat() {
    let case = Case::new("bloat");
    // 5 Mbit/s, 2 ms path, the window grows to 300 segments: ~0.7 s of queue at the end.
    let (_, a) = case.analyze(
        "deep-fifo",
        &bulk_through_fifo(&Bottleneck {
            base_rtt_us: 2_000,
            bytes_per_us: 0.625,
            max_cwnd: 300,
            segments: 1_500,
        }),
    );
    let flow = &a.flows[0];
    let rtt = &flow.rtt;
    assert!(
        rtt.min_us < 5_000.0,
        "the first segments see no queue: {rtt:?}"
    );
    assert!(
        rtt.max_us > 500_000.0,
        "the full queue holds ~0.7 s: {rtt:?}"
    );
    let corr = rtt.rtt_inflight_correlation.expect("correlation");
    assert!(
        corr > 0.95,
        "RTT is the queue, the queue is the data in flight: {corr}"
    );
    let d = a
        .diagnoses
        .iter()
        .find(|d| d.id == "bufferbloat")
        .unwrap_or_else(|| panic!("not diagnosed: {:?}", diagnosis_ids(&a)));
    assert_eq!(d.streams, vec![flow.stream]);
    assert_eq!(d.severity, "warning");
}

#[test]
fn right_sized_buffer_and_long_path_are_not_bufferbloat() {
    let case = Case::new("no-bloat");
    // 100 Mbit/s, 2 ms: BDP 17 segments; the window stops at 20 (a queue of ~0.35 ms).
    let (_, small) = case.analyze(
        "right-sized",
        &bulk_through_fifo(&Bottleneck {
            base_rtt_us: 2_000,
            bytes_per_us: 12.5,
            max_cwnd: 20,
            segments: 1_500,
        }),
    );
    // 100 Mbit/s, 80 ms: a high RTT that is all propagation, no queue.
    let (_, long) = case.analyze(
        "long-path",
        &bulk_through_fifo(&Bottleneck {
            base_rtt_us: 80_000,
            bytes_per_us: 12.5,
            max_cwnd: 400,
            segments: 1_500,
        }),
    );
    let interactive = case
        .analyze("delayed-acks", &interactive_with_delayed_acks(60))
        .1;
    for (name, a) in [
        ("right-sized", &small),
        ("long path", &long),
        ("delayed ACKs", &interactive),
    ] {
        assert!(
            a.flows[0].rtt.samples >= 60,
            "{name}: too few samples to mean anything"
        );
        assert!(
            !diagnosis_ids(a).contains(&"bufferbloat"),
            "{name} called bufferbloat: {:?}",
            a.flows[0].rtt
        );
    }
    // The delayed ACKs alone pass the size tests; only the correlation keeps them out.
    let rtt = &interactive.flows[0].rtt;
    assert!(rtt.max_us > 3.0 * rtt.min_us && rtt.max_us - rtt.min_us > 10_000.0);
    assert!(
        rtt.rtt_inflight_correlation.unwrap_or(0.0).abs() < 0.2,
        "{rtt:?}"
    );
}

/// Where every ACK covers exactly one segment, Wireshark's tcp.analysis.ack_rtt is the same
/// measurement: the sample count, minimum and maximum must agree.
#[test]
fn rtt_samples_agree_with_tshark() {
    if !have("tshark") {
        return skip(
            "rtt_samples_agree_with_tshark",
            "tshark not installed (scripts/setup installs it)",
        );
    }
    let case = Case::new("bloat-oracle");
    let (path, a) = case.analyze(
        "oracle",
        &bulk_through_fifo(&Bottleneck {
            base_rtt_us: 2_000,
            bytes_per_us: 0.625,
            max_cwnd: 100,
            segments: 400,
        }),
    );
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&path)
        .args([
            "-Y",
            "tcp.analysis.ack_rtt",
            "-T",
            "fields",
            "-e",
            "tcp.analysis.ack_rtt",
        ])
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse::<f64>().expect("seconds") * 1e6)
        .collect();
    let rtt = &a.flows[0].rtt;
    assert_eq!(rtt.samples as usize, samples.len());
    let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let max = samples.iter().copied().fold(0.0, f64::max);
    assert!(
        (rtt.min_us - min).abs() < 1.0,
        "min {} vs tshark {min}",
        rtt.min_us
    );
    assert!(
        (rtt.max_us - max).abs() < 1.0,
        "max {} vs tshark {max}",
        rtt.max_us
    );
}
