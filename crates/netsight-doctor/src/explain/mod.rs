//! `netsight explain NAME`: what a counter, softnet column or sysctl means, which
//! layer it belongs to, what a rising value usually means, and the rules and
//! fixes that use it. Accepts "TcpExt.ListenOverflows", nstat's
//! "TcpExtListenOverflows", a bare "ListenOverflows" when unambiguous, and
//! sysctls as "net.core.somaxconn" or "net/core/somaxconn".

mod counters;
mod families;
mod sysctls;

use serde::Serialize;

use crate::drop_reasons::{DropReason, DROP_REASONS};
use crate::rules;
use netsight_report::Layer;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// Canonical name: "TcpExt.ListenOverflows", "softnet_stat.dropped", "net.core.somaxconn".
    pub name: String,
    pub kind: &'static str,
    pub layer: Layer,
    pub meaning: String,
    /// For counters: what a rising value usually means; for sysctls: when to change it.
    pub interpretation: String,
    pub related_rules: Vec<&'static str>,
    pub fixes: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExplainError {
    /// Nothing matched; the closest known names.
    Unknown {
        name: String,
        suggestions: Vec<String>,
    },
    /// A bare name matched several groups.
    Ambiguous {
        name: String,
        candidates: Vec<String>,
    },
}

impl std::fmt::Display for ExplainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExplainError::Unknown { name, suggestions } if suggestions.is_empty() => {
                write!(f, "unknown counter or sysctl {name:?}")
            }
            ExplainError::Unknown { name, suggestions } => write!(
                f,
                "unknown counter or sysctl {name:?}; did you mean {}?",
                suggestions.join(", ")
            ),
            ExplainError::Ambiguous { name, candidates } => write!(
                f,
                "{name:?} exists in several groups: {}; name one",
                candidates.join(", ")
            ),
        }
    }
}

impl std::error::Error for ExplainError {}

fn layer_of_group(group: &str) -> Layer {
    match group {
        "Ip" | "IpExt" | "Ip6" | "Icmp" | "IcmpMsg" | "Icmp6" => Layer::Ip,
        "Tcp" | "TcpExt" | "MPTcpExt" => Layer::Tcp,
        "Udp" | "Udp6" | "UdpLite" | "UdpLite6" => Layer::Udp,
        "softnet_stat" => Layer::Softirq,
        _ => Layer::Config,
    }
}

/// Counter groups as /proc/net names them (snmp, netstat, snmp6).
const GROUPS: [&str; 14] = [
    "Ip",
    "IpExt",
    "Icmp",
    "IcmpMsg",
    "Tcp",
    "TcpExt",
    "Udp",
    "UdpLite",
    "MPTcpExt",
    "Ip6",
    "Icmp6",
    "Udp6",
    "UdpLite6",
    "softnet_stat",
];

/// (meaning, interpretation) of group.name, from tables or families.
fn describe_counter(group: &str, name: &str) -> Option<(String, String)> {
    if let Some((_, _, m, r)) = counters::TABLES
        .iter()
        .flat_map(|t| t.iter())
        .find(|(g, n, _, _)| *g == group && *n == name)
    {
        return Some((m.to_string(), r.to_string()));
    }
    match group {
        "Icmp6" if name.contains("Type") => icmp_type(name, families::ICMP6_TYPES, "ICMPv6"),
        "Icmp" | "Icmp6" => icmp(group, name),
        "IcmpMsg" => icmp_type(name, families::ICMP_TYPES, "ICMP"),
        "Ip6" => {
            if let Some((_, m, r)) = families::IP6_OWN.iter().find(|(n, _, _)| *n == name) {
                return Some((m.to_string(), r.to_string()));
            }
            let (m, r) =
                describe_counter("Ip", name).or_else(|| describe_counter("IpExt", name))?;
            // The IPv4 text describes the same counter kept for IPv6.
            let m = m.replace("IPv4", "IPv6");
            Some((
                format!("IPv6 (the same counter as Ip.{name} keeps for IPv4): {m}"),
                r,
            ))
        }
        "Udp6" | "UdpLite" | "UdpLite6" => {
            let (m, r) = describe_counter("Udp", name)?;
            let what = match group {
                "Udp6" => "UDP over IPv6",
                "UdpLite" => "UDP-Lite (RFC 3828) over IPv4",
                _ => "UDP-Lite over IPv6",
            };
            Some((format!("For {what}: {m}"), r))
        }
        "MPTcpExt" => {
            let (_, family) = families::MPTCP_FAMILIES
                .iter()
                .filter(|(p, _)| name.starts_with(p))
                .max_by_key(|(p, _)| p.len())?;
            Some((
                format!("Multipath TCP: {family}."),
                "MPTCP activity or trouble with MPTCP on this path; all zero when no application uses MPTCP.".into(),
            ))
        }
        _ => None,
    }
}

