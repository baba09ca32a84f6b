//! `netsight trace states` (every TCP state change, with time in the previous
//! state) and `netsight trace life` (every connection's lifetime and bytes, like
//! tcplife), both from sock:inet_sock_set_state.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use aya::include_bytes_aligned;
use serde::Serialize;

use crate::loader::Global;
use crate::{loader, EndpointFilter, NsCount, Tally, TraceError};

const PROGRAM: (&str, &str) = ("inet_sock_set_state", "inet_sock_set_state");

static OBJECT: &[u8] = include_bytes_aligned!("../bpf/sockstate.bpf.o");
/// struct state_event in bpf/sockstate.bpf.c.
const EVENT_LEN: usize = 104;

const TCP_ESTABLISHED: u8 = 1;
const TCP_SYN_SENT: u8 = 2;
const TCP_SYN_RECV: u8 = 3;
const TCP_CLOSE: u8 = 7;

/// A tracepoint's state number as a name (include/net/tcp_states.h).
pub fn state_name(v: u8) -> &'static str {
    netsight_kernel::sockets::TcpState::from_kernel(v).kernel_name()
}

/// One decoded state change.
#[derive(Debug, Clone, Serialize)]
pub struct StateChange {
    /// The socket's kernel address, an id for one connection within a run.
    #[serde(skip)]
    pub sk: u64,
    #[serde(skip)]
    pub ts_ns: u64,
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub remote_addr: IpAddr,
    pub remote_port: u16,
    pub old_state: &'static str,
    pub new_state: &'static str,
    #[serde(skip)]
    new: u8,
    /// Milliseconds spent in the old state (None when the tracer did not see it begin).
    pub in_old_state_ms: Option<f64>,
    /// The task running when the state changed (0 in softirq context).
    pub pid: u32,
    pub comm: String,
    /// The network namespace's inode.
    pub netns: u32,
    #[serde(skip)]
    bytes_acked: u64,
    #[serde(skip)]
    bytes_received: u64,
}

pub fn decode(raw: &[u8]) -> Option<StateChange> {
    let raw = raw.get(..EVENT_LEN)?;
    let u64_at = |at: usize| u64::from_ne_bytes(raw[at..at + 8].try_into().unwrap_or([0; 8]));
    let u16_at = |at: usize| u16::from_ne_bytes([raw[at], raw[at + 1]]);
    let family = raw[44];
    let addr = |at: usize| -> IpAddr {
        if family == 2 {
            IpAddr::V4(Ipv4Addr::new(
                raw[at],
                raw[at + 1],
                raw[at + 2],
                raw[at + 3],
            ))
        } else {
            let mut a = [0u8; 16];
            a.copy_from_slice(&raw[at..at + 16]);
            IpAddr::V6(Ipv6Addr::from(a))
        }
    };
    let comm = &raw[84..100];
    let end = comm.iter().position(|&b| b == 0).unwrap_or(16);
    let in_prev = u64_at(16);
    Some(StateChange {
        sk: u64_at(0),
        ts_ns: u64_at(8),
        in_old_state_ms: (in_prev > 0).then(|| in_prev as f64 / 1e6),
        bytes_acked: u64_at(24),
        bytes_received: u64_at(32),
        pid: u32::from_ne_bytes([raw[40], raw[41], raw[42], raw[43]]),
        new: raw[46],
        old_state: state_name(raw[45]),
        new_state: state_name(raw[46]),
        local_port: u16_at(48),
        remote_port: u16_at(50),
        local_addr: addr(52),
        remote_addr: addr(68),
        comm: String::from_utf8_lossy(&comm[..end]).into_owned(),
        netns: u32::from_ne_bytes([raw[100], raw[101], raw[102], raw[103]]),
    })
}

/// The task of a state change, None in softirq (pid 0), for --pid.
fn task(pid: u32) -> Option<u32> {
    (pid != 0).then_some(pid)
}

#[derive(Debug, Clone, Serialize)]
pub struct StatesSummary {
    pub duration_s: f64,
    /// Events lost because the ring buffer was full (0 means a complete trace).
    pub lost_events: u64,
    pub changes: u64,
    /// "OLD -> NEW" transitions by count.
    pub transitions: Vec<NsCount>,
}

/// Only the changes `filter` admits are counted and passed on.
pub fn trace_states(
    duration: Duration,
    filter: &EndpointFilter,
    mut on_change: impl FnMut(&StateChange),
) -> Result<StatesSummary, TraceError> {
    let mut attached = loader::attach(OBJECT, &[PROGRAM], &[])?;
    let mut changes = 0u64;
    let mut transitions = Tally::default();
    let duration_s = loader::poll(&mut attached, duration, |raw| {
        let Some(c) = decode(raw) else { return };
        if !filter.matches(
            (c.local_addr, c.local_port),
            (c.remote_addr, c.remote_port),
            task(c.pid),
        ) {
            return;
        }
        changes += 1;
        transitions.add(c.netns, format!("{} -> {}", c.old_state, c.new_state));
        on_change(&c);
    });
    Ok(StatesSummary {
        duration_s,
        lost_events: attached.lost_events(),
        changes,
        transitions: transitions.ranked(usize::MAX),
    })
}

