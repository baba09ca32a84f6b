//! Shared by the packet tests: where the corpus is, and tshark as the oracle.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// True when CI demands that tests which need tools or privileges run instead of skipping.
pub fn required() -> bool {
    std::env::var_os("NETSIGHT_REQUIRE_PRIVILEGED_TESTS").is_some()
}

/// Skips (with a printed reason) or, in CI, fails.
pub fn skip(reason: &str) {
    assert!(!required(), "required test cannot run: {reason}");
    eprintln!("SKIPPED: {reason}");
}

/// The shared capture corpus: $NETSIGHT_CORPUS, or shared/corpus/pcaps beside the checkout.
pub fn corpus_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("NETSIGHT_CORPUS") {
        return Some(PathBuf::from(dir));
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        manifest.join("../../../shared/corpus/pcaps"),
        PathBuf::from("/work/shared/corpus/pcaps"),
    ]
    .into_iter()
    .find(|p| p.join("MANIFEST.md").exists())
}

pub fn corpus_files() -> Vec<PathBuf> {
    let Some(dir) = corpus_dir() else {
        return vec![];
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"));
    files.sort();
    files
}

pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Flag names in netsight's JSON order, with the tshark field each one counts.
pub const FLAGS: [(&str, &str); 15] = [
    ("retransmission", "tcp.analysis.retransmission"),
    ("fast_retransmission", "tcp.analysis.fast_retransmission"),
    (
        "spurious_retransmission",
        "tcp.analysis.spurious_retransmission",
    ),
    ("out_of_order", "tcp.analysis.out_of_order"),
    ("lost_segment", "tcp.analysis.lost_segment"),
    ("ack_lost_segment", "tcp.analysis.ack_lost_segment"),
    ("dup_ack", "tcp.analysis.duplicate_ack"),
    ("zero_window", "tcp.analysis.zero_window"),
    ("zero_window_probe", "tcp.analysis.zero_window_probe"),
    (
        "zero_window_probe_ack",
        "tcp.analysis.zero_window_probe_ack",
    ),
    ("window_full", "tcp.analysis.window_full"),
    ("window_update", "tcp.analysis.window_update"),
    ("keep_alive", "tcp.analysis.keep_alive"),
    ("keep_alive_ack", "tcp.analysis.keep_alive_ack"),
    ("rst", "tcp.flags.reset"),
];

/// Per-stream totals as tshark sees them: (protocol, stream) → (first sender, [packets, bytes] A→B, B→A).
pub type StreamTable = BTreeMap<(String, u32), (String, [u64; 4])>;

#[derive(Debug, Default, PartialEq)]
pub struct TsharkView {
    pub expert: BTreeMap<&'static str, u64>,
    pub streams: StreamTable,
}

/// One tshark pass over `file`: expert flag counts and per-stream packet/byte totals.
pub fn tshark_view(file: &Path) -> Option<TsharkView> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "occurrence=l"]);
    for (_, field) in FLAGS {
        cmd.args(["-e", field]);
    }
    // ICMP errors are not counted in the flow they quote (tshark gives the quoted header a
    // stream number): frames with ICMP are left out of the stream table.
    for f in [
        "tcp.stream",
        "udp.stream",
        "ip.src",
        "ipv6.src",
        "tcp.srcport",
        "udp.srcport",
        "frame.len",
        "icmp.type",
        "icmpv6.type",
    ] {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut view = TsharkView::default();
    for (name, _) in FLAGS {
        view.expert.insert(name, 0);
    }
    for line in text.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < FLAGS.len() + 9 {
            continue;
        }
        for (i, (name, _)) in FLAGS.iter().enumerate() {
            let v = cols[i];
            if !v.is_empty() && v != "0" && v != "False" {
                *view.expert.entry(name).or_default() += 1;
            }
        }
        let rest = &cols[FLAGS.len()..];
        if rest.len() > 8 && (!rest[7].is_empty() || !rest[8].is_empty()) {
            continue;
        }
        let (proto, stream, port) = if !rest[0].is_empty() {
            ("tcp", rest[0], rest[4])
        } else if !rest[1].is_empty() {
            ("udp", rest[1], rest[5])
        } else {
            continue;
        };
        let Ok(stream) = stream.parse::<u32>() else {
            continue;
        };
        let ip = if rest[2].is_empty() { rest[3] } else { rest[2] };
        let src = format!("{ip}:{port}");
        let len: u64 = rest[6].parse().unwrap_or(0);
        let entry = view
            .streams
            .entry((proto.to_string(), stream))
            .or_insert_with(|| (src.clone(), [0; 4]));
        let back = usize::from(entry.0 != src) * 2;
        entry.1[back] += 1;
        entry.1[back + 1] += len;
    }
    Some(view)
}

/// The same view from netsight's analysis.
pub fn netsight_view(a: &netsight_packet::Analysis) -> TsharkView {
    let mut view = TsharkView::default();
    for (name, n) in a.expert.entries() {
        view.expert.insert(name, n);
    }
    for f in &a.flows {
        let proto = match f.protocol {
            netsight_packet::flows::Protocol::Tcp => "tcp",
            netsight_packet::flows::Protocol::Udp => "udp",
        };
        let a_ip = match f.a.ip() {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => v6.to_string(),
        };
        view.streams.insert(
            (proto.to_string(), f.stream),
            (
                format!("{a_ip}:{}", f.a.port()),
                [
                    f.a_to_b.packets,
                    f.a_to_b.bytes,
                    f.b_to_a.packets,
                    f.b_to_a.bytes,
                ],
            ),
        );
    }
    view
}
