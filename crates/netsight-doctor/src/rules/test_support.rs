//! Synthetic snapshot pairs for rule tests: a quiet 6.18 host (the recorded
//! fixture), then counters moved by exactly what a test says, over 10 seconds.

use netsight_kernel::{LiveSource, Snapshot};

use super::{all, Context, Hit};
use netsight_report::Severity;

pub const INTERVAL_S: f64 = 10.0;

pub fn quiet() -> Snapshot {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../netsight-kernel/tests/fixtures/proc/debian12-6.18.44");
    let mut s = Snapshot::from_raw(&LiveSource::with_roots(&root, root.join("no-sys")).collect());
    s.meta.monotonic_ns = 1_000_000_000;
    for (name, value) in [
        ("net.core.somaxconn", "4096"),
        ("net.core.netdev_max_backlog", "1000"),
        ("net.core.netdev_budget", "300"),
        ("net.core.rmem_max", "212992"),
        ("net.ipv4.tcp_mem", "287898 383867 575796"),
        ("net.ipv4.tcp_rmem", "4096 131072 6291456"),
        ("net.ipv4.tcp_wmem", "4096 16384 4194304"),
        ("net.ipv4.tcp_max_orphans", "131072"),
        ("net.ipv4.tcp_max_tw_buckets", "131072"),
        ("net.ipv4.ip_local_port_range", "32768 60999"),
        ("net.ipv4.tcp_max_syn_backlog", "2048"),
        ("net.ipv4.tcp_syncookies", "1"),
        ("net.ipv4.tcp_keepalive_time", "600"),
        ("net.ipv4.tcp_window_scaling", "1"),
        ("net.ipv4.tcp_sack", "1"),
        ("net.ipv4.tcp_timestamps", "1"),
        ("net.ipv4.conf.all.rp_filter", "2"),
        ("net.ipv4.tcp_congestion_control", "cubic"),
        ("net.core.default_qdisc", "pfifo_fast"),
    ] {
        s.sysctls.insert(name.into(), value.into());
    }
    s
}

/// A pair (prev, cur) where `change` edits the later snapshot.
pub fn pair(change: impl FnOnce(&mut Snapshot)) -> (Snapshot, Snapshot) {
    let prev = quiet();
    let mut cur = prev.clone();
    cur.meta.monotonic_ns += (INTERVAL_S * 1e9) as u64;
    change(&mut cur);
    (prev, cur)
}

/// Adds `by` to a MIB counter of `s`.
pub fn bump(s: &mut Snapshot, group: &str, name: &str, by: i64) {
    *s.mib
        .entry(group.into())
        .or_default()
        .entry(name.into())
        .or_insert(0) += by;
}

/// The hits of rule `id` on the pair.
pub fn run(id: &str, prev: &Snapshot, cur: &Snapshot) -> Vec<Hit> {
    let rates = netsight_kernel::delta(prev, cur);
    let summary = cur
        .sockets
        .as_ref()
        .map(|t| netsight_kernel::sockets::summary::summarize(t, &cur.sockstat, &cur.sysctls));
    let ctx = Context {
        prev,
        cur,
        rates: &rates,
        sockets: summary.as_ref(),
    };
    let rule = all()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no rule {id}"));
    (rule.check)(&ctx)
}

pub fn severity_of(id: &str, change: impl FnOnce(&mut Snapshot)) -> Option<Severity> {
    let (prev, cur) = pair(change);
    run(id, &prev, &cur).iter().map(|h| h.severity).max()
}

/// A finding with nothing but its rule, layer and severity (for tests of what is
/// done with findings: grouping, fix rewriting, drop attachment).
pub fn bare_finding(
    rule: &str,
    layer: netsight_report::Layer,
    severity: Severity,
) -> netsight_report::Finding {
    netsight_report::Finding {
        rule_id: rule.into(),
        layer,
        use_kind: netsight_report::UseKind::Errors,
        severity,
        title: rule.into(),
        subject: None,
        evidence: vec![],
        why: String::new(),
        confirm: vec![],
        fix: vec![],
        impact: 1.0,
        symptoms: vec![],
    }
}
