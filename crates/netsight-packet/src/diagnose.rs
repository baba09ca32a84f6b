//! Diagnoses from packets: patterns across flows that name a cause, with the evidence.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

use serde::Serialize;

use crate::flows::HalfOpenAttempts;
use crate::flows::{Flow, Protocol};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Diagnosis {
    pub id: &'static str,
    /// "critical", "warning" or "info".
    pub severity: &'static str,
    pub title: String,
    pub evidence: Vec<String>,
    /// The mechanism behind the symptom.
    pub explanation: &'static str,
    pub fix: &'static str,
    /// Stream numbers of the TCP/UDP flows involved (first 20).
    pub streams: Vec<u32>,
}

/// SYNs to one server endpoint before a SYN flood is considered.
const SYN_FLOOD_MIN_ATTEMPTS: usize = 50;
/// Distinct sources below which many failed SYNs look like one broken client, not a flood.
const SYN_FLOOD_MIN_SOURCES: usize = 10;
/// Retransmitted oversize DF segments before a PMTU black hole is called.
const PMTU_MIN_OVERSIZE_RETRANSMISSIONS: u64 = 2;
/// Window-full events by one sender before it is called receive-window limited.
const RWND_MIN_WINDOW_FULL: u64 = 5;
/// Bufferbloat: enough samples, RTT at least tripled and up by 10 ms, rising with bytes in flight.
const BLOAT_MIN_SAMPLES: u64 = 20;
const BLOAT_MIN_RATIO: f64 = 3.0;
const BLOAT_MIN_RISE_US: f64 = 10_000.0;
const BLOAT_MIN_CORRELATION: f64 = 0.5;
/// Retransmitted share of data segments worth a loss warning.
const LOSS_MIN_PERCENT: f64 = 1.0;

/// `folded`: half-open attempts the flow table aggregated (a flood's worth of them).
pub fn diagnose(
    flows: &[Flow],
    folded: &[HalfOpenAttempts],
    unmatched_icmp_errors: u64,
) -> Vec<Diagnosis> {
    let tcp: Vec<&Flow> = flows
        .iter()
        .filter(|f| f.protocol == Protocol::Tcp)
        .collect();
    let mut out = Vec::new();
    let flooded = syn_flood(&tcp, folded, &mut out);
    syn_outcomes(&tcp, &flooded, &mut out);
    pmtu_black_hole(&tcp, &mut out);
    zero_window(&tcp, &mut out);
    window_limited(&tcp, &mut out);
    bufferbloat(&tcp, &mut out);
    loss(&tcp, &mut out);
    if unmatched_icmp_errors > 0 {
        out.push(Diagnosis {
            id: "icmp-errors-for-unseen-flows",
            severity: "info",
            title: format!("{unmatched_icmp_errors} ICMP errors quote flows not in this capture"),
            evidence: vec![format!("{unmatched_icmp_errors} ICMP/ICMPv6 errors")],
            explanation: "ICMP errors (unreachable, packet too big, time exceeded) quote the packet that caused them; these quote traffic the capture did not see, e.g. another interface or a filter.",
            fix: "Capture on the interface that carries the original traffic to tie the errors to flows.",
            streams: vec![],
        });
    }
    out
}

fn streams<'a>(flows: impl IntoIterator<Item = &'a Flow>) -> Vec<u32> {
    flows.into_iter().map(|f| f.stream).take(20).collect()
}

/// Flows that start with a SYN from `a`.
fn opened_by_syn(f: &Flow) -> bool {
    f.a_to_b.syn > 0 && f.handshake.is_some()
}

