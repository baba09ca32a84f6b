//! `netsight sockets --summary`: where sockets pile up and which queues are full.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Protocol, SocketTable, TcpState};
use crate::procfs::sockstat::Sockstat;
use crate::sysctl;

/// How many rows the per-peer and per-process lists keep.
pub const TOP_N: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerCount {
    pub peer: IpAddr,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationCount {
    pub peer: IpAddr,
    pub port: u16,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessCount {
    /// None when the owner is unknown (no privilege, or already gone).
    pub pid: Option<u32>,
    pub comm: Option<String>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenerFill {
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub pid: Option<u32>,
    pub comm: Option<String>,
    /// Connections completed but not yet accept()ed by the application.
    pub accept_queue: u32,
    /// The listen() backlog, capped by net.core.somaxconn.
    pub backlog: u32,
    pub fill_percent: f64,
    /// Half-open connections (SYN-RECV) to this port: the SYN queue.
    pub syn_recv: u64,
}

/// Busy time below which a connection's limited-by shares are too thin to judge.
pub const WINDOW_LIMITED_MIN_BUSY_US: u64 = 500_000;
/// The share of its busy time a connection must have spent on the peer's window.
pub const WINDOW_LIMITED_PERCENT: f64 = 50.0;

/// A TCP connection that spent at least half its busy time unable to send
/// because the peer's receive window was full (tcp_info's rwnd_limited over
/// busy_time; both cover the socket's life, so `last_data_sent_ms` says
/// whether it still sends).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowLimited {
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub remote_addr: IpAddr,
    pub remote_port: u16,
    pub rwnd_limited_percent: f64,
    pub last_data_sent_ms: u32,
    /// The peer's advertised window, bytes.
    pub snd_wnd: u32,
    pub rtt_us: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketSummary {
    /// "tcp4"/"tcp6"/"udp4"/"udp6" → state → count.
    pub by_state: BTreeMap<String, BTreeMap<String, u64>>,
    pub time_wait_by_peer: Vec<PeerCount>,
    /// TIME-WAIT sockets holding an ephemeral port (local port within
    /// ip_local_port_range: this host connected out), by destination address and
    /// port, most first. A destination runs out of ports when its count reaches the
    /// range; TIME-WAIT on a listener's port holds no ephemeral port at all.
    #[serde(default)]
    pub ephemeral_time_wait_by_destination: Vec<DestinationCount>,
    /// CLOSE-WAIT: the peer closed, our application has not: a leak suspect list.
    pub close_wait_by_process: Vec<ProcessCount>,
    pub listeners: Vec<ListenerFill>,
    /// Most limited first (all of them: whether one still sends is asked later).
    #[serde(default)]
    pub window_limited: Vec<WindowLimited>,
    pub tcp_max_syn_backlog: Option<i64>,
    pub orphans: Option<i64>,
    pub tcp_max_orphans: Option<i64>,
    pub time_wait_total: Option<i64>,
    pub tcp_max_tw_buckets: Option<i64>,
    /// TCP memory in pages now, and net.ipv4.tcp_mem [min, pressure, max] in pages.
    pub tcp_mem_pages: Option<i64>,
    pub tcp_mem_limits_pages: Option<[i64; 3]>,
    pub unix: BTreeMap<String, u64>,
}

pub fn summarize(
    table: &SocketTable,
    sockstat: &Sockstat,
    sysctls: &BTreeMap<String, String>,
) -> SocketSummary {
    // Counted under static keys, named once at the end: two allocations per
    // socket were most of a summary of ten thousand.
    let mut state_counts: BTreeMap<(&'static str, u8, TcpState), u64> = BTreeMap::new();
    let mut tw_peers: HashMap<IpAddr, u64> = HashMap::new();
    let mut tw_destinations: HashMap<(IpAddr, u16), u64> = HashMap::new();
    let ephemeral = sysctls
        .get("net.ipv4.ip_local_port_range")
        .map(|v| sysctl::numbers(v))
        .and_then(|n| <[i64; 2]>::try_from(n).ok());
    let is_ephemeral =
        |port: u16| ephemeral.is_some_and(|[lo, hi]| (lo..=hi).contains(&i64::from(port)));
    let mut close_wait: HashMap<Option<u32>, (Option<String>, u64)> = HashMap::new();
    let mut syn_recv_by_port: HashMap<u16, u64> = HashMap::new();
    let mut window_limited: Vec<WindowLimited> = Vec::new();
    for s in &table.sockets {
        let proto = match s.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        *state_counts
            .entry((proto, s.ip_version, s.state))
            .or_insert(0) += 1;
        if s.protocol != Protocol::Tcp {
            continue;
        }
        if let Some(t) = s
            .tcp_info
            .as_ref()
            .filter(|t| t.busy_time_us >= WINDOW_LIMITED_MIN_BUSY_US)
        {
            let percent = t.rwnd_limited_us as f64 * 100.0 / t.busy_time_us as f64;
            if percent >= WINDOW_LIMITED_PERCENT {
                window_limited.push(WindowLimited {
                    local_addr: s.local_addr,
                    local_port: s.local_port,
                    remote_addr: s.remote_addr,
                    remote_port: s.remote_port,
                    rwnd_limited_percent: percent,
                    last_data_sent_ms: t.last_data_sent_ms,
                    snd_wnd: t.snd_wnd,
                    rtt_us: t.rtt_us,
                });
            }
        }
        match s.state {
            TcpState::TimeWait => {
                *tw_peers.entry(s.remote_addr).or_insert(0) += 1;
                if is_ephemeral(s.local_port) {
                    *tw_destinations
                        .entry((s.remote_addr, s.remote_port))
                        .or_insert(0) += 1;
                }
            }
            TcpState::CloseWait => {
                let entry = close_wait
                    .entry(s.process.as_ref().map(|p| p.pid))
                    .or_insert_with(|| (s.process.as_ref().map(|p| p.comm.to_string()), 0));
                entry.1 += 1;
            }
            TcpState::SynRecv | TcpState::NewSynRecv => {
                *syn_recv_by_port.entry(s.local_port).or_insert(0) += 1
            }
            _ => {}
        }
    }

    let mut by_state: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for ((proto, version, state), count) in state_counts {
        *by_state
            .entry(format!("{proto}{version}"))
            .or_default()
            .entry(state.as_str().to_string())
            .or_insert(0) += count;
    }
    let mut time_wait_by_peer: Vec<PeerCount> = tw_peers
        .into_iter()
        .map(|(peer, count)| PeerCount { peer, count })
        .collect();
    time_wait_by_peer.sort_by(|a, b| b.count.cmp(&a.count).then(a.peer.cmp(&b.peer)));
    time_wait_by_peer.truncate(TOP_N);

    let mut ephemeral_time_wait_by_destination: Vec<DestinationCount> = tw_destinations
        .into_iter()
        .map(|((peer, port), count)| DestinationCount { peer, port, count })
        .collect();
    ephemeral_time_wait_by_destination.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then((a.peer, a.port).cmp(&(b.peer, b.port)))
    });
    ephemeral_time_wait_by_destination.truncate(TOP_N);

    let mut close_wait_by_process: Vec<ProcessCount> = close_wait
        .into_iter()
        .map(|(pid, (comm, count))| ProcessCount { pid, comm, count })
        .collect();
    close_wait_by_process.sort_by(|a, b| b.count.cmp(&a.count).then(a.pid.cmp(&b.pid)));
    close_wait_by_process.truncate(TOP_N);

    let mut listeners: Vec<ListenerFill> = table
        .sockets
        .iter()
        .filter(|s| s.protocol == Protocol::Tcp && s.state == TcpState::Listen)
        .map(|s| ListenerFill {
            local_addr: s.local_addr,
            local_port: s.local_port,
            pid: s.process.as_ref().map(|p| p.pid),
            comm: s.process.as_ref().map(|p| p.comm.to_string()),
            accept_queue: s.recv_q,
            backlog: s.send_q,
            fill_percent: if s.send_q > 0 {
                f64::from(s.recv_q) * 100.0 / f64::from(s.send_q)
            } else {
                0.0
            },
            syn_recv: syn_recv_by_port.get(&s.local_port).copied().unwrap_or(0),
        })
        .collect();
    listeners.sort_by(|a, b| {
        b.fill_percent
            .total_cmp(&a.fill_percent)
            .then(a.local_port.cmp(&b.local_port))
    });

    window_limited.sort_by(|a, b| {
        b.rwnd_limited_percent
            .total_cmp(&a.rwnd_limited_percent)
            .then_with(|| {
                (a.local_addr, a.local_port, a.remote_addr, a.remote_port).cmp(&(
                    b.local_addr,
                    b.local_port,
                    b.remote_addr,
                    b.remote_port,
                ))
            })
    });

    let stat = |group: &str, name: &str| sockstat.get(group).and_then(|g| g.get(name)).copied();
    let sysctl_num = |name: &str| {
        sysctls
            .get(name)
            .and_then(|v| sysctl::numbers(v).first().copied())
    };
    SocketSummary {
        by_state,
        time_wait_by_peer,
        ephemeral_time_wait_by_destination,
        close_wait_by_process,
        listeners,
        window_limited,
        tcp_max_syn_backlog: sysctl_num("net.ipv4.tcp_max_syn_backlog"),
        orphans: stat("TCP", "orphan"),
        tcp_max_orphans: sysctl_num("net.ipv4.tcp_max_orphans"),
        time_wait_total: stat("TCP", "tw"),
        tcp_max_tw_buckets: sysctl_num("net.ipv4.tcp_max_tw_buckets"),
        tcp_mem_pages: stat("TCP", "mem"),
        tcp_mem_limits_pages: sysctls
            .get("net.ipv4.tcp_mem")
            .map(|v| sysctl::numbers(v))
            .and_then(|n| <[i64; 3]>::try_from(n).ok()),
        unix: table.unix_counts.clone(),
    }
}
