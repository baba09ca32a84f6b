//! `netsight trace retrans`: every TCP retransmission with its connection state.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use aya::include_bytes_aligned;
use serde::Serialize;

use crate::{loader, EndpointFilter, NsCount, Tally, TraceError};

static OBJECT: &[u8] = include_bytes_aligned!("../bpf/retrans.bpf.o");
/// struct retrans_event in bpf/retrans.bpf.c.
const EVENT_LEN: usize = 60;

#[derive(Debug, Clone, Serialize)]
pub struct RetransEvent {
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub remote_addr: IpAddr,
    pub remote_port: u16,
    pub state: &'static str,
    /// "rto" (the loss state after a timeout), "fast" (fast recovery), "synack"
    /// (a listener re-sending a SYN-ACK) or "other" (disorder/open: tail loss
    /// probes, early retransmits).
    pub kind: &'static str,
    pub snd_cwnd: u32,
    pub srtt_us: u32,
    /// 0 when the segment went out; a negative errno when it could not be sent.
    pub err: i32,
    /// Segments in the retransmitted skb (TSO/GSO): what TcpRetransSegs counts.
    pub segs: u32,
    /// The network namespace's inode.
    pub netns: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetransSummary {
    pub duration_s: f64,
    /// Events lost because the ring buffer was full (0 means a complete trace).
    pub lost_events: u64,
    /// Retransmissions sent (err == 0), as skbs and as segments (TcpRetransSegs).
    pub sent: u64,
    pub sent_segments: u64,
    pub failed: u64,
    pub by_kind: Vec<NsCount>,
    /// Connections with the most retransmissions (top 10).
    pub top_flows: Vec<NsCount>,
}

/// Decodes one ring buffer record.
pub fn decode(raw: &[u8]) -> Option<RetransEvent> {
    let raw = raw.get(..EVENT_LEN)?;
    let u16_at = |at: usize| u16::from_ne_bytes([raw[at], raw[at + 1]]);
    let u32_at = |at: usize| u32::from_ne_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
    let addr = |at: usize| -> IpAddr {
        if raw[0] == 2 {
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
    Some(RetransEvent {
        state: netsight_kernel::sockets::TcpState::from_kernel(raw[1]).kernel_name(),
        kind: match (raw[3], raw[2]) {
            (1, _) => "synack",
            (_, 4) => "rto",
            (_, 3) => "fast",
            _ => "other",
        },
        err: u32_at(4) as i32,
        local_port: u16_at(8),
        remote_port: u16_at(10),
        snd_cwnd: u32_at(12),
        srtt_us: u32_at(16),
        local_addr: addr(20),
        remote_addr: addr(36),
        segs: u32_at(52),
        netns: u32_at(56),
    })
}

/// Traces data and SYN-ACK retransmissions for `duration`; only events that
/// `filter` admits are counted and passed on (retransmissions run in timer and
/// softirq context: there is no process to filter on). Everything is detached
/// and unloaded when this returns.
pub fn trace(
    duration: Duration,
    filter: &EndpointFilter,
    mut on_event: impl FnMut(&RetransEvent),
) -> Result<RetransSummary, TraceError> {
    let mut attached = loader::attach(
        OBJECT,
        &[
            ("tcp_retransmit_skb", "tcp_retransmit_skb"),
            ("tcp_retransmit_synack", "tcp_retransmit_synack"),
        ],
        &[],
    )?;
    let (mut sent, mut sent_segments, mut failed) = (0u64, 0u64, 0u64);
    let (mut by_kind, mut by_flow) = (Tally::default(), Tally::default());
    let duration_s = loader::poll(&mut attached, duration, |raw| {
        let Some(e) = decode(raw) else { return };
        if !filter.matches(
            (e.local_addr, e.local_port),
            (e.remote_addr, e.remote_port),
            None,
        ) {
            return;
        }
        if e.err == 0 {
            sent += 1;
            sent_segments += u64::from(e.segs);
        } else {
            failed += 1;
        }
        by_kind.add(e.netns, e.kind);
        let flow = format!(
            "{}:{} -> {}:{}",
            e.local_addr, e.local_port, e.remote_addr, e.remote_port
        );
        by_flow.add(e.netns, flow);
        on_event(&e);
    });
    Ok(RetransSummary {
        duration_s,
        lost_events: attached.lost_events(),
        sent,
        sent_segments,
        failed,
        by_kind: by_kind.ranked(usize::MAX),
        top_flows: by_flow.ranked(10),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_an_ipv4_record() {
        let mut raw = vec![0u8; EVENT_LEN];
        raw[0] = 2;
        raw[1] = 1;
        raw[2] = 4;
        raw[8..10].copy_from_slice(&40000u16.to_ne_bytes());
        raw[10..12].copy_from_slice(&80u16.to_ne_bytes());
        raw[12..16].copy_from_slice(&10u32.to_ne_bytes());
        raw[20..24].copy_from_slice(&[10, 0, 0, 1]);
        raw[36..40].copy_from_slice(&[10, 0, 0, 2]);
        raw[52..56].copy_from_slice(&3u32.to_ne_bytes());
        raw[56..60].copy_from_slice(&4026531840u32.to_ne_bytes());
        let e = decode(&raw).unwrap();
        assert_eq!(e.netns, 4026531840);
        assert_eq!(e.segs, 3);
        assert_eq!((e.state, e.kind, e.snd_cwnd), ("ESTAB", "rto", 10));
        assert_eq!(e.local_addr, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!((e.local_port, e.remote_port), (40000, 80));
        assert!(decode(&raw[..20]).is_none());
        raw[3] = 1;
        assert_eq!(decode(&raw).unwrap().kind, "synack");
    }
}