fn icmp(group: &str, name: &str) -> Option<(String, String)> {
    let (dir, kind) = if let Some(k) = name.strip_prefix("In") {
        ("received", k)
    } else {
        ("sent", name.strip_prefix("Out")?)
    };
    let v = if group == "Icmp6" { "ICMPv6" } else { "ICMP" };
    let (_, what) = families::ICMP_KINDS.iter().find(|(k, _)| *k == kind)?;
    Some((
        format!("{v} {what} {dir}."),
        match kind {
            "DestUnreachs" => {
                "Closed ports, unreachable hosts or PMTU (fragmentation needed) signals.".into()
            }
            "Errors" | "CsumErrors" => {
                "Malformed or corrupted ICMP, or ICMP suppressed on send.".into()
            }
            k if k.starts_with("RateLimit") => {
                "ICMP replies suppressed: many errors to send (scans, floods).".into()
            }
            _ => format!("More {v} {what}."),
        },
    ))
}

fn icmp_type(name: &str, table: &[(u32, &str)], v: &str) -> Option<(String, String)> {
    let (dir, num) = if let Some(n) = name.strip_prefix("InType") {
        ("received", n)
    } else {
        ("sent", name.strip_prefix("OutType")?)
    };
    let num: u32 = num.parse().ok()?;
    let what = table
        .iter()
        .find(|(t, _)| *t == num)
        .map(|(_, w)| *w)
        .unwrap_or("a message of this type");
    Some((
        format!("{v} type {num} messages {dir}: {what}."),
        format!("More {v} type {num} traffic."),
    ))
}

fn related(name_forms: &[String]) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut rule_ids = Vec::new();
    let mut fixes = Vec::new();
    for r in rules::all() {
        if r.reads
            .iter()
            .any(|read| name_forms.iter().any(|n| n == read))
        {
            rule_ids.push(r.id);
            // Two rules reading one counter often share a fix: list it once.
            for fix in r.fix {
                if !fixes.contains(fix) {
                    fixes.push(fix);
                }
            }
        }
    }
    (rule_ids, fixes)
}

fn explain_counter(group: &str, name: &str) -> Option<Explanation> {
    let (meaning, interpretation) = describe_counter(group, name)?;
    let canonical = format!("{group}.{name}");
    let (related_rules, fixes) = related(&[canonical.clone(), name.to_string()]);
    Some(Explanation {
        name: canonical,
        kind: if group == "softnet_stat" {
            "softnet_stat column"
        } else {
            "counter"
        },
        layer: layer_of_group(group),
        meaning,
        interpretation,
        related_rules,
        fixes,
    })
}

fn explain_sysctl(name: &str) -> Option<Explanation> {
    let (n, meaning, when) = sysctls::SYSCTLS.iter().find(|(n, _, _)| *n == name)?;
    let layer = if n.starts_with("net.core.netdev")
        || n.contains("dev_weight")
        || n.contains("flow_limit")
        || n.contains("rps_")
    {
        Layer::Softirq
    } else if n.starts_with("net.netfilter") {
        Layer::Conntrack
    } else if n.contains(".udp_") {
        Layer::Udp
    } else if n.contains(".tcp_") || n.contains("somaxconn") || n.contains("port_range") {
        Layer::Tcp
    } else if n.contains("default_qdisc") {
        Layer::Qdisc
    } else if n.starts_with("net.ipv4.ip")
        || n.contains("rp_filter")
        || n.contains("icmp")
        || n.starts_with("net.ipv6")
    {
        Layer::Ip
    } else {
        Layer::Sockets
    };
    let (related_rules, fixes) = related(&[n.to_string()]);
    Some(Explanation {
        name: n.to_string(),
        kind: "sysctl",
        layer,
        meaning: meaning.to_string(),
        interpretation: when.to_string(),
        related_rules,
        fixes,
    })
}

/// Every name explain knows by table (families are open-ended), for suggestions.
fn known_names() -> Vec<String> {
    let mut names: Vec<String> = counters::TABLES
        .iter()
        .flat_map(|t| t.iter())
        .map(|(g, n, _, _)| format!("{g}.{n}"))
        .collect();
    names.extend(sysctls::SYSCTLS.iter().map(|(n, _, _)| n.to_string()));
    names.extend(DROP_REASONS.iter().map(|r| r.name.to_string()));
    names.extend(
        crate::inventory::SIGNALS
            .iter()
            .map(|s| format!("{}.{}", s.source, s.name)),
    );
    names
}

