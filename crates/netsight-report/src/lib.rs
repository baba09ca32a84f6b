//! What a diagnosis produces: plain data, no logic. doctor writes it (`--json` is
//! exactly this); the lab and the verbs that store, serve or show reports read it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// As JSON and the metrics write it: "info", "warning", "critical".
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// The layer of the stack a rule watches, bottom up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Nic,
    Softirq,
    Qdisc,
    Ip,
    Tcp,
    Udp,
    Sockets,
    Conntrack,
    /// Packet filters: netfilter, tc, BPF, XFRM, security modules.
    Filter,
    /// Layer 2 and virtual links: bridges, tunnels, VXLAN.
    Link,
    Config,
}

impl Layer {
    /// As JSON and the metrics write it: "nic", "tcp", "config"...
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Nic => "nic",
            Layer::Softirq => "softirq",
            Layer::Qdisc => "qdisc",
            Layer::Ip => "ip",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Sockets => "sockets",
            Layer::Conntrack => "conntrack",
            Layer::Filter => "filter",
            Layer::Link => "link",
            Layer::Config => "config",
        }
    }
}

/// Brendan Gregg's USE method, plus configuration risks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UseKind {
    Utilization,
    Saturation,
    Errors,
    Configuration,
}

/// One measured fact behind a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Counter, gauge or sysctl, by its kernel name ("TcpExt.ListenOverflows", "eth0 rx_dropped").
    pub metric: String,
    /// The value the rule compared: a rate, a ratio in percent, a count or a setting.
    pub value: f64,
    /// per_s, percent, count, bytes, pages, setting...; "text" when the metric
    /// string itself states the fact (string-valued settings) and value is 1.
    pub unit: String,
    /// The threshold it crossed, in the same unit (None for plain context).
    pub threshold: Option<f64>,
}

impl Evidence {
    pub fn new(metric: impl Into<String>, value: f64, unit: &str, threshold: Option<f64>) -> Self {
        Evidence {
            metric: metric.into(),
            value,
            unit: unit.to_string(),
            threshold,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub rule_id: String,
    pub layer: Layer,
    pub use_kind: UseKind,
    pub severity: Severity,
    pub title: String,
    /// What it is about: an interface, a listener, a process; None for host-wide.
    pub subject: Option<String>,
    pub evidence: Vec<Evidence>,
    pub why: String,
    pub confirm: Vec<String>,
    pub fix: Vec<String>,
    /// For ranking within a severity: how far past its threshold (1.0 = at it).
    pub impact: f64,
    /// Findings this one explains (a full accept queue explains SYN retransmits):
    /// grouped under their cause, with their own evidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symptoms: Vec<Finding>,
}

/// What every interface and the host did during the interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InterfaceLoad {
    pub name: String,
    pub rx_mbit_per_s: f64,
    pub tx_mbit_per_s: f64,
    pub rx_packets_per_s: f64,
    pub tx_packets_per_s: f64,
    /// Bytes per packet, both directions: small packets mean a packet-rate-bound load.
    pub avg_packet_bytes: f64,
    pub utilization_percent: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SocketLoad {
    pub local: String,
    pub peer: String,
    pub state: String,
    pub bytes: u64,
    pub total_retrans: u32,
    pub rtt_ms: f64,
    /// Share of the socket's busy time its sending was limited by the peer's receive window.
    #[serde(default)]
    pub rwnd_limited_percent: Option<f64>,
    pub process: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub interval_s: f64,
    pub interfaces: Vec<InterfaceLoad>,
    /// New TCP connections per second (ActiveOpens + PassiveOpens).
    pub tcp_connections_per_s: f64,
    pub tcp_active_opens_per_s: f64,
    pub tcp_passive_opens_per_s: f64,
    /// Segments/datagrams per second in both directions, per protocol.
    pub tcp_segments_per_s: f64,
    pub udp_datagrams_per_s: f64,
    pub icmp_messages_per_s: f64,
    pub tcp_established: Option<i64>,
    pub top_sockets_by_bytes: Vec<SocketLoad>,
    pub top_sockets_by_retrans: Vec<SocketLoad>,
}

/// What `doctor --deep`'s eBPF tracers saw during the interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeepEvidence {
    pub seconds: f64,
    /// Retransmitting connections ("a:p -> b:q") by count.
    pub retrans_flows: Vec<(String, u64)>,
    /// Retransmissions by kind (rto, fast, other).
    pub retrans_kinds: Vec<(String, u64)>,
    /// Events the tracers lost (ring buffer full); counts are short by this much.
    pub lost_events: u64,
    /// Why a tracer could not run (privilege, BTF), if one could not.
    pub unavailable: Vec<String>,
}

/// One (network namespace, drop reason, dropping function) cell of what the
/// kernel's kfree_skb tracepoint counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropCell {
    /// The namespace's inode (0 when the skb had neither device nor socket).
    pub netns: u32,
    /// Without the SKB_DROP_REASON_ prefix ("NO_SOCKET").
    pub reason: String,
    /// "function+0xoffset" (a hex address without CAP_SYSLOG).
    pub location: String,
    pub count: u64,
}

/// Every packet the kernel dropped during doctor's interval, counted in the kernel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelDrops {
    pub seconds: f64,
    /// Drops that found the count map full (0: every drop is counted).
    pub lost: u64,
    /// Most drops first.
    pub cells: Vec<DropCell>,
}

/// A source the diagnosis could not use, and why (missing privilege, absent module).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub source: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub workload: Workload,
    pub skipped: Vec<Skipped>,
    pub rules_run: usize,
    /// What `--deep` tracing saw during the interval.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub deep: Option<DeepEvidence>,
    /// What the kernel dropped, by reason, during the interval (absent with --no-trace
    /// or without the privilege or BTF; `skipped` says which).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kernel_drops: Option<KernelDrops>,
}

impl Report {
    /// The worst severity, symptoms included.
    pub fn worst(&self) -> Option<Severity> {
        self.all_findings().iter().map(|f| f.severity).max()
    }

    /// Every finding, symptoms included, each cause before what it explains.
    pub fn all_findings(&self) -> Vec<&Finding> {
        fn walk<'a>(findings: &'a [Finding], out: &mut Vec<&'a Finding>) {
            for f in findings {
                out.push(f);
                walk(&f.symptoms, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.findings, &mut out);
        out
    }
}

/// One network namespace's diagnosis within `doctor --netns all`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamespaceReport {
    /// The namespace's inode (`net:[id]`).
    pub id: u32,
    /// Its `ip netns` name, if it has one.
    pub name: Option<String>,
    /// What runs in it: "comm[pid]".
    pub processes: Vec<String>,
    /// Container and pod ids from the processes' cgroups ("docker:0123456789ab").
    pub labels: Vec<String>,
    #[serde(flatten)]
    pub report: Report,
}

/// `doctor --netns all`: the host once (host-wide signals live here), then every
/// other network namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostReport {
    pub host: Report,
    pub namespaces: Vec<NamespaceReport>,
    /// Namespaces that could not be diagnosed, and why.
    pub skipped: Vec<Skipped>,
}

impl HostReport {
    pub fn worst(&self) -> Option<Severity> {
        std::iter::once(&self.host)
            .chain(self.namespaces.iter().map(|n| &n.report))
            .filter_map(Report::worst)
            .max()
    }
}