/// A finished connection, as tcplife prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Lifetime {
    pub pid: u32,
    pub comm: String,
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub remote_addr: IpAddr,
    pub remote_port: u16,
    /// tcp_info's bytes_acked and bytes_received at close, as tcplife reports them
    /// (sequence space: the SYN and FIN count one byte each).
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    pub duration_ms: f64,
    /// "active" (we connected) or "passive" (we accepted).
    pub opened: &'static str,
    /// The network namespace's inode.
    pub netns: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct LifeSummary {
    pub duration_s: f64,
    /// Events lost because the ring buffer was full (0 means a complete trace).
    pub lost_events: u64,
    pub connections: u64,
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    /// Connections ended, per namespace.
    pub by_namespace: Vec<NsCount>,
}

struct Birth {
    ts_ns: u64,
    pid: u32,
    comm: String,
    active: bool,
    /// The last complete 4-tuple seen: the local port is 0 at SYN-SENT (not bound
    /// yet) and again at CLOSE (already released).
    tuple: Option<(IpAddr, u16, IpAddr, u16)>,
}

fn tuple_of(c: &StateChange) -> Option<(IpAddr, u16, IpAddr, u16)> {
    (c.local_port != 0 && c.remote_port != 0).then_some((
        c.local_addr,
        c.local_port,
        c.remote_addr,
        c.remote_port,
    ))
}

/// Connections are born when a socket first enters SYN-SENT, SYN-RECV or
/// ESTABLISHED and die when it reaches CLOSE; ones already open when tracing
/// started are not reported (their birth was not seen).
/// Only the connections `filter` admits are counted and passed on.
pub fn trace_life(
    duration: Duration,
    filter: &EndpointFilter,
    mut on_life: impl FnMut(&Lifetime),
) -> Result<LifeSummary, TraceError> {
    let mut attached = loader::attach(OBJECT, &[PROGRAM], &[("life_only", Global::U8(1))])?;
    let mut by_namespace = Tally::default();
    let mut alive: HashMap<u64, Birth> = HashMap::new();
    let mut summary = LifeSummary {
        duration_s: 0.0,
        lost_events: 0,
        connections: 0,
        tx_bytes: 0,
        rx_bytes: 0,
        by_namespace: Vec::new(),
    };
    summary.duration_s = loader::poll(&mut attached, duration, |raw| {
        let Some(c) = decode(raw) else { return };
        if matches!(c.new, TCP_SYN_SENT | TCP_SYN_RECV | TCP_ESTABLISHED)
            && !alive.contains_key(&c.sk)
        {
            alive.insert(
                c.sk,
                Birth {
                    ts_ns: c.ts_ns,
                    pid: c.pid,
                    comm: c.comm.clone(),
                    active: c.new == TCP_SYN_SENT,
                    tuple: tuple_of(&c),
                },
            );
            return;
        }
        if let Some(birth) = alive.get_mut(&c.sk) {
            // Passive births happen in softirq (pid 0): keep the first real task seen.
            if birth.pid == 0 && c.pid != 0 {
                birth.pid = c.pid;
                birth.comm = c.comm.clone();
            }
            if let Some(t) = tuple_of(&c) {
                birth.tuple = Some(t);
            }
        }
        if c.new != TCP_CLOSE {
            return;
        }
        let Some(birth) = alive.remove(&c.sk) else {
            return;
        };
        let (local_addr, local_port, remote_addr, remote_port) =
            birth
                .tuple
                .unwrap_or((c.local_addr, c.local_port, c.remote_addr, c.remote_port));
        let life = Lifetime {
            pid: birth.pid,
            comm: birth.comm,
            local_addr,
            local_port,
            remote_addr,
            remote_port,
            tx_bytes: c.bytes_acked,
            rx_bytes: c.bytes_received,
            duration_ms: c.ts_ns.saturating_sub(birth.ts_ns) as f64 / 1e6,
            opened: if birth.active { "active" } else { "passive" },
            netns: c.netns,
        };
        if !filter.matches(
            (life.local_addr, life.local_port),
            (life.remote_addr, life.remote_port),
            task(life.pid),
        ) {
            return;
        }
        by_namespace.add(life.netns, "connections");
        summary.connections += 1;
        summary.tx_bytes += life.tx_bytes;
        summary.rx_bytes += life.rx_bytes;
        on_life(&life);
    });
    summary.lost_events = attached.lost_events();
    summary.by_namespace = by_namespace.ranked(usize::MAX);
    Ok(summary)
}

