//! Symptoms are grouped under their cause: when a finding that explains another
//! is present, the explained one moves into its `symptoms` (evidence kept), so
//! the root cause is what the reader sees first. The relation is data.

use netsight_report::Finding;

/// A full accept or SYN queue: clients' SYNs are dropped and retried.
const LISTEN_CAUSES: &[&str] = &[
    "sockets.accept_queue_full",
    "tcp.listen_overflows",
    "tcp.syn_queue_full",
    "sockets.syn_backlog",
];

/// Packets lost on this host: TCP retransmits what was lost.
const LOSS_CAUSES: &[&str] = &[
    "nic.rx_drops",
    "nic.tx_drops",
    "nic.driver_drops",
    "qdisc.drops",
    "softnet.dropped",
    "filter.rule_drops",
    "drops.netfilter_drop",
    "drops.neigh_failed",
    "drops.neigh_queuefull",
    "drops.cpu_backlog",
    "drops.full_ring",
];

/// Unanswered connection attempts that a firewall or dead next hop explains.
const UNANSWERED_CAUSES: &[&str] = &[
    "drops.netfilter_drop",
    "drops.neigh_failed",
    "drops.neigh_queuefull",
];

/// (symptom, the findings that explain it, in order of preference).
pub const SYMPTOM_OF: &[(&str, &[&[&str]])] = &[
    ("tcp.listen_overflows", &[&["sockets.accept_queue_full"]]),
    (
        "tcp.listen_drops",
        &[&[
            "sockets.accept_queue_full",
            "tcp.listen_overflows",
            "tcp.syn_queue_full",
        ]],
    ),
    ("tcp.syn_retransmits", &[LISTEN_CAUSES, UNANSWERED_CAUSES]),
    ("tcp.connect_failures", &[LISTEN_CAUSES, UNANSWERED_CAUSES]),
    ("tcp.rto_timeouts", &[LISTEN_CAUSES, LOSS_CAUSES]),
    ("tcp.retransmissions", &[LOSS_CAUSES]),
];

fn causes_of(rule: &str) -> impl Iterator<Item = &'static str> + '_ {
    SYMPTOM_OF
        .iter()
        .filter(move |(s, _)| *s == rule)
        .flat_map(|(_, groups)| groups.iter().flat_map(|g| g.iter().copied()))
}

/// Moves each symptom under the first of its causes that is present.
pub fn fold(findings: &mut Vec<Finding>) {
    loop {
        let mv = findings.iter().enumerate().find_map(|(i, f)| {
            causes_of(&f.rule_id).find_map(|cause| {
                findings
                    .iter()
                    .position(|c| c.rule_id == cause)
                    .filter(|&j| j != i)
                    .map(|j| (i, j))
            })
        });
        let Some((symptom, cause)) = mv else {
            return;
        };
        let s = findings.remove(symptom);
        let cause = if cause > symptom { cause - 1 } else { cause };
        findings[cause].symptoms.push(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsight_report::{Layer, Severity};

    fn f(rule: &str, severity: Severity) -> Finding {
        crate::rules::test_support::bare_finding(rule, Layer::Tcp, severity)
    }

    #[test]
    fn an_accept_queue_fault_is_one_finding_with_its_symptoms() {
        let mut found = vec![
            f("tcp.syn_retransmits", Severity::Critical),
            f("tcp.rto_timeouts", Severity::Critical),
            f("tcp.listen_overflows", Severity::Warning),
            f("sockets.accept_queue_full", Severity::Critical),
            f("config.keepalive_default", Severity::Info),
        ];
        fold(&mut found);
        let top: Vec<&str> = found.iter().map(|f| f.rule_id.as_str()).collect();
        assert_eq!(
            top,
            ["sockets.accept_queue_full", "config.keepalive_default"]
        );
        let under: Vec<&str> = found[0]
            .symptoms
            .iter()
            .map(|f| f.rule_id.as_str())
            .collect();
        assert_eq!(
            under,
            [
                "tcp.syn_retransmits",
                "tcp.rto_timeouts",
                "tcp.listen_overflows"
            ]
        );
        let report = netsight_report::Report {
            findings: found,
            ..Default::default()
        };
        assert_eq!(report.all_findings().len(), 5, "nothing is lost");
    }

    #[test]
    fn without_a_cause_a_symptom_stays_on_its_own() {
        let mut found = vec![
            f("tcp.rto_timeouts", Severity::Warning),
            f("udp.no_port", Severity::Info),
        ];
        fold(&mut found);
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn every_named_rule_exists_and_the_relation_has_no_cycle() {
        let ids: Vec<&str> = crate::rules::all().iter().map(|r| r.id).collect();
        for (symptom, groups) in SYMPTOM_OF {
            assert!(ids.contains(symptom), "{symptom}");
            for cause in groups.iter().flat_map(|g| g.iter()) {
                let is_drop = cause
                    .strip_prefix("drops.")
                    .is_some_and(|r| crate::drop_reasons::find(&r.to_ascii_uppercase()).is_some());
                assert!(ids.contains(cause) || is_drop, "{cause}");
                // A cause is never (transitively) a symptom of its own symptom.
                assert!(
                    !causes_of(cause).any(|c| c == *symptom),
                    "{symptom} <-> {cause}"
                );
            }
        }
    }
}
