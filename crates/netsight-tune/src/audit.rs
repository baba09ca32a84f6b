//! The audit: every setting that shapes network performance, its current value,
//! what the profile, the link's bandwidth-delay product and the counters call
//! for, and why. Sysctl items form the plan `apply` writes; NIC items are advice
//! with the command to run (ring, coalescing, offload and queue changes reset
//! some drivers' links, so netsight does not make them unasked).

use netsight_kernel::{Snapshot, Support};
use serde::Serialize;

use crate::bdp::{bdp, human_bytes, human_speed, Bdp, KERNEL_TCP_RMEM_MAX};
use crate::host::{is_physical, HostFacts};
use crate::journal::{SysctlChange, SysctlTree};
use crate::TuneError;

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
        .filter(|l| is_physical(l))
        .filter_map(|l| Some((l.speed_mbps?, l.name.as_str())))
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

/// Without a link speed there is no BDP to size buffers from: say so, change nothing.
fn buffers_unsized(a: &mut Auditor) {
    for key in [
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
        "net.core.rmem_max",
        "net.core.wmem_max",
    ] {
        a.sysctl(
            key,
            None,
            "left as it is: no NIC reports a link speed, so there is no bandwidth-delay product to size it from (pass --link-speed and --rtt)".into(),
            None,
        );
    }
}

fn buffers(a: &mut Auditor, path: &Bdp) {
    let buffer = path.buffer_bytes.max(KERNEL_TCP_RMEM_MAX);
    let basis = format!(
        "BDP {} x {:.1} ms = {}; one flow needs about twice that in buffer ({})",
        human_speed(path.speed_bits_per_s),
        path.rtt_us as f64 / 1000.0,
        human_bytes(path.bdp_bytes),
        human_bytes(buffer)
    );
    for (key, default_floor, tuned) in [
        ("net.ipv4.tcp_rmem", 131_072u64, TUNED_THROUGHPUT_RMEM),
        ("net.ipv4.tcp_wmem", 16_384, TUNED_THROUGHPUT_WMEM),
    ] {
        let target = a.words(key).filter(|w| w.len() == 3).and_then(|w| {
            let want = [w[0].max(4096), w[1].max(default_floor), w[2].max(buffer)];
            (want != [w[0], w[1], w[2]]).then(|| format!("{} {} {}", want[0], want[1], want[2]))
        });
        let small_default = a
            .words(key)
            .is_some_and(|w| w.len() == 3 && w[1] < default_floor);
        let reason = if target.is_some() {
            format!(
                "min/default/max per TCP socket (autotuned). {basis}{}",
                if small_default {
                    format!("; a default below {default_floor} starts every connection small")
                } else {
                    String::new()
                }
            )
        } else {
            format!("large enough: {basis}")
        };
        a.sysctl(key, target, reason, Some(tuned));
    }
    for key in ["net.core.rmem_max", "net.core.wmem_max"] {
        a.at_least(
            key,
            buffer,
            format!("caps SO_RCVBUF/SO_SNDBUF set by applications (iperf3 -w, databases); {basis}"),
            None,
        );
    }
}