fn syn_flood(
    tcp: &[&Flow],
    folded: &[HalfOpenAttempts],
    out: &mut Vec<Diagnosis>,
) -> HashSet<SocketAddr> {
    let mut by_server: BTreeMap<SocketAddr, Vec<&Flow>> = BTreeMap::new();
    for f in tcp.iter().filter(|f| opened_by_syn(f)) {
        by_server.entry(f.b).or_default().push(f);
    }
    for server in folded.iter().filter_map(|h| h.server) {
        by_server.entry(server).or_default();
    }
    let mut flooded = HashSet::new();
    for (server, attempts) in by_server {
        let agg = folded.iter().find(|h| h.server == Some(server));
        let completed = attempts
            .iter()
            .filter(|f| f.handshake.is_some_and(|h| h.synack_to_ack_us.is_some()))
            .count();
        let sources: HashSet<_> = attempts.iter().map(|f| f.a.ip()).collect();
        // Folded attempts' sources may overlap the live ones': an upper bound, fine for a threshold.
        let sources = sources.len() + agg.map_or(0, |h| h.sources as usize);
        let syn_only = attempts
            .iter()
            .filter(|f| f.a_to_b.packets == f.a_to_b.syn)
            .count()
            + agg.map_or(0, |h| h.syn_only as usize);
        let synack_unacked = attempts
            .iter()
            .filter(|f| {
                f.handshake
                    .is_some_and(|h| h.syn_to_synack_us.is_some() && h.synack_to_ack_us.is_none())
            })
            .count()
            + agg.map_or(0, |h| h.answered_synack as usize);
        let total = attempts.len() + agg.map_or(0, |h| h.attempts as usize);
        if total < SYN_FLOOD_MIN_ATTEMPTS
            || completed * 5 >= total
            || sources < SYN_FLOOD_MIN_SOURCES
        {
            continue;
        }
        let mut stream_ids = streams(attempts.iter().copied());
        if let Some(h) = agg {
            stream_ids.extend(h.streams.iter().copied());
            stream_ids.truncate(20);
        }
        flooded.insert(server);
        out.push(Diagnosis {
            id: "syn-flood",
            severity: "critical",
            title: format!("SYN flood against {server}: {total} SYNs, {completed} handshakes completed"),
            evidence: vec![
                format!("{total} connection attempts from {sources} distinct source addresses"),
                format!("{syn_only} sources sent nothing but SYN (spoofed-looking)"),
                format!("{synack_unacked} SYN/ACKs never acknowledged; {completed} handshakes completed"),
            ],
            explanation: "Each SYN makes the server keep a half-open request (SYN_RECV) and retransmit its SYN/ACK; sources that never answer the SYN/ACK are typically spoofed. When the SYN queue fills, real clients' SYNs are dropped unless SYN cookies answer them statelessly.",
            fix: "Keep net.ipv4.tcp_syncookies=1, raise net.ipv4.tcp_max_syn_backlog and the listen backlog, rate-limit SYNs upstream (iptables hashlimit / synproxy).",
            streams: stream_ids,
        });
    }
    flooded
}

