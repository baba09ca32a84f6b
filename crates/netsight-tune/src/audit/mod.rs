//! The audit: every setting that shapes network performance, its current value,
//! what the profile, the link's bandwidth-delay product and the counters call
//! for, and why. Sysctl items form the plan `apply` writes; NIC items are advice
//! with the command to run (ring, coalescing, offload and queue changes reset
//! some drivers' links, so netsight does not make them unasked).

use netsight_kernel::{Snapshot, Support};
use serde::Serialize;

use crate::bdp::{bdp, human_bytes, human_speed, Bdp, KERNEL_TCP_RMEM_MAX};
use crate::host::HostFacts;
use crate::journal::{SysctlChange, SysctlTree};
use crate::TuneError;

mod buffers;
mod connections;
mod latency;
mod nics;
mod receive;
mod safety;
#[cfg(test)]
mod tests;

use buffers::{buffers, buffers_unsized};
use connections::connection_setup;
use latency::congestion_and_latency;
use nics::nics;
use receive::receive_path;
use safety::{conntrack, safety};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Fix what the counters show and size buffers for the link; nothing that trades one goal for another.
    Balanced,
    /// Short request/response latency: busy polling, fast open, small unsent queues, low coalescing.
    Latency,
    /// Bulk transfer: BDP-sized buffers, fq + BBR, larger backlogs and budgets, jumbo frames.
    Throughput,
    /// Many short connections: accept queues, ephemeral ports, TIME-WAIT reuse, keepalive, conntrack.
    Connections,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Balanced => "balanced",
            Profile::Latency => "latency",
            Profile::Throughput => "throughput",
            Profile::Connections => "connections",
        }
    }

    pub fn parse(text: &str) -> Option<Profile> {
        match text {
            "balanced" => Some(Profile::Balanced),
            "latency" => Some(Profile::Latency),
            "throughput" => Some(Profile::Throughput),
            "connections" => Some(Profile::Connections),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct TuneOptions {
    pub profile: Option<Profile>,
    pub speed_bits_per_s: Option<u64>,
    pub rtt_us: Option<u64>,
}

/// What the counters did over a measured interval (two snapshots, as doctor
/// takes them): advice follows what happens now, not what happened since boot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Activity {
    pub interval_s: f64,
    pub listen_overflows: u64,
    pub listen_drops: u64,
    pub softnet_dropped: u64,
    pub time_squeeze: u64,
    pub conntrack_dropped: u64,
}

impl Activity {
    pub fn from_rates(r: &netsight_kernel::Rates) -> Activity {
        let n = |rate: f64| (rate * r.interval_s).round().max(0.0) as u64;
        let ct = |name: &str| {
            r.conntrack
                .as_ref()
                .and_then(|c| c.stats_per_s.get(name))
                .map_or(0, |v| n(*v))
        };
        Activity {
            interval_s: r.interval_s,
            listen_overflows: n(r.mib_rate("TcpExt", "ListenOverflows")),
            listen_drops: n(r.mib_rate("TcpExt", "ListenDrops")),
            softnet_dropped: n(r.softnet.iter().map(|c| c.dropped).sum()),
            time_squeeze: n(r.softnet.iter().map(|c| c.time_squeeze).sum()),
            conntrack_dropped: ct("drop") + ct("early_drop"),
        }
    }
}

pub fn parse_override(text: &str) -> Result<SysctlChange, TuneError> {
    let Some((key, value)) = text.split_once('=') else {
        return Err(TuneError::BadOverride(text.to_string()));
    };
    let key = netsight_kernel::sysctl_tree::SysctlKey::parse(key.trim())?;
    Ok(SysctlChange {
        key: key.name(),
        value: value.trim().to_string(),
    })
}

/// Checks a `--set` against the tree it would be written to: the key exists and is
/// writable here (host-wide keys are refused inside a child namespace), and the
/// value has the key's type and range.
pub fn check_override(tree: &SysctlTree, change: &SysctlChange) -> Result<(), TuneError> {
    let key = netsight_kernel::sysctl_tree::SysctlKey::parse(&change.key)?;
    tree.check_writable(&key)?;
    let current = tree.read_raw(&key)?;
    netsight_kernel::sysctl_tree::validate_value(&key, &current, &change.value)?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    Sysctl,
    Nic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Current value is dangerous; the plan changes it.
    Danger,
    /// The plan changes it.
    Change,
    /// A NIC change to make by hand (command given).
    Advice,
    Ok,
    /// Not present on this kernel or not visible in this network namespace.
    Unavailable,
}

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub key: String,
    pub kind: ItemKind,
    pub current: Option<String>,
    pub recommended: Option<String>,
    pub status: Status,
    pub reason: String,
    /// For NIC advice: the command that makes the change.
    pub command: Option<String>,
    /// What tuned's network-latency / network-throughput profiles set here, if anything.
    pub tuned: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LinkBasis {
    pub speed_bits_per_s: u64,
    /// False when no NIC reports a speed and none was given: buffers are then left alone.
    pub speed_known: bool,
    pub speed_source: String,
    pub rtt_us: u64,
    pub rtt_source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub profile: Profile,
    pub link: LinkBasis,
    pub bdp: Bdp,
    pub items: Vec<Item>,
}

impl Audit {
    /// The sysctl writes of the plan, in audit order, then the `--set` overrides.
    pub fn plan(&self, overrides: &[SysctlChange]) -> Vec<SysctlChange> {
        self.sysctl_values(overrides, |i| {
            matches!(i.status, Status::Change | Status::Danger)
        })
    }

    /// Every sysctl value the audit vouches for (changed or already right), for
    /// persistence with `export`; host-wide values a namespace cannot see are left out.
    pub fn desired_state(&self, overrides: &[SysctlChange]) -> Vec<SysctlChange> {
        self.sysctl_values(overrides, |i| i.status != Status::Unavailable)
    }

    fn sysctl_values(
        &self,
        overrides: &[SysctlChange],
        keep: impl Fn(&Item) -> bool,
    ) -> Vec<SysctlChange> {
        let mut values: Vec<SysctlChange> = self
            .items
            .iter()
            .filter(|i| i.kind == ItemKind::Sysctl && keep(i))
            .filter_map(|i| {
                Some(SysctlChange {
                    key: i.key.clone(),
                    value: i.recommended.clone()?,
                })
            })
            .filter(|c| !overrides.iter().any(|o| o.key == c.key))
            .collect();
        values.extend(overrides.iter().cloned());
        values
    }
}

const ASSUMED_SPEED_BITS: u64 = 10_000_000_000;
const ASSUMED_RTT_US: u64 = 20_000;
const TUNED_THROUGHPUT_RMEM: &str =
    "network-throughput: 4096 131072 16777216 (16 MiB whatever the link)";
const TUNED_THROUGHPUT_WMEM: &str =
    "network-throughput: 4096 16384 16777216 (16 MiB whatever the link)";
const TUNED_LATENCY_BUSY: &str = "network-latency: 50";
const TUNED_LATENCY_FASTOPEN: &str = "network-latency: 3";

struct Auditor<'a> {
    snap: &'a Snapshot,
    facts: &'a HostFacts,
    profile: Profile,
    activity: Activity,
    items: Vec<Item>,
}