fn connection_setup(a: &mut Auditor) {
    let secs = a.activity.interval_s;
    let overflows = a.activity.listen_overflows;
    // ListenDrops counts every drop at a listener, accept-queue overflows included:
    // only the rest can be a full SYN queue, which tcp_max_syn_backlog sizes.
    let syn_queue_drops = a.activity.listen_drops.saturating_sub(overflows);
    let somaxconn = a.number("net.core.somaxconn").unwrap_or(0);
    let want_somaxconn = if a.wants(&[Profile::Connections]) {
        8192
    } else {
        4096
    };
    let reason = if overflows > 0 && somaxconn >= want_somaxconn {
        format!(
            "{overflows} accept-queue overflows in {secs:.1} s (TcpExt ListenOverflows), with somaxconn already {somaxconn}: the application's listen() backlog is small or it accepts too slowly (netsight sockets --listening shows each listener's queue)"
        )
    } else if overflows > 0 {
        format!("{overflows} accept-queue overflows in {secs:.1} s (TcpExt ListenOverflows); somaxconn caps every listen() backlog")
    } else {
        format!("caps every listen() backlog; {want_somaxconn} (the default since 5.4 is 4096) lets busy servers queue bursts")
    };
    a.at_least("net.core.somaxconn", want_somaxconn, reason, None);

    let syn_target = if syn_queue_drops > 0 || a.wants(&[Profile::Connections]) {
        8192
    } else {
        1024
    };
    a.at_least(
        "net.ipv4.tcp_max_syn_backlog",
        syn_target,
        format!(
            "half-open connections per listener before SYN cookies or drops; {syn_queue_drops} SYN-queue drops in {secs:.1} s (ListenDrops minus accept-queue overflows)"
        ),
        None,
    );

    let tw = a
        .snap
        .sockstat
        .get("TCP")
        .and_then(|g| g.get("tw"))
        .copied()
        .unwrap_or(0)
        .max(0) as u64;
    let ports = a
        .snap
        .sysctls
        .get("net.ipv4.ip_local_port_range")
        .and_then(|v| netsight_kernel::sysctl::port_range_size(v))
        .unwrap_or(0);
    let churn = a.wants(&[Profile::Connections]) || (ports > 0 && tw * 2 > ports);
    let target = (churn && ports < 50_000).then(|| "10000 65535".to_string());
    a.sysctl(
        "net.ipv4.ip_local_port_range",
        target,
        format!(
            "{ports} ephemeral ports for outgoing connections, {tw} in TIME-WAIT now; each (destination, port) pair needs a free one. Starting at 10000 keeps clear of most fixed service ports"
        ),
        None,
    );
    let target = (churn && a.number("net.ipv4.tcp_tw_reuse") != Some(1)).then(|| "1".to_string());
    a.sysctl(
        "net.ipv4.tcp_tw_reuse",
        target,
        "1 lets new outgoing connections reuse TIME-WAIT ports when timestamps prove safety (2, the default, allows it on loopback only)".into(),
        None,
    );
    let fin = a.number("net.ipv4.tcp_fin_timeout");
    let target =
        (a.wants(&[Profile::Connections]) && fin.is_some_and(|f| f > 30)).then(|| "30".to_string());
    a.sysctl(
        "net.ipv4.tcp_fin_timeout",
        target,
        "how long an orphaned connection waits in FIN-WAIT-2 for the peer's FIN; 30 s frees memory sooner under churn".into(),
        None,
    );
    for (key, value, what) in [
        ("net.ipv4.tcp_keepalive_time", 600u64, "idle seconds before the first probe (default 7200: a dead peer goes unnoticed for two hours)"),
        ("net.ipv4.tcp_keepalive_intvl", 30, "seconds between probes"),
        ("net.ipv4.tcp_keepalive_probes", 5, "unanswered probes before the connection is dropped"),
    ] {
        let target = (a.wants(&[Profile::Connections]) && a.number(key).is_some_and(|c| c > value)).then(|| value.to_string());
        a.sysctl(key, target, format!("for sockets with SO_KEEPALIVE: {what}; 600/30/5 finds dead peers in ~13 min"), None);
    }
    let fastopen = a.number("net.ipv4.tcp_fastopen").unwrap_or(0);
    let target = (a.wants(&[Profile::Latency, Profile::Connections]) && fastopen & 3 != 3)
        .then(|| (fastopen | 3).to_string());
    a.sysctl(
        "net.ipv4.tcp_fastopen",
        target,
        "3 enables TCP Fast Open for clients and servers: data in the SYN saves one RTT on repeat connections (applications must opt in)".into(),
        Some(TUNED_LATENCY_FASTOPEN),
    );
}

fn receive_path(a: &mut Auditor) {
    let secs = a.activity.interval_s;
    let dropped = a.activity.softnet_dropped;
    let squeezed = a.activity.time_squeeze;
    let backlog = a.number("net.core.netdev_max_backlog").unwrap_or(1000);
    let want = if dropped > 0 {
        backlog.saturating_mul(2).max(4096)
    } else if a.wants(&[Profile::Throughput]) {
        8192
    } else {
        0
    };
    a.at_least(
        "net.core.netdev_max_backlog",
        want,
        format!("per-CPU input queue (RPS, veth, loopback); {dropped} packets dropped when it was full in {secs:.1} s (softnet_stat)"),
        None,
    );
    // A squeeze now and then is normal; a steady rate (10/s) means softirq rounds end early.
    let squeezing = secs > 0.0 && squeezed as f64 / secs >= 10.0;
    let (budget_want, usecs_want) = if squeezing || a.wants(&[Profile::Throughput]) {
        (600, 4000)
    } else {
        (0, 0)
    };
    a.at_least(
        "net.core.netdev_budget",
        budget_want,
        format!("packets one softirq round may process; it ran out of budget or time {squeezed} times in {secs:.1} s (time_squeeze)"),
        None,
    );
    a.at_least(
        "net.core.netdev_budget_usecs",
        usecs_want,
        "time limit of one softirq round (µs), raised together with netdev_budget".into(),
        None,
    );
}

