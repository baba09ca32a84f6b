//! The one typed snapshot every verb reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::collect::LiveSource;
use crate::error::Result;
use crate::ethtool::{self, EthtoolDump, EthtoolValues};
use crate::host_layout::{self, HostLayout};
use crate::link::{self, Link};
use crate::nftables::{self, NfRule};
use crate::procfs::{conntrack, netdev, snmp, sockstat, softnet};
use crate::qdisc::{self, Qdisc};
use crate::raw::{key, RawSnapshot};
use crate::sockets::{self, SocketTable};
use crate::support::Support;
use crate::sysctl::{normalize_value, proc_relative_path, DIAGNOSTIC_SYSCTLS};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub taken_at_unix_ms: u64,
    pub monotonic_ns: u64,
    pub kernel_release: Option<String>,
    pub hostname: Option<String>,
    pub netsight_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conntrack {
    /// nf_conntrack_count: entries in the table now.
    pub count: Option<u64>,
    /// nf_conntrack_max: the table's limit; new flows are dropped when full.
    pub max: Option<u64>,
    /// /proc/net/stat/nf_conntrack summed over CPUs (`conntrack -S` totals).
    pub stats: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    /// MIB counters by group, names exactly as the kernel prints them:
    /// `mib["TcpExt"]["ListenOverflows"]`; snmp6 as `mib["Ip6"]["InReceives"]`.
    pub mib: snmp::Mib,
    /// /proc/net/sockstat{,6}: `sockstat["TCP"]["tw"]`; TCP/UDP `mem` in pages.
    pub sockstat: sockstat::Sockstat,
    pub softnet: Vec<softnet::SoftnetCpu>,
    pub links: Vec<Link>,
    pub qdiscs: Vec<Qdisc>,
    /// None when nf_conntrack is not loaded.
    pub conntrack: Option<Conntrack>,
    /// Every TCP/UDP socket, when the snapshot was taken with sockets.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sockets: Option<SocketTable>,
    /// Diagnostic sysctls by dotted name; values as `sysctl -n` prints them.
    pub sysctls: BTreeMap<String, String>,
    /// Netfilter rules (nftables and iptables-nft) with their counters.
    #[serde(default)]
    pub netfilter_rules: Vec<NfRule>,
    /// CPUs, queue masks, IRQ affinity and namespace (what tune's audit reads).
    #[serde(default)]
    pub host: HostLayout,
    /// Sources that could not be read or parsed, with the reason.
    pub unavailable: BTreeMap<String, String>,
}

impl Snapshot {
    /// Reads the running kernel (all sources but sockets) and parses the result.
    pub fn take() -> Snapshot {
        Snapshot::from_raw(&LiveSource::default().collect())
    }

    /// Like `take`, plus every TCP/UDP socket, with its owning process when `owners`.
    pub fn take_with_sockets(owners: bool) -> Snapshot {
        let source = LiveSource {
            include_socket_owners: owners,
            ..LiveSource::default().with_sockets()
        };
        Snapshot::from_raw(&source.collect())
    }