impl Auditor<'_> {
    /// The value with the kernel's tabs folded to single spaces.
    fn current(&self, key: &str) -> Option<String> {
        self.snap
            .sysctls
            .get(key)
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    fn number(&self, key: &str) -> Option<u64> {
        self.current(key)?.parse().ok()
    }

    fn words(&self, key: &str) -> Option<Vec<u64>> {
        self.current(key)?
            .split(' ')
            .map(|w| w.parse().ok())
            .collect()
    }

    /// One sysctl: `target` None means "fine as it is" (reason says why).
    fn sysctl(
        &mut self,
        key: &str,
        target: Option<String>,
        reason: String,
        tuned: Option<&'static str>,
    ) {
        self.sysctl_as(key, target, Status::Change, reason, tuned);
    }

    fn sysctl_as(
        &mut self,
        key: &str,
        target: Option<String>,
        change: Status,
        reason: String,
        tuned: Option<&'static str>,
    ) {
        let current = self.current(key);
        let (status, reason) = match (&current, &target) {
            (None, _) => (
                Status::Unavailable,
                if self.facts.in_host_netns {
                    format!("not on this kernel. {reason}")
                } else {
                    format!("host-wide: not visible in this network namespace (run in the host namespace). {reason}")
                },
            ),
            (Some(_), Some(_)) if self.facts.read_only_sysctls.contains(key) => (
                Status::Unavailable,
                format!("read-only in this network namespace (a host-wide value): set it from the host namespace. {reason}"),
            ),
            (Some(c), Some(t)) if c.split_whitespace().ne(t.split_whitespace()) => (change, reason),
            _ => (Status::Ok, reason),
        };
        let recommended = target.or_else(|| current.clone());
        self.items.push(Item {
            key: key.to_string(),
            kind: ItemKind::Sysctl,
            current,
            recommended,
            status,
            reason,
            command: None,
            tuned,
        });
    }

    /// Raise a numeric sysctl to at least `min`; never lowers a larger value.
    fn at_least(&mut self, key: &str, min: u64, reason: String, tuned: Option<&'static str>) {
        let target = self
            .number(key)
            .filter(|&c| c < min)
            .map(|_| min.to_string());
        self.sysctl(key, target, reason, tuned);
    }

    fn advice(
        &mut self,
        key: String,
        current: String,
        recommended: String,
        reason: String,
        command: String,
    ) {
        self.items.push(Item {
            key,
            kind: ItemKind::Nic,
            current: Some(current),
            recommended: Some(recommended),
            status: Status::Advice,
            reason,
            command: Some(command),
            tuned: None,
        });
    }

    fn nic_ok(&mut self, key: String, current: String, reason: String) {
        self.items.push(Item {
            key,
            kind: ItemKind::Nic,
            current: Some(current),
            recommended: None,
            status: Status::Ok,
            reason,
            command: None,
            tuned: None,
        });
    }

    fn wants(&self, profiles: &[Profile]) -> bool {
        profiles.contains(&self.profile)
    }
}