fn congestion_and_latency(a: &mut Auditor) {
    let pacing = a.wants(&[Profile::Throughput, Profile::Latency]);
    let qdisc = a.current("net.core.default_qdisc");
    let target = (pacing && qdisc.as_deref() != Some("fq")).then(|| "fq".to_string());
    a.sysctl(
        "net.core.default_qdisc",
        target,
        "fq paces each flow (BBR relies on it) and isolates flows from each other; it applies to interfaces set up afterwards (or `tc qdisc replace dev IF root fq`). fq_codel, the usual default, suits routers".into(),
        None,
    );
    let available = a
        .current("net.ipv4.tcp_available_congestion_control")
        .unwrap_or_default();
    let cc = a.current("net.ipv4.tcp_congestion_control");
    let has_bbr = available.split(' ').any(|c| c == "bbr");
    let target = (a.wants(&[Profile::Throughput]) && has_bbr && cc.as_deref() != Some("bbr"))
        .then(|| "bbr".to_string());
    let reason = if has_bbr {
        "BBR models bandwidth and RTT instead of reacting to loss: far better throughput on long or lossy paths (use with fq)".to_string()
    } else {
        format!("BBR is not available here (available: {available}); `modprobe tcp_bbr` (kernel 4.9+) first, then set bbr")
    };
    a.sysctl("net.ipv4.tcp_congestion_control", target, reason, None);

    let target = (a.wants(&[Profile::Throughput, Profile::Latency])
        && a.number("net.ipv4.tcp_slow_start_after_idle") != Some(0))
    .then(|| "0".to_string());
    a.sysctl(
        "net.ipv4.tcp_slow_start_after_idle",
        target,
        "1 (default) collapses the congestion window after an idle RTO: long-lived connections with bursts (HTTP/2, RPC) restart slowly".into(),
        None,
    );
    let target = (a.wants(&[Profile::Latency])
        && a.number("net.ipv4.tcp_notsent_lowat")
            .is_some_and(|v| v > 131_072))
    .then(|| "131072".to_string());
    a.sysctl(
        "net.ipv4.tcp_notsent_lowat",
        target,
        "limits data queued but not yet sent per socket: writers block sooner and send the freshest data (HTTP/2 prioritisation, lower memory)".into(),
        None,
    );
    for key in ["net.core.busy_read", "net.core.busy_poll"] {
        let target =
            (a.wants(&[Profile::Latency]) && a.number(key) == Some(0)).then(|| "50".to_string());
        a.sysctl(
            key,
            target,
            "µs a blocking receive/poll spins on the NIC queue before sleeping: lower, steadier latency at the cost of CPU".into(),
            Some(TUNED_LATENCY_BUSY),
        );
    }
}

fn safety(a: &mut Auditor) {
    if a.current("net.ipv4.tcp_tw_recycle").is_some() {
        let target = (a.number("net.ipv4.tcp_tw_recycle") != Some(0)).then(|| "0".to_string());
        a.sysctl_as(
            "net.ipv4.tcp_tw_recycle",
            target,
            Status::Danger,
            "dangerous: drops connections from clients behind NAT (per-host timestamps); removed in Linux 4.12".into(),
            None,
        );
    }
    for (key, good, why) in [
        (
            "net.ipv4.tcp_syncookies",
            "1",
            "without SYN cookies a SYN flood fills the SYN queue and real clients are refused",
        ),
        (
            "net.ipv4.tcp_window_scaling",
            "1",
            "without window scaling no connection can have more than 64 KiB in flight",
        ),
        (
            "net.ipv4.tcp_sack",
            "1",
            "without SACK every loss costs a full window of retransmissions",
        ),
        (
            "net.ipv4.tcp_timestamps",
            "1",
            "timestamps give RTT samples, PAWS and safe TIME-WAIT reuse",
        ),
    ] {
        let target = (a.number(key) == Some(0)).then(|| good.to_string());
        a.sysctl_as(key, target, Status::Danger, why.to_string(), None);
    }
}

