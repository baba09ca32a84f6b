//! netsight-doctor: the USE-method diagnosis. Two snapshots → rates → every rule
//! → ranked findings with evidence, plus a workload summary. Nothing here reads
//! the kernel or prints: snapshots come in, plain data goes out.

pub mod causes;
pub mod deep;
pub mod drop_reasons;
pub mod explain;
pub mod fixes;
pub mod inventory;
pub mod rules;
pub mod workload;

use netsight_kernel::sockets::summary::{summarize, SocketSummary};
use netsight_kernel::{delta, Rates, Snapshot};

use netsight_report::{Finding, Report, Skipped};

/// Diagnoses the interval between `prev` and `cur`.
fn finding_of(rule: &rules::Rule, hit: rules::Hit) -> Finding {
    let mut fix: Vec<String> = hit.extra_fix;
    fix.extend(rule.fix.iter().map(|s| s.to_string()));
    Finding {
        rule_id: rule.id.to_string(),
        layer: rule.layer,
        use_kind: rule.kind,
        severity: hit.severity,
        title: rule.title.to_string(),
        subject: hit.subject,
        evidence: hit.evidence,
        why: rule.why.to_string(),
        confirm: rule.confirm.iter().map(|s| s.to_string()).collect(),
        fix,
        impact: hit.impact,
        symptoms: Vec::new(),
    }
}

/// Worst first; within a severity, furthest past its threshold first.
pub fn rank(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.impact.total_cmp(&a.impact))
            .then(a.rule_id.cmp(&b.rule_id))
    });
}

/// Checks across namespaces (`doctor --netns all`): veth pairs whose two ends,
/// in different namespaces, disagree. `views` are (namespace label, its inode,
/// its links).
pub fn across_namespaces(
    views: &[(String, Option<u32>, &[netsight_kernel::link::Link])],
) -> Vec<Finding> {
    let ends: Vec<rules::nic::LinkEnd> = views
        .iter()
        .flat_map(|(namespace, inode, links)| {
            links.iter().map(move |link| rules::nic::LinkEnd {
                namespace: namespace.as_str(),
                inode: *inode,
                link,
            })
        })
        .collect();
    let Some(rule) = rules::all()
        .into_iter()
        .find(|r| r.id == "nic.veth_mtu_mismatch")
    else {
        return Vec::new();
    };
    rules::nic::veth_mtu_mismatches(&ends, true)
        .into_iter()
        .map(|hit| finding_of(rule, hit))
        .collect()
}

pub fn diagnose(prev: &Snapshot, cur: &Snapshot) -> Report {
    let rates = delta(prev, cur);
    let socket_summary = socket_summary(cur);
    let findings = findings_over(prev, cur, &rates, socket_summary.as_ref());

    let mut skipped: Vec<Skipped> = cur
        .unavailable
        .iter()
        .filter(|(source, why)| is_relevant_absence(source, why))
        .map(|(source, reason)| Skipped {
            source: source.clone(),
            reason: reason.clone(),
        })
        .collect();
    for r in &rates.counter_resets {
        skipped.push(Skipped {
            source: format!("{} {}", r.source, r.counter),
            reason: format!(
                "counter went down from {} to {} (reset: module reload, device re-created, or snapshots from two boots): not rated",
                r.before, r.after
            ),
        });
    }
    if cur.sockets.is_none() {
        skipped.push(Skipped {
            source: "sockets".into(),
            reason: "no socket table in this snapshot: sockets.* rules did not run".into(),
        });
    }

    Report {
        findings,
        workload: workload::summarize(cur, &rates),
        skipped,
        rules_run: rules::all().len(),
        deep: None,
        kernel_drops: None,
    }
}

/// The summary of `cur`'s socket table the socket rules read.
pub fn socket_summary(cur: &Snapshot) -> Option<SocketSummary> {
    cur.sockets
        .as_ref()
        .map(|t| summarize(t, &cur.sockstat, &cur.sysctls))
}

/// `diagnose`'s findings alone, with the socket summary given: a caller that
/// shows the same socket table over many refreshes (top) summarizes it once.
pub fn findings(prev: &Snapshot, cur: &Snapshot, sockets: Option<&SocketSummary>) -> Vec<Finding> {
    findings_over(prev, cur, &delta(prev, cur), sockets)
}

fn findings_over(
    prev: &Snapshot,
    cur: &Snapshot,
    rates: &Rates,
    sockets: Option<&SocketSummary>,
) -> Vec<Finding> {
    let ctx = rules::Context {
        prev,
        cur,
        rates,
        sockets,
    };
    let all = rules::all();
    let mut findings: Vec<Finding> = Vec::new();
    for rule in &all {
        for hit in (rule.check)(&ctx) {
            findings.push(finding_of(rule, hit));
        }
    }
    fixes::drop_what_is_in_place(&mut findings, &cur.sysctls);
    causes::fold(&mut findings);
    rank(&mut findings);
    findings
}

/// Why a pair of snapshots cannot be diagnosed at all: none of the sources the
/// rules read (MIB counters, links, softnet, sysctls) is there in both. A report
/// saying "no problems" would then be a lie; the caller says "could not run".
pub fn cannot_diagnose(prev: &Snapshot, cur: &Snapshot) -> Option<String> {
    let usable = |s: &Snapshot| {
        !(s.mib.is_empty() && s.links.is_empty() && s.softnet.is_empty() && s.sysctls.is_empty())
    };
    if usable(prev) && usable(cur) {
        return None;
    }
    let which = if usable(prev) { cur } else { prev };
    let mut why: Vec<String> = which
        .unavailable
        .iter()
        .take(12)
        .map(|(k, r)| format!("{k}: {r}"))
        .collect();
    if why.is_empty() {
        why.push("every source is empty".into());
    }
    Some(format!(
        "nothing to diagnose: no MIB counters, links, softnet or sysctls could be read, so no layer was checked ({})",
        why.join("; ")
    ))
}

/// Absences that are normal answers (a driver without a speed, a sysctl this
/// kernel removed, ethtool "not supported") are not worth reporting as skipped.
fn is_relevant_absence(source: &str, why: &str) -> bool {
    let normal = why == netsight_kernel::support::NOT_SUPPORTED
        || (source.starts_with("sys/class/net/") && why.contains("not reported by the driver"))
        || source.ends_with("tcp_tw_recycle");
    !normal
}
