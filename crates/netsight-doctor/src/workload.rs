//! Workload characterization: what the host is doing, independent of problems.

use netsight_kernel::delta::Rates;
use netsight_kernel::sockets::{Socket, TcpState};
use netsight_kernel::Snapshot;

use netsight_report::{InterfaceLoad, SocketLoad, Workload};

/// How many sockets the top lists keep.
pub const TOP_SOCKETS: usize = 5;

pub fn summarize(cur: &Snapshot, rates: &Rates) -> Workload {
    let interfaces = rates
        .links
        .iter()
        .map(|l| {
            let s = &l.stats;
            let packets = s.rx_packets + s.tx_packets;
            InterfaceLoad {
                name: l.name.clone(),
                rx_mbit_per_s: s.rx_bytes * 8.0 / 1e6,
                tx_mbit_per_s: s.tx_bytes * 8.0 / 1e6,
                rx_packets_per_s: s.rx_packets,
                tx_packets_per_s: s.tx_packets,
                avg_packet_bytes: if packets > 0.0 {
                    (s.rx_bytes + s.tx_bytes) / packets
                } else {
                    0.0
                },
                utilization_percent: l
                    .speed_mbps
                    .map(|speed| s.rx_bytes.max(s.tx_bytes) * 8.0 * 100.0 / (speed as f64 * 1e6)),
            }
        })
        .collect();
    let rate = |g: &str, n: &str| rates.mib_rate(g, n);

    let (mut by_bytes, mut by_retrans) = (Vec::new(), Vec::new());
    if let Some(table) = &cur.sockets {
        let tcp: Vec<&Socket> = table
            .sockets
            .iter()
            .filter(|s| s.tcp_info.is_some() && s.state != TcpState::Listen)
            .collect();
        by_bytes = top(&tcp, |s| {
            s.tcp_info.map_or(0, |t| t.bytes_acked + t.bytes_received)
        });
        by_retrans = top(&tcp, |s| {
            s.tcp_info.map_or(0, |t| u64::from(t.total_retrans))
        });
    }

    Workload {
        interval_s: rates.interval_s,
        interfaces,
        tcp_connections_per_s: rate("Tcp", "ActiveOpens") + rate("Tcp", "PassiveOpens"),
        tcp_active_opens_per_s: rate("Tcp", "ActiveOpens"),
        tcp_passive_opens_per_s: rate("Tcp", "PassiveOpens"),
        tcp_segments_per_s: rate("Tcp", "InSegs") + rate("Tcp", "OutSegs"),
        udp_datagrams_per_s: rate("Udp", "InDatagrams")
            + rate("Udp", "OutDatagrams")
            + rate("Udp6", "InDatagrams")
            + rate("Udp6", "OutDatagrams"),
        icmp_messages_per_s: rate("Icmp", "InMsgs") + rate("Icmp", "OutMsgs"),
        tcp_established: cur.counter("Tcp", "CurrEstab"),
        top_sockets_by_bytes: by_bytes,
        top_sockets_by_retrans: by_retrans,
    }
}

fn top(sockets: &[&Socket], key: impl Fn(&Socket) -> u64) -> Vec<SocketLoad> {
    // (busiest first, then table order): what a stable sort of all would give,
    // found without sorting tens of thousands for a handful.
    let rank = |r: &(u64, usize, &Socket)| (std::cmp::Reverse(r.0), r.1);
    let mut ranked: Vec<(u64, usize, &Socket)> = sockets
        .iter()
        .enumerate()
        .map(|(i, s)| (key(s), i, *s))
        .filter(|(k, _, _)| *k > 0)
        .collect();
    if ranked.len() > TOP_SOCKETS {
        ranked.select_nth_unstable_by_key(TOP_SOCKETS, rank);
        ranked.truncate(TOP_SOCKETS);
    }
    ranked.sort_unstable_by_key(rank);
    ranked
        .into_iter()
        .map(|(_, _, s)| {
            let t = s.tcp_info.unwrap_or_default();
            SocketLoad {
                local: format!("{}:{}", s.local_addr, s.local_port),
                peer: format!("{}:{}", s.remote_addr, s.remote_port),
                state: s.state.as_str().to_string(),
                bytes: t.bytes_acked + t.bytes_received,
                total_retrans: t.total_retrans,
                rtt_ms: f64::from(t.rtt_us) / 1000.0,
                // Lifetime share of busy time spent waiting on the peer's window.
                rwnd_limited_percent: (t.busy_time_us > 0)
                    .then(|| t.rwnd_limited_us as f64 * 100.0 / t.busy_time_us as f64),
                process: s.process.as_ref().map(|p| format!("{}/{}", p.comm, p.pid)),
            }
        })
        .collect()
}