fn syn_outcomes(tcp: &[&Flow], flooded: &HashSet<SocketAddr>, out: &mut Vec<Diagnosis>) {
    // (server, answer) → flows
    let mut groups: BTreeMap<(SocketAddr, &'static str), Vec<&Flow>> = BTreeMap::new();
    for f in tcp
        .iter()
        .filter(|f| opened_by_syn(f) && !flooded.contains(&f.b))
    {
        let Some(h) = f.handshake else { continue };
        // "none" with packets from the server is a capture that missed the answer, not silence.
        if h.answer == "synack" || (h.answer == "none" && f.b_to_a.packets > 0) {
            continue;
        }
        groups.entry((f.b, h.answer)).or_default().push(f);
    }
    for ((server, answer), flows) in groups {
        let attempts = flows.len();
        let syns: u64 = flows.iter().map(|f| f.a_to_b.syn).sum();
        let d = match answer {
            "none" => Diagnosis {
                id: "syn-unanswered",
                severity: "critical",
                title: format!("SYNs to {server} unanswered: {attempts} connection attempts, {syns} SYNs"),
                evidence: vec![
                    format!("{attempts} connections sent SYN and got no reply at all ({} SYN retransmissions)", syns - attempts as u64),
                    "no SYN/ACK, RST or ICMP error came back".to_string(),
                ],
                explanation: "Silence after a SYN means the packet or its answer was dropped: a firewall DROP rule, a host that is down, or a routing black hole. Clients wait out the SYN retransmission timeouts (1 s, 2 s, 4 s …) before failing.",
                fix: "Check firewall rules on the path and on the server (iptables -L -v -n: DROP counters rising), that the server is up and routes back. Use REJECT instead of DROP for ports that should fail fast.",
                streams: streams(flows.iter().copied()),
            },
            "rst" => Diagnosis {
                id: "syn-refused",
                severity: "warning",
                title: format!("Connections to {server} refused with RST: {attempts} attempts"),
                evidence: vec![format!("{attempts} SYNs answered by RST (connection refused)")],
                explanation: "A RST in answer to a SYN means nothing listens on that port, or a firewall REJECT --reject-with tcp-reset answered for it. The client fails at once (ECONNREFUSED).",
                fix: "Start the service or fix the port the client uses; if a firewall rejects on purpose, this is the fast-failing behaviour you want.",
                streams: streams(flows.iter().copied()),
            },
            _ => Diagnosis {
                id: "syn-rejected-icmp",
                severity: "warning",
                title: format!("Connections to {server} rejected with ICMP unreachable: {attempts} attempts"),
                evidence: vec![format!("{attempts} SYNs answered by ICMP destination unreachable")],
                explanation: "An ICMP unreachable in answer to a SYN is what iptables REJECT sends by default (icmp-port-unreachable), or a router with no route. The client fails at once (EHOSTUNREACH / ECONNREFUSED).",
                fix: "Look for REJECT rules matching this port (iptables -L -v -n) or missing routes on the path.",
                streams: streams(flows.iter().copied()),
            },
        };
        out.push(d);
    }
}

fn pmtu_black_hole(tcp: &[&Flow], out: &mut Vec<Diagnosis>) {
    let mut hits = Vec::new();
    let mut evidence = Vec::new();
    for f in tcp {
        for dir in 0..2 {
            let d = f.direction(dir);
            if d.oversize_retransmissions >= PMTU_MIN_OVERSIZE_RETRANSMISSIONS
                && d.max_segment_bytes > d.max_acked_segment_bytes
                && f.icmp_too_big == 0
            {
                hits.push(*f);
                evidence.push(format!(
                    "{} → {}: {} retransmissions of DF segments up to {} bytes never acknowledged; largest acknowledged segment {} bytes; no ICMP fragmentation-needed seen",
                    f.sender(dir),
                    f.sender(dir ^ 1),
                    d.oversize_retransmissions,
                    d.max_segment_bytes,
                    d.max_acked_segment_bytes
                ));
            }
        }
    }
    if hits.is_empty() {
        return;
    }
    evidence.truncate(10);
    out.push(Diagnosis {
        id: "pmtu-black-hole",
        severity: "critical",
        title: format!("Path MTU black hole: full-size segments vanish on {} flows, small ones pass", hits.len()),
        evidence,
        explanation: "A link on the path has a smaller MTU than the endpoints assume. Segments with Don't Fragment set that are too big are dropped, and the router's ICMP 'fragmentation needed' (ICMPv6 'packet too big') never reaches the sender — filtered or not sent — so the sender keeps retransmitting the same size. Handshakes and small requests work; bulk transfers hang.",
        fix: "Let ICMP type 3 code 4 / ICMPv6 type 2 through firewalls; clamp MSS at the tunnel or router (iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu); as a host-side workaround enable net.ipv4.tcp_mtu_probing=1 or lower the interface MTU.",
        streams: streams(hits),
    });
}

fn zero_window(tcp: &[&Flow], out: &mut Vec<Diagnosis>) {
    for f in tcp {
        for dir in 0..2 {
            let d = f.direction(dir);
            if d.expert.zero_window == 0 {
                continue;
            }
            out.push(Diagnosis {
                id: "zero-window-stall",
                severity: "warning",
                title: format!(
                    "{} advertised a zero window {} times; {} stalled {:.1} ms",
                    f.sender(dir),
                    d.expert.zero_window,
                    f.sender(dir ^ 1),
                    d.zero_window_stall_ns as f64 / 1e6
                ),
                evidence: vec![
                    format!("zero_window {} (stream {})", d.expert.zero_window, f.stream),
                    format!("zero_window_probe {} from {}", f.direction(dir ^ 1).expert.zero_window_probe, f.sender(dir ^ 1)),
                    format!("time spent at zero window {:.1} ms", d.zero_window_stall_ns as f64 / 1e6),
                ],
                explanation: "The receiver's socket buffer is full because the application does not read fast enough (or its rcvbuf is tiny): it advertises a zero window and the sender may only send 1-byte probes until the window reopens.",
                fix: "Find the slow reader (netsight sockets: Recv-Q stays high on the receiver); make it read faster, or raise its SO_RCVBUF / net.ipv4.tcp_rmem if the buffer is artificially small.",
                streams: vec![f.stream],
            });
        }
    }
}

fn window_limited(tcp: &[&Flow], out: &mut Vec<Diagnosis>) {
    for f in tcp {
        for dir in 0..2 {
            let d = f.direction(dir);
            if d.expert.window_full < RWND_MIN_WINDOW_FULL {
                continue;
            }
            out.push(Diagnosis {
                id: "receive-window-limited",
                severity: "warning",
                title: format!(
                    "{} → {} is receive-window limited: the window was full {} times",
                    f.sender(dir),
                    f.sender(dir ^ 1),
                    d.expert.window_full
                ),
                evidence: vec![
                    format!("window_full {} (stream {})", d.expert.window_full, f.stream),
                    match f.direction(dir ^ 1).window_scale {
                        Some(shift) => format!("receiver window scale {shift} (x{})", 1u32 << shift.min(14)),
                        None => "receiver window scale not seen (no SYN in the capture, or not negotiated)".to_string(),
                    },
                ],
                explanation: "The sender had data and room in its congestion window but reached the edge of the receiver's advertised window; throughput is capped at window / RTT. Small rcvbuf, a disabled window scale option or a slow reader cause it.",
                fix: "Raise the receiver's buffer (net.ipv4.tcp_rmem max, SO_RCVBUF) to at least the bandwidth-delay product (netsight tune bdp), keep net.ipv4.tcp_window_scaling=1.",
                streams: vec![f.stream],
            });
        }
    }
}

fn bufferbloat(tcp: &[&Flow], out: &mut Vec<Diagnosis>) {
    for f in tcp {
        let r = &f.rtt;
        let Some(corr) = r.rtt_inflight_correlation else {
            continue;
        };
        if r.samples < BLOAT_MIN_SAMPLES
            || r.max_us < BLOAT_MIN_RATIO * r.min_us
            || r.max_us - r.min_us < BLOAT_MIN_RISE_US
            || corr < BLOAT_MIN_CORRELATION
        {
            continue;
        }
        out.push(Diagnosis {
            id: "bufferbloat",
            severity: "warning",
            title: format!(
                "RTT rises with the queue on stream {}: {:.1} ms → {:.1} ms",
                f.stream,
                r.min_us / 1000.0,
                r.max_us / 1000.0
            ),
            evidence: vec![
                format!("{} RTT samples: min {:.1} ms, avg {:.1} ms, max {:.1} ms", r.samples, r.min_us / 1000.0, r.avg_us / 1000.0, r.max_us / 1000.0),
                format!("correlation of RTT with bytes in flight {corr:.2}"),
            ],
            explanation: "A large buffer at the bottleneck (qdisc, NIC ring, a router) fills up; loss-based congestion control keeps it full, so every packet waits behind the queue and latency grows with the data in flight instead of the throughput.",
            fix: "Use an AQM qdisc at the bottleneck (tc qdisc replace dev IFACE root fq_codel, or cake with a bandwidth), shrink oversize buffers (tbf/pfifo limits, NIC rings), or use BBR (net.ipv4.tcp_congestion_control=bbr with fq).",
            streams: vec![f.stream],
        });
    }
}

fn loss(tcp: &[&Flow], out: &mut Vec<Diagnosis>) {
    let retrans: u64 = tcp.iter().map(|f| f.expert.retransmission).sum();
    let data_segments: u64 = tcp.iter().map(|f| f.total_packets()).sum();
    if retrans == 0 || data_segments == 0 {
        return;
    }
    let percent = retrans as f64 * 100.0 / data_segments as f64;
    if percent < LOSS_MIN_PERCENT {
        return;
    }
    let mut worst: Vec<&Flow> = tcp
        .iter()
        .copied()
        .filter(|f| f.expert.retransmission > 0)
        .collect();
    worst.sort_by_key(|f| std::cmp::Reverse(f.expert.retransmission));
    let fast: u64 = tcp.iter().map(|f| f.expert.fast_retransmission).sum();
    let dup: u64 = tcp.iter().map(|f| f.expert.dup_ack).sum();
    out.push(Diagnosis {
        id: "tcp-retransmissions",
        severity: if percent >= 5.0 { "critical" } else { "warning" },
        title: format!("{retrans} TCP retransmissions ({percent:.1}% of TCP packets)"),
        evidence: vec![
            format!("retransmission {retrans}, of which fast {fast}; dup_ack {dup}"),
            format!("most: stream {} with {}", worst[0].stream, worst[0].expert.retransmission),
        ],
        explanation: "Retransmissions mean segments (or their ACKs) were lost: congestion drops in a queue, a lossy link, or a policer. Fast retransmissions follow duplicate ACKs (loss detected within an RTT); plain ones waited for the retransmission timeout, which stalls the flow.",
        fix: "Find where packets are dropped: netsight doctor (qdisc, NIC, softnet drops), the switch/router counters on the path; reduce bursts (pacing with fq) or provision the bottleneck.",
        streams: streams(worst),
    });
}