fn conntrack(a: &mut Auditor) {
    let Some(ct) = &a.snap.conntrack else { return };
    let (Some(count), Some(max)) = (ct.count, ct.max) else {
        return;
    };
    let dropped = a.activity.conntrack_dropped;
    let secs = a.activity.interval_s;
    let fill = if max > 0 {
        count as f64 / max as f64
    } else {
        0.0
    };
    let need = fill > 0.7 || dropped > 0 || (a.wants(&[Profile::Connections]) && max < 262_144);
    let target = need.then(|| max.saturating_mul(2).max(262_144).to_string());
    a.sysctl(
        "net.netfilter.nf_conntrack_max",
        target,
        format!(
            "{count} of {max} tracked connections ({:.0} %), {dropped} dropped for a full table in {secs:.1} s; each entry costs ~300 bytes",
            fill * 100.0
        ),
        None,
    );
}

fn nics(a: &mut Auditor) {
    let forwarding = a.number("net.ipv4.ip_forward") == Some(1);
    let bridged: Vec<&str> = a
        .snap
        .links
        .iter()
        .filter(|l| l.kind.as_deref() == Some("bridge"))
        .map(|l| l.name.as_str())
        .collect();
    let links: Vec<_> = a
        .snap
        .links
        .iter()
        .filter(|l| is_physical(l))
        .cloned()
        .collect();
    for link in &links {
        let name = &link.name;
        let fast = link.speed_mbps.unwrap_or(0) >= 10_000;
        if let Some(mtu) = link.mtu {
            if a.wants(&[Profile::Throughput]) && fast && mtu <= 1500 {
                a.advice(
                    format!("{name}: mtu"),
                    mtu.to_string(),
                    "9000".into(),
                    "jumbo frames cut per-packet CPU cost ~6x at 10G+, but only if every hop and peer on the L2 segment has the same MTU".into(),
                    format!("ip link set dev {name} mtu 9000"),
                );
            } else {
                a.nic_ok(
                    format!("{name}: mtu"),
                    mtu.to_string(),
                    "jumbo frames only pay off at 10G+ on a segment that supports them".into(),
                );
            }
        }
        let rx_drops =
            link.stats.rx_dropped + link.stats.rx_missed_errors + link.stats.rx_fifo_errors;
        if let Support::Available(rings) = &link.ethtool.rings {
            if let (Some(&rx), Some(&rx_max)) = (rings.get("rx"), rings.get("rx_max")) {
                let tx_max = rings.get("tx_max").copied().unwrap_or(0);
                if rx < rx_max && (rx_drops > 0 || a.wants(&[Profile::Throughput])) {
                    a.advice(
                        format!("{name}: rx ring"),
                        rx.to_string(),
                        rx_max.to_string(),
                        format!("{rx_drops} receive drops/misses since the link came up; a larger ring absorbs bursts while softirq catches up (costs some latency and memory)"),
                        format!("ethtool -G {name} rx {rx_max}{}", if tx_max > 0 { format!(" tx {tx_max}") } else { String::new() }),
                    );
                } else {
                    a.nic_ok(
                        format!("{name}: rx ring"),
                        format!("{rx} of {rx_max}"),
                        format!("{rx_drops} receive drops/misses"),
                    );
                }
            }
        }
        if let Support::Available(c) = &link.ethtool.coalesce {
            let adaptive = c.get("adaptive_rx").copied().unwrap_or(0) == 1;
            let usecs = c.get("rx_usecs").copied().unwrap_or(0);
            let current = format!(
                "adaptive-rx {} rx-usecs {usecs}",
                if adaptive { "on" } else { "off" }
            );
            if a.wants(&[Profile::Latency]) && (adaptive || usecs > 8) {
                a.advice(format!("{name}: coalescing"), current, "adaptive-rx off rx-usecs 0".into(),
                    "interrupt coalescing holds packets up to rx-usecs before interrupting: latency pays for it".into(),
                    format!("ethtool -C {name} adaptive-rx off rx-usecs 0"));
            } else if a.wants(&[Profile::Throughput]) && !adaptive && usecs < 8 {
                a.advice(format!("{name}: coalescing"), current, "adaptive-rx on".into(),
                    "an interrupt per packet costs CPU at high packet rates; adaptive coalescing batches under load".into(),
                    format!("ethtool -C {name} adaptive-rx on"));
            } else {
                a.nic_ok(
                    format!("{name}: coalescing"),
                    current,
                    "suits the profile".into(),
                );
            }
        }
        if let Support::Available(features) = &link.ethtool.features {
            for (feature, flag) in [
                ("tcp-segmentation-offload", "tso"),
                ("tx-generic-segmentation", "gso"),
                ("rx-gro", "gro"),
            ] {
                match features.get(feature) {
                    Some(false) => a.advice(format!("{name}: {flag}"), "off".into(), "on".into(),
                        format!("{flag} lets the stack handle 64 KiB super-packets instead of MTU-sized ones: far fewer per-packet costs"),
                        format!("ethtool -K {name} {flag} on")),
                    Some(true) => a.nic_ok(format!("{name}: {flag}"), "on".into(), "segmentation offloads cut per-packet cost".into()),
                    None => {}
                }
            }
            if features.get("rx-lro") == Some(&true) {
                if forwarding || !bridged.is_empty() {
                    a.items.push(Item {
                        key: format!("{name}: lro"),
                        kind: ItemKind::Nic,
                        current: Some("on".into()),
                        recommended: Some("off".into()),
                        status: Status::Danger,
                        reason: "dangerous with routing or bridging: LRO merges packets in ways that cannot be re-segmented exactly (use GRO)".into(),
                        command: Some(format!("ethtool -K {name} lro off")),
                        tuned: None,
                    });
                } else {
                    a.nic_ok(
                        format!("{name}: lro"),
                        "on".into(),
                        "fine on an end host; turn it off if this host routes or bridges".into(),
                    );
                }
            }
        }
        if let Support::Available(ch) = &link.ethtool.channels {
            let combined = ch.get("combined").copied().unwrap_or(0);
            let max = ch.get("combined_max").copied().unwrap_or(0);
            let want = max.min(a.facts.cpus as u64);
            if combined > 0 && combined < want {
                a.advice(
                    format!("{name}: channels"),
                    combined.to_string(),
                    want.to_string(),
                    format!(
                        "{combined} queue(s) for {} CPUs: receive work lands on few CPUs",
                        a.facts.cpus
                    ),
                    format!("ethtool -L {name} combined {want}"),
                );
            } else if combined > 0 {
                a.nic_ok(
                    format!("{name}: channels"),
                    combined.to_string(),
                    format!("{} CPUs, {max} queues possible", a.facts.cpus),
                );
            }
        }
        rps_xps(a, name);
    }
}

