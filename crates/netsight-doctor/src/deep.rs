//! `doctor --deep`: what the eBPF tracers saw during the interval (drop reasons,
//! retransmitting flows), attached as evidence to the findings they explain.
//! The tracers run in the binary; this module only takes their counts.

use netsight_report::{DeepEvidence, Evidence, Report};

/// Which findings a kfree_skb drop reason explains: the reason is attached only
/// to them. A reason with no entry explains none of today's rules (issue 17 gives
/// those findings of their own). Reasons as in include/net/dropreason-core.h.
pub const DROP_REASON_RULES: &[(&str, &[&str])] = &[
    (
        "SOCKET_RCVBUFF",
        &["udp.receive_buffer_errors", "tcp.receive_pruning"],
    ),
    ("SOCKET_BACKLOG", &["tcp.receive_pruning"]),
    ("PROTO_MEM", &["tcp.memory", "udp.receive_buffer_errors"]),
    ("NO_SOCKET", &["udp.no_port", "tcp.resets_sent"]),
    ("UDP_CSUM", &["udp.checksum_errors"]),
    (
        "TCP_LISTEN_OVERFLOW",
        &[
            "tcp.listen_overflows",
            "tcp.listen_drops",
            "sockets.accept_queue_full",
        ],
    ),
    ("TCP_OFO_QUEUE_PRUNE", &["tcp.receive_pruning"]),
    ("TCP_OFO_DROP", &["tcp.receive_pruning"]),
    ("IP_CSUM", &["ip.input_errors"]),
    ("IP_INHDR", &["ip.input_errors"]),
    ("IP_INADDRERRORS", &["ip.input_errors"]),
    ("IP_INNOROUTES", &["ip.no_route"]),
    ("IP_OUTNOROUTES", &["ip.no_route"]),
    ("IP_RPFILTER", &["config.rp_filter_strict"]),
    ("FRAG_REASM_TIMEOUT", &["ip.reassembly_failures"]),
    ("DUP_FRAG", &["ip.reassembly_failures"]),
    ("FRAG_TOO_FAR", &["ip.reassembly_failures"]),
    ("PKT_TOO_BIG", &["ip.fragmentation_failures"]),
    ("QDISC_DROP", &["qdisc.drops"]),
    ("QDISC_OVERLIMIT", &["qdisc.drops", "qdisc.overlimits"]),
    ("QDISC_CONGESTED", &["qdisc.drops"]),
    ("FQ_FLOW_LIMIT", &["qdisc.drops"]),
    ("FQ_BAND_LIMIT", &["qdisc.drops"]),
    ("FQ_HORIZON_LIMIT", &["qdisc.drops"]),
    ("CAKE_FLOOD", &["qdisc.drops"]),
    ("CPU_BACKLOG", &["softnet.dropped"]),
    ("FULL_RING", &["nic.tx_drops", "nic.driver_drops"]),
    ("DEV_READY", &["nic.tx_drops", "nic.no_carrier"]),
    ("NETFILTER_DROP", &["conntrack.drops"]),
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
        let explains = |reason: &str| {
            DROP_REASON_RULES
                .iter()
                .any(|(r, rules)| *r == reason && rules.contains(&f.rule_id.as_str()))
        };
        let reasons = deep
            .drop_reasons
            .iter()
            .filter(|(reason, _)| explains(reason));
        {
            for (reason, n) in reasons.take(TOP) {
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
        // NO_SOCKET does not explain a receive-buffer overflow: not attached there.
        assert!(!udp.evidence.iter().any(|e| e.metric.contains("NO_SOCKET")));
        assert!(report.deep.is_some());
    }

    #[test]
    fn every_rule_the_reason_map_names_exists() {
        let ids: Vec<&str> = crate::rules::all().iter().map(|r| r.id).collect();
        for (reason, rules) in DROP_REASON_RULES {
            for rule in *rules {
                assert!(ids.contains(rule), "{reason} names unknown rule {rule}");
            }
        }
        for rule in RETRANS_RULES {
            assert!(ids.contains(rule), "unknown rule {rule}");
        }
    }
}