/// A finished handshake: connect() (SYN-SENT → ESTAB/CLOSE) or an accepted
/// connection (SYN-RECV → ESTAB/CLOSE), with its latency.
#[derive(Debug, Clone, Serialize)]
pub struct Handshake {
    pub pid: u32,
    pub comm: String,
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub remote_addr: IpAddr,
    pub remote_port: u16,
    /// SYN sent (or received) to established; None when its start was not seen.
    pub latency_ms: Option<f64>,
    /// false when the handshake ended in CLOSE (refused, timed out, reset).
    pub established: bool,
    /// The network namespace's inode.
    pub netns: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct HandshakeSummary {
    pub duration_s: f64,
    /// Events lost because the ring buffer was full (0 means a complete trace).
    pub lost_events: u64,
    pub established: u64,
    pub failed: u64,
    /// Handshakes established and failed, per namespace.
    pub by_namespace: Vec<NsCount>,
    /// Latency percentiles of established handshakes, ms.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// Which side of the handshake to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// connect(): SYN-SENT.
    Connect,
    /// accepted connections: SYN-RECV.
    Accept,
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).copied()
}

/// Only the handshakes `filter` admits are counted and passed on.
pub fn trace_handshakes(
    side: Side,
    duration: Duration,
    filter: &EndpointFilter,
    mut on_handshake: impl FnMut(&Handshake),
) -> Result<HandshakeSummary, TraceError> {
    let from = match side {
        Side::Connect => TCP_SYN_SENT,
        Side::Accept => TCP_SYN_RECV,
    };
    let mut attached = loader::attach(OBJECT, &[PROGRAM], &[])?;
    let (mut latencies, mut failed) = (Vec::new(), 0u64);
    let mut by_namespace = Tally::default();
    // SYN-SENT sockets have no local port yet: remember the task that connected.
    let mut started: HashMap<u64, (u32, String)> = HashMap::new();
    let duration_s = loader::poll(&mut attached, duration, |raw| {
        let Some(c) = decode(raw) else { return };
        if c.new == from {
            started.insert(c.sk, (c.pid, c.comm.clone()));
            return;
        }
        if decode_old(raw) != Some(from) || !matches!(c.new, TCP_ESTABLISHED | TCP_CLOSE) {
            return;
        }
        let (pid, comm) = started.remove(&c.sk).unwrap_or((c.pid, c.comm.clone()));
        let h = Handshake {
            pid,
            comm,
            local_addr: c.local_addr,
            local_port: c.local_port,
            remote_addr: c.remote_addr,
            remote_port: c.remote_port,
            latency_ms: c.in_old_state_ms,
            established: c.new == TCP_ESTABLISHED,
            netns: c.netns,
        };
        if !filter.matches(
            (h.local_addr, h.local_port),
            (h.remote_addr, h.remote_port),
            task(h.pid),
        ) {
            return;
        }
        by_namespace.add(
            h.netns,
            if h.established {
                "established"
            } else {
                "failed"
            },
        );
        if h.established {
            latencies.extend(h.latency_ms);
        } else {
            failed += 1;
        }
        on_handshake(&h);
    });
    latencies.sort_by(f64::total_cmp);
    Ok(HandshakeSummary {
        duration_s,
        lost_events: attached.lost_events(),
        established: latencies.len() as u64,
        failed,
        by_namespace: by_namespace.ranked(usize::MAX),
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().copied(),
    })
}

/// The old state of a raw record.
fn decode_old(raw: &[u8]) -> Option<u8> {
    raw.get(45).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(percentile(&v, 0.5), Some(3.0));
        assert_eq!(percentile(&v, 0.99), Some(100.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn decodes_a_state_change() {
        let mut raw = vec![0u8; EVENT_LEN];
        raw[0..8].copy_from_slice(&0xffff_8880_0000_1000u64.to_ne_bytes());
        raw[16..24].copy_from_slice(&2_500_000u64.to_ne_bytes());
        raw[40..44].copy_from_slice(&77u32.to_ne_bytes());
        raw[44] = 2;
        raw[45] = TCP_SYN_SENT;
        raw[46] = TCP_ESTABLISHED;
        raw[48..50].copy_from_slice(&40000u16.to_ne_bytes());
        raw[50..52].copy_from_slice(&8080u16.to_ne_bytes());
        raw[52..56].copy_from_slice(&[10, 0, 0, 1]);
        raw[68..72].copy_from_slice(&[10, 0, 0, 2]);
        raw[84..88].copy_from_slice(b"curl");
        let c = decode(&raw).unwrap();
        assert_eq!((c.old_state, c.new_state), ("SYN-SENT", "ESTAB"));
        assert_eq!(c.in_old_state_ms, Some(2.5));
        assert_eq!(
            (c.pid, c.comm.as_str(), c.local_port, c.remote_port),
            (77, "curl", 40000, 8080)
        );
        assert!(decode(&raw[..50]).is_none());
    }
}
