//! `doctor --deep`: the retransmitting flows the eBPF tracer saw during the
//! interval, attached as evidence to the retransmission findings. (Drop reasons
//! are counted on every privileged run: see `drop_reasons`.) The tracer runs in
//! the binary; this module only takes its counts.

use netsight_report::{DeepEvidence, Evidence, Report};

/// Findings about retransmissions, which retransmitting flows explain.
const RETRANS_RULES: &[&str] = &[
    "tcp.retransmissions",
    "tcp.rto_timeouts",
    "tcp.syn_retransmits",
];

/// How many traced items each finding gets.
const TOP: usize = 3;

/// Adds the traced evidence to matching findings and keeps the whole record on the report.
pub fn attach(report: &mut Report, deep: DeepEvidence) {
    let per_s = |n: u64| n as f64 / deep.seconds.max(f64::EPSILON);
    for f in &mut report.findings {
        if RETRANS_RULES.contains(&f.rule_id.as_str()) {
            for (flow, n) in deep.retrans_flows.iter().take(TOP) {
                f.evidence.push(Evidence::new(
                    format!("traced retransmissions {flow}"),
                    per_s(*n),
                    "per_s",
                    None,
                ));
            }
            for (kind, n) in &deep.retrans_kinds {
                f.evidence.push(Evidence::new(
                    format!("traced retransmissions of kind {kind}"),
                    per_s(*n),
                    "per_s",
                    None,
                ));
            }
        }
    }
    report.deep = Some(deep);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::{bump, pair};

    #[test]
    fn traced_evidence_lands_on_matching_findings() {
        let (prev, cur) = pair(|s| {
            bump(s, "Udp", "RcvbufErrors", 50);
            bump(s, "TcpExt", "TCPTimeouts", 100);
        });
        let mut report = crate::diagnose(&prev, &cur);
        attach(
            &mut report,
            DeepEvidence {
                seconds: 10.0,
                retrans_flows: vec![("10.0.0.1:5 -> 10.0.0.2:80".into(), 100)],
                retrans_kinds: vec![("rto".into(), 100)],
                ..Default::default()
            },
        );
        let udp = report
            .findings
            .iter()
            .find(|f| f.rule_id == "udp.receive_buffer_errors")
            .unwrap();
        let rto = report
            .findings
            .iter()
            .find(|f| f.rule_id == "tcp.rto_timeouts")
            .unwrap();
        assert!(rto
            .evidence
            .iter()
            .any(|e| e.metric.contains("10.0.0.2:80")));
        assert!(rto.evidence.iter().any(|e| e.metric.ends_with("kind rto")));
        assert!(!udp
            .evidence
            .iter()
            .any(|e| e.metric.contains("retransmissions")));
        assert!(report.deep.is_some());
    }

    #[test]
    fn every_retransmission_rule_exists() {
        let ids: Vec<&str> = crate::rules::all().iter().map(|r| r.id).collect();
        for rule in RETRANS_RULES {
            assert!(ids.contains(rule), "unknown rule {rule}");
        }
    }
}
