//! Connection tracking: table fill and drops.

use super::{grade, Context, Hit, Rule};
use netsight_report::{Evidence, Layer, Severity, UseKind};

pub static RULES: &[Rule] = &[
    Rule {
        id: "conntrack.table_fill",
        layer: Layer::Conntrack,
        kind: UseKind::Utilization,
        title: "Connection-tracking table nearly full",
        thresholds: "nf_conntrack_count >= 80 % of nf_conntrack_max warns; >= 90 % critical (netdata warns at 90 %)",
        why: "Every flow through netfilter with conntrack (NAT, stateful rules) takes an entry. When the table is full new flows are dropped ('nf_conntrack: table full, dropping packet') while established ones keep working: new connections fail mysteriously.",
        confirm: &["sysctl net.netfilter.nf_conntrack_count net.netfilter.nf_conntrack_max", "conntrack -S", "netsight stat CONNTRACK 1 10"],
        fix: &["Shorten idle entries: sysctl -w net.netfilter.nf_conntrack_tcp_timeout_established=86400 (default 5 days)", "Skip tracking for flows that need none (iptables -t raw ... -j NOTRACK)"],
        reads: &["net.netfilter.nf_conntrack_count", "net.netfilter.nf_conntrack_max"],
        check: table_fill,
    },
    Rule {
        id: "conntrack.drops",
        layer: Layer::Conntrack,
        kind: UseKind::Errors,
        title: "Connection tracking dropped packets",
        thresholds: "any increase of drop, early_drop or insert_failed (conntrack -S) warns; >= 10/s critical",
        why: "drop/early_drop count packets refused because the table was full (early_drop evicts unassured entries first); insert_failed counts races where two packets tried to create the same entry (common with parallel UDP like DNS on NAT).",
        confirm: &["conntrack -S", "dmesg | grep conntrack"],
        fix: &["Full table: see conntrack.table_fill", "insert_failed with DNS over NAT: use TCP for DNS or 'options single-request-reopen' in resolv.conf"],
        reads: &["nf_conntrack stat drop", "early_drop", "insert_failed"],
        check: drops,
    },
];

fn table_fill(ctx: &Context) -> Vec<Hit> {
    let Some(ct) = ctx.cur.conntrack.as_ref() else {
        return Vec::new();
    };
    let (Some(count), Some(max)) = (ct.count, ct.max) else {
        return Vec::new();
    };
    if max == 0 {
        return Vec::new();
    }
    let percent = count as f64 * 100.0 / max as f64;
    let Some(severity) = grade(percent, 80.0, Some(90.0)) else {
        return Vec::new();
    };
    vec![Hit::new(
        severity,
        vec![
            Evidence::new(
                "nf_conntrack_count / nf_conntrack_max",
                percent,
                "percent",
                Some(80.0),
            ),
            Evidence::new(
                "net.netfilter.nf_conntrack_count",
                count as f64,
                "entries",
                None,
            ),
            Evidence::new(
                "net.netfilter.nf_conntrack_max",
                max as f64,
                "entries",
                None,
            ),
        ],
        percent / 80.0,
    )
    .fix_first(format!(
        "sysctl -w net.netfilter.nf_conntrack_max={}",
        max.saturating_mul(2).max(262_144)
    ))]
}

fn drops(ctx: &Context) -> Vec<Hit> {
    let Some(ct) = ctx.rates.conntrack.as_ref() else {
        return Vec::new();
    };
    let secs = ctx.rates.interval_s;
    let evidence: Vec<Evidence> = ["drop", "early_drop", "insert_failed"]
        .iter()
        .filter_map(|n| {
            let rate = *ct.stats_per_s.get(*n)?;
            (rate * secs >= 1.0)
                .then(|| Evidence::new(format!("nf_conntrack {n}"), rate, "per_s", Some(0.0)))
        })
        .collect();
    if evidence.is_empty() {
        return Vec::new();
    }
    let total: f64 = evidence.iter().map(|e| e.value).sum();
    let severity = if total >= 10.0 {
        Severity::Critical
    } else {
        Severity::Warning
    };
    vec![Hit::new(severity, evidence, 1.0 + total)]
}