/// Link speed and RTT behind the buffer sizes: the flags, else the fastest NIC
/// and the median RTT of live connections, else stated assumptions.
fn link_basis(snap: &Snapshot, facts: &HostFacts, opts: &TuneOptions) -> LinkBasis {
    let nic = snap
        .links
        .iter()
        .filter_map(|l| Some((l.line_rate_mbps()?, l.name.as_str())))
        .max();
    let (speed_bits_per_s, speed_known, speed_source) = match (opts.speed_bits_per_s, nic) {
        (Some(s), _) => (s, true, "--link-speed".to_string()),
        (None, Some((mbps, name))) => (mbps.saturating_mul(1_000_000), true, format!("{name} link speed")),
        (None, None) => (
            ASSUMED_SPEED_BITS,
            false,
            "unknown: no NIC reports a speed (virtual devices report none or a nominal one); pass --link-speed".into(),
        ),
    };
    let (rtt_us, rtt_source) = match (opts.rtt_us, facts.median_rtt_us) {
        (Some(r), _) => (r, "--rtt".to_string()),
        (None, Some(r)) if r >= 1000 => (r, "median RTT of established connections".into()),
        _ => (
            ASSUMED_RTT_US,
            "assumed: pass --rtt for your longest path".into(),
        ),
    };
    LinkBasis {
        speed_bits_per_s,
        speed_known,
        speed_source,
        rtt_us,
        rtt_source,
    }
}

/// `activity`: the counters over a measured interval (None: nothing measured,
/// so no advice rests on counters).
pub fn audit(
    snap: &Snapshot,
    facts: &HostFacts,
    opts: &TuneOptions,
    activity: Option<&Activity>,
) -> Audit {
    let profile = opts.profile.unwrap_or(Profile::Balanced);
    let link = link_basis(snap, facts, opts);
    let path = bdp(link.speed_bits_per_s, link.rtt_us);
    let activity = activity.cloned().unwrap_or_default();
    let mut a = Auditor {
        snap,
        facts,
        profile,
        activity,
        items: Vec::new(),
    };
    if link.speed_known {
        buffers(&mut a, &path);
    } else {
        buffers_unsized(&mut a);
    }
    connection_setup(&mut a);
    receive_path(&mut a);
    congestion_and_latency(&mut a);
    safety(&mut a);
    conntrack(&mut a);
    nics(&mut a);
    let mut items = a.items;
    items.sort_by_key(|i| i.status);
    Audit {
        profile,
        link,
        bdp: path,
        items,
    }
}