/// A sysfs CPU mask ("00000000,00000000") with no CPU set.
fn no_cpus(mask: &str) -> bool {
    mask.trim_start_matches(['0', ',']).is_empty()
}

fn rps_xps(a: &mut Auditor, name: &str) {
    let cpus = a.facts.cpus;
    if cpus < 2 {
        return;
    }
    let all_cpus = format!("{:x}", (1u128 << cpus.min(127)) - 1);
    let rps = a.facts.rps.get(name).cloned().unwrap_or_default();
    if rps.len() == 1 {
        let (queue, mask) = &rps[0];
        if no_cpus(mask) {
            a.advice(format!("{name}: rps"), mask.clone(), all_cpus.clone(),
                format!("one receive queue and RPS off: all receive processing runs on the CPU taking the interrupt, {cpus} CPUs available"),
                format!("echo {all_cpus} > /sys/class/net/{name}/queues/{queue}/rps_cpus"));
        } else {
            a.nic_ok(
                format!("{name}: rps"),
                mask.clone(),
                "RPS spreads receive work".into(),
            );
        }
    }
    let xps = a.facts.xps.get(name).cloned().unwrap_or_default();
    if xps.len() > 1 && xps.iter().all(|(_, m)| no_cpus(m)) {
        a.advice(format!("{name}: xps"), "unset".into(), "one CPU per queue".into(),
            "with several transmit queues and no XPS, any CPU may pick any queue: lock contention and reordering".into(),
            format!("for i in $(seq 0 {}); do printf %x $((1<<i)) > /sys/class/net/{name}/queues/tx-$i/xps_cpus; done", xps.len() - 1));
    }
    if let Some(irqs) = a.facts.irq_affinity.get(name) {
        if irqs.len() > 1 && irqs.iter().all(|l| l == &irqs[0]) && !irqs[0].contains(['-', ',']) {
            a.advice(
                format!("{name}: irq affinity"),
                format!("all {} IRQs on CPU {}", irqs.len(), irqs[0]),
                "spread over CPUs".into(),
                "every queue interrupts the same CPU, so multi-queue receive gains nothing".into(),
                "systemctl start irqbalance   (or write /proc/irq/N/smp_affinity_list per queue)"
                    .into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(sysctls: &[(&str, &str)], listen_overflows: i64) -> Snapshot {
        let sysctls: serde_json::Map<String, serde_json::Value> = sysctls
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        serde_json::from_value(serde_json::json!({
            "meta": {"taken_at_unix_ms": 0, "monotonic_ns": 0, "kernel_release": null, "hostname": null, "netsight_version": "test"},
            "mib": {"TcpExt": {"ListenOverflows": listen_overflows}},
            "sockstat": {"TCP": {"inuse": 3, "tw": 0}},
            "softnet": [],
            "links": [],
            "qdiscs": [],
            "conntrack": null,
            "sockets": null,
            "sysctls": sysctls,
            "unavailable": {},
        }))
        .unwrap_or_else(|e| panic!("test snapshot: {e}"))
    }

    fn item<'a>(a: &'a Audit, key: &str) -> &'a Item {
        a.items
            .iter()
            .find(|i| i.key == key)
            .unwrap_or_else(|| panic!("{key} not audited"))
    }

    const DEFAULTS: &[(&str, &str)] = &[
        ("net.ipv4.tcp_rmem", "4096\t131072\t6291456"),
        ("net.ipv4.tcp_wmem", "4096\t16384\t4194304"),
        ("net.core.rmem_max", "212992"),
        ("net.core.wmem_max", "212992"),
        ("net.core.somaxconn", "128"),
        ("net.ipv4.tcp_syncookies", "1"),
        ("net.ipv4.ip_local_port_range", "32768\t60999"),
        ("net.ipv4.tcp_congestion_control", "cubic"),
        ("net.ipv4.tcp_available_congestion_control", "reno cubic"),
        ("net.core.default_qdisc", "fq_codel"),
    ];

    #[test]
    fn buffers_follow_the_bdp_and_never_shrink() {
        let facts = HostFacts::default();
        let opts = TuneOptions {
            profile: Some(Profile::Throughput),
            speed_bits_per_s: Some(10_000_000_000),
            rtt_us: Some(80_000),
        };
        let a = audit(&snapshot(DEFAULTS, 0), &facts, &opts, None);
        assert_eq!(
            item(&a, "net.ipv4.tcp_rmem").recommended.as_deref(),
            Some("4096 131072 268435456")
        );
        assert_eq!(
            item(&a, "net.core.wmem_max").recommended.as_deref(),
            Some("268435456")
        );
        // BBR is not available here: no change, and the reason says how to get it.
        let cc = item(&a, "net.ipv4.tcp_congestion_control");
        assert_eq!(cc.status, Status::Ok);
        assert!(cc.reason.contains("modprobe tcp_bbr"), "{}", cc.reason);

        let mut big = DEFAULTS.to_vec();
        big[0] = ("net.ipv4.tcp_rmem", "8192 262144 1073741824");
        let a = audit(&snapshot(&big, 0), &facts, &opts, None);
        assert_eq!(item(&a, "net.ipv4.tcp_rmem").status, Status::Ok);
        assert!(a.plan(&[]).iter().all(|c| c.key != "net.ipv4.tcp_rmem"));
    }

    #[test]
    fn counters_and_profiles_drive_the_plan() {
        let facts = HostFacts::default();
        let balanced = TuneOptions {
            rtt_us: Some(1000),
            ..TuneOptions::default()
        };
        let mut settings = DEFAULTS.to_vec();
        settings.push(("net.ipv4.tcp_max_syn_backlog", "2048"));
        settings.push(("net.core.netdev_budget", "300"));
        let quiet = audit(&snapshot(&settings, 0), &facts, &balanced, None);
        // 42 overflows since boot, none now: nothing is said of them.
        let since_boot = audit(&snapshot(&settings, 42), &facts, &balanced, None);
        assert!(!item(&since_boot, "net.core.somaxconn")
            .reason
            .contains("42"));
        let now = Activity {
            interval_s: 2.0,
            listen_overflows: 42,
            listen_drops: 42,
            time_squeeze: 1,
            ..Activity::default()
        };
        let overflowing = audit(&snapshot(&settings, 0), &facts, &balanced, Some(&now));
        // somaxconn 128 is below the 5.4+ default either way; overflows make it the reason.
        assert!(item(&overflowing, "net.core.somaxconn")
            .reason
            .contains("42 accept-queue overflows in 2.0 s"));
        // ListenDrops that are all accept-queue overflows say nothing about the SYN queue.
        let syn = item(&overflowing, "net.ipv4.tcp_max_syn_backlog");
        assert_eq!(syn.status, Status::Ok, "{}", syn.reason);
        // One squeeze in two seconds is not a reason to raise the budget.
        assert_eq!(
            item(&overflowing, "net.core.netdev_budget").status,
            Status::Ok
        );
        let squeezed = Activity {
            interval_s: 2.0,
            time_squeeze: 100,
            listen_drops: 30,
            ..Activity::default()
        };
        let busy = audit(&snapshot(&settings, 0), &facts, &balanced, Some(&squeezed));
        assert_eq!(
            item(&busy, "net.core.netdev_budget").recommended.as_deref(),
            Some("600")
        );
        assert_eq!(
            item(&busy, "net.ipv4.tcp_max_syn_backlog")
                .recommended
                .as_deref(),
            Some("8192")
        );
        assert_eq!(
            item(&quiet, "net.ipv4.ip_local_port_range").status,
            Status::Ok
        );
        let conns = audit(
            &snapshot(DEFAULTS, 0),
            &facts,
            &TuneOptions {
                profile: Some(Profile::Connections),
                ..balanced.clone()
            },
            None,
        );
        assert_eq!(
            item(&conns, "net.ipv4.ip_local_port_range")
                .recommended
                .as_deref(),
            Some("10000 65535")
        );
        assert_eq!(
            item(&conns, "net.core.somaxconn").recommended.as_deref(),
            Some("8192")
        );
        // --set wins over the audit's own value and comes last.
        let plan = conns
            .plan(&[parse_override("net.core.somaxconn=16384").unwrap_or_else(|e| panic!("{e}"))]);
        assert_eq!(plan.last().map(|c| c.value.as_str()), Some("16384"));
        assert_eq!(
            plan.iter()
                .filter(|c| c.key == "net.core.somaxconn")
                .count(),
            1
        );
        assert!(parse_override("novalue").is_err());
    }

    #[test]
    fn without_a_link_speed_buffers_are_left_alone() {
        let a = audit(
            &snapshot(DEFAULTS, 0),
            &HostFacts::default(),
            &TuneOptions::default(),
            None,
        );
        assert!(!a.link.speed_known);
        for key in ["net.ipv4.tcp_rmem", "net.core.rmem_max"] {
            let i = item(&a, key);
            assert_eq!(i.status, Status::Ok, "{key}");
            assert!(
                i.reason.contains("no NIC reports a link speed"),
                "{}",
                i.reason
            );
        }
    }

    #[test]
    fn dangerous_and_read_only_settings() {
        let mut settings = DEFAULTS.to_vec();
        settings.push(("net.ipv4.tcp_tw_recycle", "1"));
        settings[5] = ("net.ipv4.tcp_syncookies", "0");
        let mut facts = HostFacts::default();
        facts.read_only_sysctls.insert("net.core.rmem_max".into());
        let speed = TuneOptions {
            speed_bits_per_s: Some(10_000_000_000),
            ..TuneOptions::default()
        };
        let a = audit(&snapshot(&settings, 0), &facts, &speed, None);
        assert_eq!(item(&a, "net.ipv4.tcp_tw_recycle").status, Status::Danger);
        assert_eq!(
            item(&a, "net.ipv4.tcp_syncookies").recommended.as_deref(),
            Some("1")
        );
        assert_eq!(a.items[0].status, Status::Danger, "dangers come first");
        let ro = item(&a, "net.core.rmem_max");
        assert_eq!(ro.status, Status::Unavailable);
        assert!(a.plan(&[]).iter().all(|c| c.key != "net.core.rmem_max"));
        // Absent on this kernel (or in this namespace): never planned.
        assert_eq!(
            item(&a, "net.core.netdev_max_backlog").status,
            Status::Unavailable
        );
    }
}
