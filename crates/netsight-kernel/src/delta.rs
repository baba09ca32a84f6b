//! `delta(prev, cur)`: per-second rates between two snapshots.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::link::LinkStatsRates;
use crate::qdisc::QdiscCountersRates;
use crate::rates::per_second;
use crate::snapshot::Snapshot;

/// MIB entries that are gauges or settings, not counters: no rate for them.
pub const MIB_GAUGES: &[(&str, &str)] = &[
    ("Ip", "Forwarding"),
    ("Ip", "DefaultTTL"),
    ("Tcp", "RtoAlgorithm"),
    ("Tcp", "RtoMin"),
    ("Tcp", "RtoMax"),
    ("Tcp", "MaxConn"),
    ("Tcp", "CurrEstab"),
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkRates {
    pub name: String,
    pub speed_mbps: Option<u64>,
    pub duplex: Option<String>,
    #[serde(flatten)]
    pub stats: LinkStatsRates,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftnetRates {
    pub cpu: u32,
    pub processed: f64,
    pub dropped: f64,
    pub time_squeeze: f64,
    pub received_rps: f64,
    pub flow_limit_count: Option<f64>,
    /// Gauge at the end of the interval.
    pub backlog_len: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QdiscRates {
    pub link: Option<String>,
    pub kind: String,
    pub handle: String,
    pub parent: String,
    #[serde(flatten)]
    pub rates: QdiscCountersRates,
    /// Gauges at the end of the interval.
    pub backlog_bytes: u64,
    pub qlen: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConntrackRates {
    pub count: Option<u64>,
    pub max: Option<u64>,
    /// Per-second rates of /proc/net/stat/nf_conntrack counters (not `entries`, a gauge).
    pub stats_per_s: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub interval_s: f64,
    pub from_unix_ms: u64,
    pub to_unix_ms: u64,
    /// Per-second MIB rates by group and kernel name (gauges left out).
    pub mib: BTreeMap<String, BTreeMap<String, f64>>,
    pub links: Vec<LinkRates>,
    /// Present now but not before (or re-created: new ifindex): no rate yet.
    pub links_appeared: Vec<String>,
    pub links_gone: Vec<String>,
    pub softnet: Vec<SoftnetRates>,
    pub qdiscs: Vec<QdiscRates>,
    pub conntrack: Option<ConntrackRates>,
}

impl Rates {
    pub fn mib_rate(&self, group: &str, name: &str) -> f64 {
        self.mib
            .get(group)
            .and_then(|g| g.get(name))
            .copied()
            .unwrap_or(0.0)
    }
}

/// Seconds between snapshots: monotonic clock when both have it, else wall clock.
pub fn interval_seconds(prev: &Snapshot, cur: &Snapshot) -> f64 {
    let (p, c) = (prev.meta.monotonic_ns, cur.meta.monotonic_ns);
    if p > 0 && c > p {
        (c - p) as f64 / 1e9
    } else {
        cur.meta
            .taken_at_unix_ms
            .saturating_sub(prev.meta.taken_at_unix_ms) as f64
            / 1e3
    }
}

pub fn delta(prev: &Snapshot, cur: &Snapshot) -> Rates {
    let secs = interval_seconds(prev, cur);
    let rate = |p: i64, c: i64| per_second(p.max(0) as u64, c.max(0) as u64, secs);

    let mut mib = BTreeMap::new();
    for (group, counters) in &cur.mib {
        let Some(prev_group) = prev.mib.get(group) else {
            continue;
        };
        let rates: BTreeMap<String, f64> = counters
            .iter()
            .filter(|(name, _)| !MIB_GAUGES.contains(&(group.as_str(), name.as_str())))
            .filter_map(|(name, &c)| prev_group.get(name).map(|&p| (name.clone(), rate(p, c))))
            .collect();
        mib.insert(group.clone(), rates);
    }

    let mut links = Vec::new();
    let mut links_appeared = Vec::new();
    for l in &cur.links {
        match prev
            .links
            .iter()
            .find(|p| p.name == l.name && p.ifindex == l.ifindex)
        {
            Some(p) => links.push(LinkRates {
                name: l.name.clone(),
                speed_mbps: l.speed_mbps,
                duplex: l.duplex.clone(),
                stats: l.stats.rates_since(&p.stats, secs),
            }),
            None => links_appeared.push(l.name.clone()),
        }
    }
    let links_gone = prev
        .links
        .iter()
        .filter(|p| {
            !cur.links
                .iter()
                .any(|l| l.name == p.name && l.ifindex == p.ifindex)
        })
        .map(|p| p.name.clone())
        .collect();

    let softnet = cur
        .softnet
        .iter()
        .filter_map(|c| {
            let p = prev.softnet.iter().find(|p| p.cpu == c.cpu)?;
            Some(SoftnetRates {
                cpu: c.cpu,
                processed: per_second(p.processed, c.processed, secs),
                dropped: per_second(p.dropped, c.dropped, secs),
                time_squeeze: per_second(p.time_squeeze, c.time_squeeze, secs),
                received_rps: per_second(p.received_rps, c.received_rps, secs),
                flow_limit_count: p
                    .flow_limit_count
                    .zip(c.flow_limit_count)
                    .map(|(p, c)| per_second(p, c, secs)),
                backlog_len: c.backlog_len,
            })
        })
        .collect();

    let qdiscs = cur
        .qdiscs
        .iter()
        .filter_map(|q| {
            let p = prev.qdiscs.iter().find(|p| {
                p.ifindex == q.ifindex
                    && p.handle == q.handle
                    && p.parent == q.parent
                    && p.kind == q.kind
            })?;
            Some(QdiscRates {
                link: q.link.clone(),
                kind: q.kind.clone(),
                handle: q.handle.clone(),
                parent: q.parent.clone(),
                rates: q.counters.rates_since(&p.counters, secs),
                backlog_bytes: q.backlog_bytes,
                qlen: q.qlen,
            })
        })
        .collect();

    let conntrack = cur.conntrack.as_ref().map(|c| ConntrackRates {
        count: c.count,
        max: c.max,
        stats_per_s: c
            .stats
            .iter()
            .filter(|(name, _)| name.as_str() != "entries")
            .filter_map(|(name, &v)| {
                let p = prev.conntrack.as_ref()?.stats.get(name)?;
                Some((name.clone(), per_second(*p, v, secs)))
            })
            .collect(),
    });

    Rates {
        interval_s: secs,
        from_unix_ms: prev.meta.taken_at_unix_ms,
        to_unix_ms: cur.meta.taken_at_unix_ms,
        mib,
        links,
        links_appeared,
        links_gone,
        softnet,
        qdiscs,
        conntrack,
    }
}
