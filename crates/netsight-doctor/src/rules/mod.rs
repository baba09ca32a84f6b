//! Rules: data (id, layer, USE kind, thresholds, explanation, fix) plus one check
//! function over a snapshot pair. Rules never print; they return hits.

mod config;
mod conntrack;
mod filter;
mod ip;
pub(crate) mod nic;
mod qdisc;
mod sockets;
mod softirq;
mod tcp;
mod udp;

use netsight_kernel::delta::Rates;
use netsight_kernel::sockets::summary::SocketSummary;
use netsight_kernel::{sysctl, Snapshot};

use netsight_report::{Evidence, Layer, Severity, UseKind};

/// Everything a check may read: both snapshots, their rates, and (when sockets
/// were collected) the socket summary of the second snapshot.
#[derive(Debug)]
pub struct Context<'a> {
    pub prev: &'a Snapshot,
    pub cur: &'a Snapshot,
    pub rates: &'a Rates,
    pub sockets: Option<&'a SocketSummary>,
}

impl Context<'_> {
    /// Per-second rate of a MIB counter.
    pub fn rate(&self, group: &str, name: &str) -> f64 {
        self.rates.mib_rate(group, name)
    }
    /// How much a MIB counter rose during the interval.
    pub fn increase(&self, group: &str, name: &str) -> f64 {
        self.rate(group, name) * self.rates.interval_s
    }
    pub fn sysctl_str(&self, name: &str) -> Option<&str> {
        self.cur.sysctls.get(name).map(String::as_str)
    }
    /// The sysctl's numbers ("4096 131072 6291456" → three).
    pub fn sysctl_values(&self, name: &str) -> Vec<i64> {
        self.sysctl_str(name)
            .map(sysctl::numbers)
            .unwrap_or_default()
    }
    pub fn sysctl(&self, name: &str) -> Option<i64> {
        self.sysctl_values(name).first().copied()
    }
    pub fn sockstat(&self, group: &str, name: &str) -> Option<i64> {
        self.cur.sockstat.get(group)?.get(name).copied()
    }
}

/// A rule's verdict on one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub severity: Severity,
    pub subject: Option<String>,
    pub evidence: Vec<Evidence>,
    /// How far past the warning threshold (value / threshold); ranks findings.
    pub impact: f64,
    /// Fix steps specific to this hit (a computed value), shown before the rule's own.
    pub extra_fix: Vec<String>,
}

impl Hit {
    pub fn new(severity: Severity, evidence: Vec<Evidence>, impact: f64) -> Hit {
        Hit {
            severity,
            subject: None,
            evidence,
            impact,
            extra_fix: Vec::new(),
        }
    }
    pub fn about(mut self, subject: impl Into<String>) -> Hit {
        self.subject = Some(subject.into());
        self
    }
    pub fn fix_first(mut self, step: String) -> Hit {
        self.extra_fix.push(step);
        self
    }
}

#[derive(Debug)]
pub struct Rule {
    pub id: &'static str,
    pub layer: Layer,
    pub kind: UseKind,
    pub title: &'static str,
    /// The thresholds, in words, as `--list-rules` shows them.
    pub thresholds: &'static str,
    /// The concept: why this matters, in two or three sentences.
    pub why: &'static str,
    pub confirm: &'static [&'static str],
    pub fix: &'static [&'static str],
    /// Counters and sysctls the rule reads (for `explain`).
    pub reads: &'static [&'static str],
    pub check: fn(&Context) -> Vec<Hit>,
}

/// `value` graded against warning and critical thresholds (`>=`).
pub fn grade(value: f64, warn: f64, crit: Option<f64>) -> Option<Severity> {
    if crit.is_some_and(|c| value >= c) {
        Some(Severity::Critical)
    } else if value >= warn {
        Some(Severity::Warning)
    } else {
        None
    }
}

/// The common shape: a MIB counter that should not rise at all. One event in
/// the interval warns; `crit_per_s` (if any) makes it critical.
pub fn counter_must_not_rise(
    ctx: &Context,
    group: &str,
    name: &str,
    crit_per_s: Option<f64>,
) -> Vec<Hit> {
    let metric = format!("{group}.{name}");
    events_must_not_happen(
        &metric,
        ctx.rate(group, name),
        ctx.increase(group, name),
        crit_per_s,
    )
}

/// Events (`increase` in the interval, `rate` per second) that should not happen.
pub fn events_must_not_happen(
    metric: &str,
    rate: f64,
    increase: f64,
    crit_per_s: Option<f64>,
) -> Vec<Hit> {
    if increase < 1.0 {
        return Vec::new();
    }
    let severity = if crit_per_s.is_some_and(|c| rate >= c) {
        Severity::Critical
    } else {
        Severity::Warning
    };
    vec![Hit::new(
        severity,
        vec![
            Evidence::new(metric, rate, "per_s", Some(0.0)),
            Evidence::new(format!("{metric} increase"), increase, "count", None),
        ],
        1.0 + rate,
    )]
}

/// Every rule, bottom of the stack first.
pub fn all() -> Vec<&'static Rule> {
    [
        nic::RULES,
        softirq::RULES,
        qdisc::RULES,
        ip::RULES,
        tcp::RULES,
        udp::RULES,
        sockets::RULES,
        conntrack::RULES,
        filter::RULES,
        config::RULES,
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

/// A rule's description without its check, for `--list-rules --json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuleInfo {
    pub id: &'static str,
    pub layer: Layer,
    pub use_kind: UseKind,
    pub title: &'static str,
    pub thresholds: &'static str,
    pub why: &'static str,
    pub confirm: &'static [&'static str],
    pub fix: &'static [&'static str],
    pub reads: &'static [&'static str],
}

impl Rule {
    pub fn info(&self) -> RuleInfo {
        RuleInfo {
            id: self.id,
            layer: self.layer,
            use_kind: self.kind,
            title: self.title,
            thresholds: self.thresholds,
            why: self.why,
            confirm: self.confirm,
            fix: self.fix,
            reads: self.reads,
        }
    }
}