    /// Parses raw inputs. Never fails as a whole: a source that is missing or
    /// malformed is recorded in `unavailable` and the rest is kept.
    pub fn from_raw(raw: &RawSnapshot) -> Snapshot {
        let mut problems: BTreeMap<String, String> = raw.missing.clone();
        let mut note = |key: &str, result: Result<()>| {
            if let Err(e) = result {
                problems.insert(key.to_string(), e.to_string());
            }
        };
        let text = |rel: &str| raw.text(&key::proc(rel));

        let mut mib = snmp::Mib::new();
        for (rel, name) in [("net/snmp", "snmp"), ("net/netstat", "netstat")] {
            if let Some(t) = text(rel) {
                note(&key::proc(rel), snmp::parse_paired(name, &t, &mut mib));
            }
        }
        if let Some(t) = text("net/snmp6") {
            note(&key::proc("net/snmp6"), snmp::parse_snmp6(&t, &mut mib));
        }

        let mut sockstat_groups = sockstat::Sockstat::new();
        for (rel, name) in [("net/sockstat", "sockstat"), ("net/sockstat6", "sockstat6")] {
            if let Some(t) = text(rel) {
                note(
                    &key::proc(rel),
                    sockstat::parse(name, &t, &mut sockstat_groups),
                );
            }
        }

        let softnet_cpus = match text("net/softnet_stat").map(|t| softnet::parse(&t)) {
            Some(Ok(cpus)) => cpus,
            Some(Err(e)) => {
                note(&key::proc("net/softnet_stat"), Err(e));
                Vec::new()
            }
            None => Vec::new(),
        };

        let mut links = parse_links(raw, &mut note);
        attach_link_details(raw, &mut links, &mut note);

        let mut qdiscs = match raw
            .entries
            .get(key::ROUTE_QDISC)
            .map(|b| qdisc::parse_qdisc_dump(b))
        {
            Some(Ok(q)) => q,
            Some(Err(e)) => {
                note(key::ROUTE_QDISC, Err(e));
                Vec::new()
            }
            None => Vec::new(),
        };
        for q in &mut qdiscs {
            q.link = links
                .iter()
                .find(|l| l.ifindex == Some(q.ifindex))
                .map(|l| l.name.clone());
        }

        let mut sysctls = BTreeMap::new();
        for name in DIAGNOSTIC_SYSCTLS {
            if let Some(t) = text(&proc_relative_path(name)) {
                sysctls.insert(name.to_string(), normalize_value(&t));
            }
        }

        let conntrack_stats =
            match text("net/stat/nf_conntrack").map(|t| conntrack::parse_stats(&t)) {
                Some(Ok(stats)) => Some(stats),
                Some(Err(e)) => {
                    note(&key::proc("net/stat/nf_conntrack"), Err(e));
                    None
                }
                None => None,
            };
        let sysctl_u64 = |name: &str| sysctls.get(name).and_then(|v: &String| v.parse().ok());
        let count = sysctl_u64("net.netfilter.nf_conntrack_count");
        let max = sysctl_u64("net.netfilter.nf_conntrack_max");
        let conntrack = (count.is_some() || conntrack_stats.is_some()).then(|| Conntrack {
            count,
            max,
            stats: conntrack_stats.unwrap_or_default(),
        });

        let sockets = parse_sockets(raw, &mut note);
        let mut netfilter_rules = match raw
            .entries
            .get(key::NFTABLES_RULES)
            .map(|b| nftables::parse_rules(b))
        {
            Some(Ok(rules)) => rules,
            Some(Err(e)) => {
                note(key::NFTABLES_RULES, Err(e));
                Vec::new()
            }
            None => Vec::new(),
        };
        for (k, bytes) in raw
            .entries
            .range(key::IPTABLES_LEGACY_PREFIX.to_string()..)
            .take_while(|(k, _)| k.starts_with(key::IPTABLES_LEGACY_PREFIX))
        {
            let family = k[key::IPTABLES_LEGACY_PREFIX.len()..]
                .split('/')
                .next()
                .unwrap_or_default();
            match crate::iptables_legacy::parse_table(family, bytes) {
                Ok(rules) => netfilter_rules.extend(rules),
                Err(e) => note(k, Err(e)),
            }
        }

        let trimmed = |rel: &str| text(rel).map(|t| t.trim().to_string());
        Snapshot {
            meta: SnapshotMeta {
                taken_at_unix_ms: raw.meta.taken_at_unix_ms,
                monotonic_ns: raw.meta.monotonic_ns,
                kernel_release: trimmed("sys/kernel/osrelease"),
                hostname: trimmed("sys/kernel/hostname"),
                netsight_version: raw.meta.netsight_version.clone(),
            },
            mib,
            sockstat: sockstat_groups,
            softnet: softnet_cpus,
            links,
            qdiscs,
            conntrack,
            sockets,
            sysctls,
            netfilter_rules,
            host: host_layout::parse(raw),
            unavailable: problems,
        }
    }

    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    /// A MIB counter by group and name, e.g. `counter("TcpExt", "ListenOverflows")`.
    pub fn counter(&self, group: &str, name: &str) -> Option<i64> {
        self.mib.get(group)?.get(name).copied()
    }
}

