//! `doctor --deep`: what the eBPF tracers saw during the interval (drop reasons,
//! retransmitting flows), attached as evidence to the findings they explain.
//! The tracers run in the binary; this module only takes their counts.

use serde::{Deserialize, Serialize};

use crate::finding::{Evidence, Report};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeepEvidence {
    pub seconds: f64,
    /// kfree_skb drop reasons by count, most frequent first.
    pub drop_reasons: Vec<(String, u64)>,
    /// Dropping kernel functions by count.
    pub drop_locations: Vec<(String, u64)>,
    /// Retransmitting connections ("a:p -> b:q") by count.
    pub retrans_flows: Vec<(String, u64)>,
    /// Retransmissions by kind (rto, fast, other).
    pub retrans_kinds: Vec<(String, u64)>,
    /// Events the tracers lost (ring buffer full); counts are short by this much.
    pub lost_events: u64,
    /// Why a tracer could not run (privilege, BTF), if one could not.
    pub unavailable: Vec<String>,
}

/// Findings about dropped packets, which drop reasons explain.
const DROP_RULES: &[&str] = &[
    "nic.rx_drops",
    "nic.tx_drops",
    "softnet.dropped",
    "qdisc.drops",
    "ip.reassembly_failures",
    "ip.fragmentation_failures",
    "ip.input_errors",
    "ip.no_route",
    "tcp.listen_overflows",
    "tcp.listen_drops",
    "tcp.syn_queue_full",
    "tcp.receive_pruning",
    "udp.receive_buffer_errors",
    "udp.send_buffer_errors",
    "udp.checksum_errors",
    "udp.no_port",
    "conntrack.drops",
];

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
        if DROP_RULES.contains(&f.rule_id.as_str()) {
            for (reason, n) in deep.drop_reasons.iter().take(TOP) {
                f.evidence.push(Evidence::new(
                    format!("traced drop reason {reason}"),
                    per_s(*n),
                    "per_s",
                    None,
                ));
            }
        }
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
                drop_reasons: vec![("SOCKET_RCVBUFF".into(), 50), ("NO_SOCKET".into(), 3)],
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
        let e = udp
            .evidence
            .iter()
            .find(|e| e.metric.contains("SOCKET_RCVBUFF"))
            .unwrap();
        assert_eq!(e.value, 5.0);
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
}
