//! `delta(prev, cur)`: per-second rates between two snapshots.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::link::LinkStatsRates;
use crate::qdisc::QdiscCountersRates;
use crate::rates::{increase, CounterKind};
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
    /// The line rate: only a physical NIC's (see `Link::line_rate_mbps`).
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

/// A counter that went down between the two snapshots and was not a 32-bit
/// wrap: reset (module reload, device or qdisc re-created, snapshots from two
/// boots). It is reported and left out of the rates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterReset {
    /// Where it lives: `mib`, `link eth0`, `qdisc eth0 1:`, `softnet cpu1`, `conntrack`.
    pub source: String,
    pub counter: String,
    pub before: u64,
    pub after: u64,
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
    #[serde(default)]
    pub counter_resets: Vec<CounterReset>,
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
    let mut d = Deltas {
        secs,
        resets: Vec::new(),
    };

    let mut mib = BTreeMap::new();
    for (group, counters) in &cur.mib {
        let Some(prev_group) = prev.mib.get(group) else {
            continue;
        };
        // Both sides are sorted by name: walked together, and the rates come
        // out sorted, so the map is built in one pass (this runs every refresh
        // of top over some 400 counters).
        let gauges: Vec<&str> = MIB_GAUGES
            .iter()
            .filter(|(g, _)| g == group)
            .map(|(_, n)| *n)
            .collect();
        let mut before = prev_group.iter().peekable();
        let mut rates: Vec<(String, f64)> = Vec::with_capacity(counters.len());
        for (name, &c) in counters {
            while before.next_if(|(n, _)| *n < name).is_some() {}
            let Some((_, &p)) = before.next_if(|(n, _)| *n == name) else {
                continue;
            };
            if gauges.contains(&name.as_str()) {
                continue;
            }
            // MIB counters are unsigned longs: 64-bit on the kernels netsight supports.
            let (p, c) = (p.max(0) as u64, c.max(0) as u64);
            let counter = || format!("{group}.{name}");
            if let Some(r) = d.rate(CounterKind::Monotonic64, "mib", &counter, p, c) {
                rates.push((name.clone(), r));
            }
        }
        mib.insert(group.clone(), rates.into_iter().collect());
    }

    let mut links = Vec::new();
    let mut links_appeared = Vec::new();
    for l in &cur.links {
        match prev
            .links
            .iter()
            .find(|p| p.name == l.name && p.ifindex == l.ifindex)
        {
            Some(p) => {
                d.record_resets(&format!("link {}", l.name), l.stats.resets_since(&p.stats));
                links.push(LinkRates {
                    name: l.name.clone(),
                    speed_mbps: l.line_rate_mbps(),
                    duplex: l.duplex.clone(),
                    stats: l.stats.rates_since(&p.stats, secs),
                })
            }
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

    let mut softnet = Vec::new();
    for c in &cur.softnet {
        let Some(p) = prev.softnet.iter().find(|p| p.cpu == c.cpu) else {
            continue;
        };
        let source = format!("softnet cpu{}", c.cpu);
        // softnet_stat columns are the kernel's unsigned ints, printed %08x.
        let mut w = |name: &'static str, pv: u64, cv: u64| {
            d.rate(
                CounterKind::Wrapping32,
                &source,
                &|| name.to_string(),
                pv,
                cv,
            )
            .unwrap_or(0.0)
        };
        softnet.push(SoftnetRates {
            cpu: c.cpu,
            processed: w("processed", p.processed, c.processed),
            dropped: w("dropped", p.dropped, c.dropped),
            time_squeeze: w("time_squeeze", p.time_squeeze, c.time_squeeze),
            received_rps: w("received_rps", p.received_rps, c.received_rps),
            flow_limit_count: p
                .flow_limit_count
                .zip(c.flow_limit_count)
                .map(|(pv, cv)| w("flow_limit_count", pv, cv)),
            backlog_len: c.backlog_len,
        });
    }

    let mut qdiscs = Vec::new();
    for q in &cur.qdiscs {
        let Some(p) = prev.qdiscs.iter().find(|p| {
            p.ifindex == q.ifindex
                && p.handle == q.handle
                && p.parent == q.parent
                && p.kind == q.kind
        }) else {
            continue;
        };
        let source = format!("qdisc {} {}", q.link.as_deref().unwrap_or("?"), q.handle);
        d.record_resets(&source, q.counters.resets_since(&p.counters));
        qdiscs.push(QdiscRates {
            link: q.link.clone(),
            kind: q.kind.clone(),
            handle: q.handle.clone(),
            parent: q.parent.clone(),
            rates: q.counters.rates_since(&p.counters, secs),
            backlog_bytes: q.backlog_bytes,
            qlen: q.qlen,
        });
    }

    let conntrack = cur.conntrack.as_ref().map(|c| ConntrackRates {
        count: c.count,
        max: c.max,
        stats_per_s: c
            .stats
            .iter()
            .filter(|(name, _)| name.as_str() != "entries")
            .filter_map(|(name, &v)| {
                let p = *prev.conntrack.as_ref()?.stats.get(name)?;
                // A sum of per-CPU 32-bit counters: a decrease is no clean wrap, so a reset.
                let r = d.rate(
                    CounterKind::Monotonic64,
                    "conntrack",
                    &|| name.clone(),
                    p,
                    v,
                )?;
                Some((name.clone(), r))
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
        counter_resets: d.resets,
    }
}

/// The one delta rule, with the resets it met: the counter's kind decides what a
/// decrease means; a reset is recorded and not rated.
struct Deltas {
    secs: f64,
    resets: Vec<CounterReset>,
}

impl Deltas {
    fn rate(
        &mut self,
        kind: CounterKind,
        source: &str,
        counter: &dyn Fn() -> String,
        p: u64,
        c: u64,
    ) -> Option<f64> {
        match increase(kind, p, c) {
            Some(inc) if self.secs > 0.0 => Some(inc as f64 / self.secs),
            Some(_) => Some(0.0),
            None => {
                self.resets.push(CounterReset {
                    source: source.to_string(),
                    counter: counter(),
                    before: p,
                    after: c,
                });
                None
            }
        }
    }

    fn record_resets(&mut self, source: &str, resets: Vec<(&'static str, u64, u64)>) {
        for (counter, before, after) in resets {
            self.resets.push(CounterReset {
                source: source.to_string(),
                counter: counter.to_string(),
                before,
                after,
            });
        }
    }
}
