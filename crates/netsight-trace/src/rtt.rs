//! `netsight trace rtt`: smoothed-RTT histograms per peer, aggregated in the
//! kernel (bpf/rtt.bpf.c) from tcp:tcp_probe and read once at the end.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use aya::include_bytes_aligned;
use aya::maps::HashMap;
use serde::Serialize;

use crate::loader::Global;
use crate::{loader, EndpointFilter, TraceError};

static OBJECT: &[u8] = include_bytes_aligned!("../bpf/rtt.bpf.o");

#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    /// Smoothed RTT in [low_us, high_us).
    pub low_us: u64,
    pub high_us: u64,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerRtt {
    /// The network namespace's inode.
    pub netns: u32,
    pub peer: IpAddr,
    pub samples: u64,
    /// The bucket holding the median sample.
    pub p50_bucket_us: (u64, u64),
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RttSummary {
    pub duration_s: f64,
    /// Samples lost because the in-kernel histogram map was full.
    pub lost_events: u64,
    /// Peers by sample count, most first.
    pub peers: Vec<PeerRtt>,
}

/// Decodes one key of the `hist` map: addr[16], family, bucket, pad[2], netns.
pub fn decode_key(k: &[u8; 24]) -> (u32, IpAddr, u8) {
    let addr = if k[16] == 2 {
        IpAddr::V4(Ipv4Addr::new(k[0], k[1], k[2], k[3]))
    } else {
        let mut a = [0u8; 16];
        a.copy_from_slice(&k[..16]);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    (
        u32::from_ne_bytes([k[20], k[21], k[22], k[23]]),
        addr,
        k[17],
    )
}

/// Builds per-peer histograms from (namespace, peer, log2 bucket, count) cells.
pub fn histograms(cells: impl IntoIterator<Item = (u32, IpAddr, u8, u64)>) -> Vec<PeerRtt> {
    let mut by_peer: BTreeMap<(u32, IpAddr), BTreeMap<u8, u64>> = BTreeMap::new();
    for (netns, peer, bucket, count) in cells {
        *by_peer
            .entry((netns, peer))
            .or_default()
            .entry(bucket)
            .or_insert(0) += count;
    }
    let mut peers: Vec<PeerRtt> = by_peer
        .into_iter()
        .map(|((netns, peer), buckets)| {
            let samples: u64 = buckets.values().sum();
            let mut seen = 0;
            let mut p50 = (0, 0);
            for (&b, &n) in &buckets {
                seen += n;
                if seen * 2 >= samples {
                    p50 = (1u64 << b, 1u64 << (b + 1));
                    break;
                }
            }
            PeerRtt {
                netns,
                peer,
                samples,
                p50_bucket_us: p50,
                buckets: buckets
                    .into_iter()
                    .map(|(b, count)| Bucket {
                        low_us: 1 << b,
                        high_us: 1 << (b + 1),
                        count,
                    })
                    .collect(),
            }
        })
        .collect();
    peers.sort_by(|a, b| b.samples.cmp(&a.samples).then(a.peer.cmp(&b.peer)));
    peers
}

/// `filter.port` is applied in the kernel (the histogram keeps no ports),
/// `filter.addr` to the peer; samples come from softirq, so there is no --pid.
pub fn trace(duration: Duration, filter: &EndpointFilter) -> Result<RttSummary, TraceError> {
    let globals = [("filter_port", Global::U16(filter.port.unwrap_or(0)))];
    let mut attached = loader::attach(OBJECT, &[("tcp_probe", "tcp_probe")], &globals)?;
    let duration_s = loader::poll(&mut attached, duration, |_| {});
    let map = attached.map("hist").ok_or_else(|| TraceError::Bpf {
        what: "rtt.bpf.o".into(),
        detail: "no hist map".into(),
    })?;
    let hist = HashMap::<_, [u8; 24], u64>::try_from(map)
        .map_err(|e| TraceError::bpf("rtt histogram", e))?;
    let cells = hist
        .iter()
        .filter_map(Result::ok)
        .map(|(k, n)| {
            let (netns, peer, bucket) = decode_key(&k);
            (netns, peer, bucket, n)
        })
        .filter(|(_, peer, _, _)| filter.addr.is_none_or(|c| c.contains(*peer)));
    let peers = histograms(cells);
    Ok(RttSummary {
        duration_s,
        lost_events: attached.lost_events(),
        peers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_per_peer_with_median_bucket() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let peers = histograms([(1, a, 5, 10), (1, a, 6, 30), (1, a, 10, 1), (1, b, 3, 2)]);
        assert_eq!(peers[0].peer, a);
        assert_eq!(peers[0].samples, 41);
        assert_eq!(peers[0].p50_bucket_us, (64, 128));
        assert_eq!(peers[0].buckets[0].low_us, 32);
        assert_eq!(peers[1].samples, 2);
        let mut key = [0u8; 24];
        key[..4].copy_from_slice(&[10, 0, 0, 2]);
        key[16] = 2;
        key[17] = 7;
        key[20..24].copy_from_slice(&9u32.to_ne_bytes());
        assert_eq!(decode_key(&key), (9, b, 7));
    }
}
