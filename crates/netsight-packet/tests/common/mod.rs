//! Shared by the packet tests: where the corpus is, and tshark as the oracle.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use etherparse::{PacketBuilder, TcpOptionElement};
use netsight_packet::pcap_write::{Format, PcapWriter};

use netsight_testkit::shared_dir;
#[allow(unused_imports)]
pub use netsight_testkit::{have, required, skip, skip_once};

/// The shared capture corpus: $NETSIGHT_CORPUS, or shared/corpus/pcaps beside the checkout.
pub fn corpus_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("NETSIGHT_CORPUS") {
        return Some(PathBuf::from(dir));
    }
    let dir = shared_dir().join("corpus/pcaps");
    dir.join("MANIFEST.md").exists().then_some(dir)
}

/// Minimal reproductions of disagreements with tshark found on real captures.
pub fn realworld_files() -> Vec<PathBuf> {
    captures_in(&shared_dir().join("corpus/realworld"))
}

pub fn corpus_files() -> Vec<PathBuf> {
    corpus_dir().map(|d| captures_in(&d)).unwrap_or_default()
}

/// The pcap and pcapng files of a folder, sorted.
fn captures_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"));
    files.sort();
    files
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

/// One segment of a synthetic conversation between client 10.0.0.1:40000 and server 10.0.0.2:80.
#[derive(Clone)]
pub struct Seg {
    pub t_us: i64,
    pub from_client: bool,
    pub flags: &'static str,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub len: usize,
    pub options: Vec<TcpOptionElement>,
}

pub fn seg(
    t_us: i64,
    from_client: bool,
    flags: &'static str,
    seq: u32,
    ack: u32,
    window: u16,
    len: usize,
) -> Seg {
    Seg {
        t_us,
        from_client,
        flags,
        seq,
        ack,
        window,
        len,
        options: vec![],
    }
}

pub fn write_conversation(path: &Path, segs: &[Seg]) {
    write_conversation_as(path, segs, 1, |frame| frame.to_vec());
}

/// The conversation under another link layer: `wrap` turns each Ethernet frame
/// into what `linktype` carries.
pub fn write_conversation_as(path: &Path, segs: &[Seg], linktype: u32, wrap: fn(&[u8]) -> Vec<u8>) {
    let file = std::fs::File::create(path).expect("create pcap");
    let mut w = PcapWriter::new(file, Format::Pcap, linktype, 65535, "synthetic").expect("header");
    for s in segs {
        let (src, dst, sport, dport) = if s.from_client {
            ([10, 0, 0, 1], [10, 0, 0, 2], 40000, 80)
        } else {
            ([10, 0, 0, 2], [10, 0, 0, 1], 80, 40000)
        };
        let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .tcp(sport, dport, s.seq, s.window);
        for f in s.flags.chars() {
            b = match f {
                'S' => b.syn(),
                'A' => b.ack(s.ack),
                'F' => b.fin(),
                'R' => b.rst(),
                'P' => b.psh(),
                _ => b,
            };
        }
        if !s.options.is_empty() {
            b = b.options(&s.options).expect("options fit");
        }
        let payload = vec![0x61u8; s.len];
        let mut frame = Vec::new();
        b.write(&mut frame, &payload).expect("build frame");
        let frame = wrap(&frame);
        w.write_frame(
            1_700_000_000_000_000_000 + s.t_us * 1000,
            frame.len() as u32,
            &frame,
        )
        .expect("write frame");
    }
}

/// SYN, SYN/ACK (MSS 1460, SACK, optional window scale) and ACK; client ISN 1000, server 5000.
pub fn handshake(wscale: Option<u8>, server_window: u16) -> Vec<Seg> {
    let mut syn = seg(0, true, "S", 1000, 0, 64240, 0);
    let mut synack = seg(10_000, false, "SA", 5000, 1001, server_window, 0);
    syn.options = vec![
        TcpOptionElement::MaximumSegmentSize(1460),
        TcpOptionElement::SelectiveAcknowledgementPermitted,
    ];
    synack.options = syn.options.clone();
    if let Some(ws) = wscale {
        syn.options.push(TcpOptionElement::WindowScale(ws));
        synack.options.push(TcpOptionElement::WindowScale(ws));
    }
    vec![syn, synack, seg(20_000, true, "A", 1001, 5001, 502, 0)]
}