fn explain_signal(s: &crate::inventory::Signal) -> Explanation {
    use crate::inventory::Coverage;
    let (covered, related_rules): (String, Vec<&'static str>) = match s.coverage {
        Coverage::Rules(rules) => (format!("read by {}", rules.join(", ")), rules.to_vec()),
        Coverage::DropReason(r) => (
            format!(
                "the same loss is counted by the kernel drop reason {r} (netsight explain {r})"
            ),
            Vec::new(),
        ),
        Coverage::None(why) => (why.to_string(), Vec::new()),
    };
    Explanation {
        name: format!("{}.{}", s.source, s.name),
        kind: match s.source {
            "link" => "link counter",
            "ethtool" => "driver counter (ethtool -S)",
            "softnet" => "softnet_stat column",
            "qdisc" => "qdisc counter",
            "conntrack" => "conntrack value",
            _ => "/proc/net/stat column",
        },
        layer: s.layer,
        meaning: s.meaning.to_string(),
        interpretation: format!("a {} signal; {covered}", s.kind.as_str()),
        related_rules,
        fixes: Vec::new(),
    }
}

fn explain_drop_reason(r: &DropReason) -> Explanation {
    let kind = r.kind.as_str();
    Explanation {
        name: r.name.to_string(),
        kind: "drop reason",
        layer: r.layer,
        meaning: r.meaning.to_string(),
        interpretation: format!(
            "a {kind} signal: kfree_skb drops with this reason are counted by doctor{}",
            if r.rules.is_empty() {
                "; no counter-based rule covers it, so it is a finding of its own when significant"
                    .to_string()
            } else {
                format!(" and attached to {}", r.rules.join(", "))
            }
        ),
        related_rules: r.rules.to_vec(),
        fixes: vec![r.fix],
    }
}

pub fn explain(query: &str) -> Result<Explanation, ExplainError> {
    let q = query.trim();
    // Sysctls: dotted or slashed, with or without "net.".
    let dotted = netsight_kernel::sysctl::name_from_path(q);
    for candidate in [
        dotted.clone(),
        format!("net.{dotted}"),
        format!("net.ipv4.{dotted}"),
        format!("net.core.{dotted}"),
    ] {
        if let Some(e) = explain_sysctl(&candidate) {
            return Ok(e);
        }
    }
    // A kernel drop reason: NO_SOCKET or SKB_DROP_REASON_NO_SOCKET.
    if let Some(r) = crate::drop_reasons::find(q) {
        return Ok(explain_drop_reason(r));
    }
    // "Group.Name".
    if let Some((g, n)) = q.split_once('.') {
        if let Some(e) = explain_counter(g, n) {
            return Ok(e);
        }
    }
    // nstat's "GroupName": the longest group prefix that resolves ("UdpLite6" before "Udp").
    let mut by_length = GROUPS;
    by_length.sort_by_key(|g| std::cmp::Reverse(g.len()));
    for g in by_length
        .iter()
        .filter(|g| q.len() > g.len() && q.starts_with(**g))
    {
        if let Some(e) = explain_counter(g, &q[g.len()..]) {
            return Ok(e);
        }
    }
    // A bare counter name, if only one group has it.
    let mut hits: Vec<Explanation> = GROUPS
        .iter()
        .filter_map(|g| explain_counter(g, q))
        .collect();
    if hits.len() > 1 {
        return Err(ExplainError::Ambiguous {
            name: q.to_string(),
            candidates: hits.into_iter().map(|e| e.name).collect(),
        });
    }
    if let Some(e) = hits.pop() {
        return Ok(e);
    }
    // Link stats, qdisc, conntrack and /proc/net/stat columns.
    if let Some(s) = crate::inventory::lookup(q) {
        return Ok(explain_signal(s));
    }
    Err(ExplainError::Unknown {
        name: q.to_string(),
        suggestions: suggestions(q),
    })
}

/// The three known names closest to `q` (edit distance, case-insensitive).
fn suggestions(q: &str) -> Vec<String> {
    let ql = q.to_ascii_lowercase();
    let mut scored: Vec<(usize, String)> = known_names()
        .into_iter()
        .map(|n| {
            let short = n.rsplit('.').next().unwrap_or(&n).to_ascii_lowercase();
            let d = strsim::levenshtein(&ql, &short)
                .min(strsim::levenshtein(&ql, &n.to_ascii_lowercase()));
            (d, n)
        })
        .collect();
    scored.sort();
    let limit = (q.len() / 2).max(2);
    scored
        .into_iter()
        .filter(|(d, _)| *d <= limit)
        .take(3)
        .map(|(_, n)| n)
        .collect()
}

#[cfg(test)]
mod tests;
