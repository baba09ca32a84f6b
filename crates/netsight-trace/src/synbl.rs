//! `netsight trace synbl`: accept-queue (SYN backlog) fill per listener. No
//! tracepoint exposes the listener when a handshake completes (BCC's tcpsynbl
//! uses kprobes, absent here), so listeners are sampled through sock_diag every
//! SAMPLE_MS: Recv-Q (queued connections) against Send-Q (the backlog limit),
//! and the SYN-RECV sockets of the listener's port.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use netsight_kernel::sockets::{self, Protocol, Socket, TcpState};
use serde::Serialize;

use crate::TraceError;

pub const SAMPLE_MS: u64 = 100;

#[derive(Debug, Clone, Serialize)]
pub struct ListenerBacklog {
    pub local_addr: IpAddr,
    pub local_port: u16,
    /// The listen() backlog (capped by somaxconn).
    pub backlog: u32,
    pub samples: u64,
    pub max_queued: u32,
    /// Samples by queued connections, in log2 buckets: [low, high) → samples.
    pub histogram: Vec<(u32, u32, u64)>,
    /// Samples with the queue at or over the backlog (new handshakes dropped then).
    pub full_samples: u64,
    pub max_syn_recv: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SynblSummary {
    pub duration_s: f64,
    pub sample_interval_ms: u64,
    pub listeners: Vec<ListenerBacklog>,
}

fn bucket(v: u32) -> (u32, u32) {
    if v == 0 {
        return (0, 1);
    }
    let low = 1u32 << (31 - v.leading_zeros());
    (low, low.saturating_mul(2))
}

fn sample() -> Result<Vec<Socket>, TraceError> {
    let mut out = Vec::new();
    for (family, name) in [(sockets::AF_INET, "tcp4"), (sockets::AF_INET6, "tcp6")] {
        let bytes = sockets::dump_listen_queues(family).map_err(|e| TraceError::Bpf {
            what: format!("sock_diag {name}"),
            detail: e.to_string(),
        })?;
        sockets::parse_dump(&bytes, Protocol::Tcp, &mut out).map_err(|e| TraceError::Bpf {
            what: format!("sock_diag {name}"),
            detail: e.to_string(),
        })?;
    }
    Ok(out)
}

/// Folds one sample of sockets into the per-listener accumulators.
pub fn accumulate(listeners: &mut BTreeMap<(IpAddr, u16), ListenerBacklog>, socks: &[Socket]) {
    let mut syn_recv: BTreeMap<u16, u64> = BTreeMap::new();
    for s in socks
        .iter()
        .filter(|s| matches!(s.state, TcpState::SynRecv | TcpState::NewSynRecv))
    {
        *syn_recv.entry(s.local_port).or_insert(0) += 1;
    }
    for s in socks.iter().filter(|s| s.state == TcpState::Listen) {
        let l = listeners
            .entry((s.local_addr, s.local_port))
            .or_insert_with(|| ListenerBacklog {
                local_addr: s.local_addr,
                local_port: s.local_port,
                backlog: s.send_q,
                samples: 0,
                max_queued: 0,
                histogram: Vec::new(),
                full_samples: 0,
                max_syn_recv: 0,
            });
        l.samples += 1;
        l.max_queued = l.max_queued.max(s.recv_q);
        if s.send_q > 0 && s.recv_q >= s.send_q {
            l.full_samples += 1;
        }
        l.max_syn_recv = l
            .max_syn_recv
            .max(syn_recv.get(&s.local_port).copied().unwrap_or(0));
        let (low, high) = bucket(s.recv_q);
        match l.histogram.iter_mut().find(|(lo, _, _)| *lo == low) {
            Some(cell) => cell.2 += 1,
            None => {
                l.histogram.push((low, high, 1));
                l.histogram.sort();
            }
        }
    }
}

pub fn trace(duration: Duration) -> Result<SynblSummary, TraceError> {
    let started = Instant::now();
    let mut listeners = BTreeMap::new();
    crate::attached("sock_diag listen-queue sampling");
    loop {
        accumulate(&mut listeners, &sample()?);
        let left = duration.saturating_sub(started.elapsed());
        if crate::stop_requested() {
            break;
        }
        if left.is_zero() {
            break;
        }
        std::thread::sleep(Duration::from_millis(SAMPLE_MS).min(left));
    }
    let mut listeners: Vec<ListenerBacklog> = listeners.into_values().collect();
    listeners.sort_by(|a, b| {
        b.full_samples
            .cmp(&a.full_samples)
            .then(b.max_queued.cmp(&a.max_queued))
    });
    Ok(SynblSummary {
        duration_s: started.elapsed().as_secs_f64(),
        sample_interval_ms: SAMPLE_MS,
        listeners,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log2() {
        assert_eq!(bucket(0), (0, 1));
        assert_eq!(bucket(1), (1, 2));
        assert_eq!(bucket(5), (4, 8));
        assert_eq!(bucket(128), (128, 256));
    }
}