/// Sockets are present when any sock_diag dump is in the raw snapshot.
fn parse_sockets(
    raw: &RawSnapshot,
    note: &mut impl FnMut(&str, Result<()>),
) -> Option<SocketTable> {
    let mut table = SocketTable::default();
    let mut any = false;
    for (name, _, protocol) in sockets::DUMPS {
        let k = key::sock_diag(name);
        if let Some(bytes) = raw.entries.get(&k) {
            any = true;
            note(&k, sockets::parse_dump(bytes, protocol, &mut table.sockets));
        }
    }
    if !any {
        return None;
    }
    if let Some(records) = raw.entries.get(key::SOCKET_OWNERS) {
        let owners = sockets::owners_bpf::parse_records(records);
        sockets::attach_owners(&mut table.sockets, &owners);
    }
    table.owners_complete = !raw.missing.contains_key(key::SOCKET_OWNERS);
    if let Some(unix) = raw.text(key::PROC_NET_UNIX) {
        table.unix_counts = sockets::parse_unix_counts(&unix);
    }
    Some(table)
}

fn parse_links(raw: &RawSnapshot, note: &mut impl FnMut(&str, Result<()>)) -> Vec<Link> {
    if let Some(bytes) = raw.entries.get(key::ROUTE_LINK) {
        match link::parse_link_dump(bytes) {
            Ok(links) if !links.is_empty() => return links,
            Ok(_) => {}
            Err(e) => note(key::ROUTE_LINK, Err(e)),
        }
    }
    match raw.text(&key::proc("net/dev")).map(|t| netdev::parse(&t)) {
        Some(Ok(rows)) => link::links_from_proc_net_dev(&rows),
        Some(Err(e)) => {
            note(&key::proc("net/dev"), Err(e));
            Vec::new()
        }
        None => Vec::new(),
    }
}

/// One ethtool dump decoded per device, or why it is unavailable.
type ParsedDump = std::result::Result<BTreeMap<String, EthtoolValues>, String>;

fn attach_link_details(
    raw: &RawSnapshot,
    links: &mut [Link],
    note: &mut impl FnMut(&str, Result<()>),
) {
    let mut dumps: Vec<(EthtoolDump, ParsedDump)> = Vec::new();
    for what in EthtoolDump::ALL {
        let k = key::ethtool_dump(what.name());
        let parsed = match raw.entries.get(&k) {
            Some(bytes) => ethtool::parse_dump(what, bytes).map_err(|e| {
                let reason = e.to_string();
                note(&k, Err(e));
                reason
            }),
            None => Err(raw.missing_reason(&k)),
        };
        dumps.push((what, parsed));
    }

    for l in links.iter_mut() {
        l.speed_mbps = raw
            .text(&key::sys_class_net(&l.name, "speed"))
            .and_then(|t| link::parse_speed(&t));
        l.duplex = raw
            .text(&key::sys_class_net(&l.name, "duplex"))
            .map(|t| t.trim().to_string())
            .filter(|d| d != "unknown");

        let stats_key = key::ethtool_stats(&l.name);
        l.driver_stats = match raw.text(&stats_key) {
            Some(t) => match ethtool::driver_stats::parse_text(&t) {
                Ok(stats) => Support::Available(stats.into_iter().collect()),
                Err(e) => Support::Unavailable(e.to_string()),
            },
            None => Support::from_missing(raw.missing_reason(&stats_key)),
        };

        for (what, parsed) in &dumps {
            // Err(None): the dump worked but skipped this device (driver lacks it).
            let values = match parsed {
                Ok(by_dev) => by_dev.get(&l.name).ok_or(None),
                Err(reason) => Err(Some(reason.clone())),
            };
            match what {
                EthtoolDump::Features => l.ethtool.features = support(values, |v| v.flags.clone()),
                EthtoolDump::Rings => l.ethtool.rings = support(values, |v| v.numbers.clone()),
                EthtoolDump::Coalesce => {
                    l.ethtool.coalesce = support(values, |v| v.numbers.clone())
                }
                EthtoolDump::Channels => {
                    l.ethtool.channels = support(values, |v| v.numbers.clone())
                }
            }
        }
    }
}

fn support<T>(
    values: std::result::Result<&EthtoolValues, Option<String>>,
    pick: impl Fn(&EthtoolValues) -> T,
) -> Support<T> {
    match values {
        Ok(v) => Support::Available(pick(v)),
        Err(None) => Support::NotSupported,
        Err(Some(reason)) => Support::Unavailable(reason),
    }
}
