use super::*;

/// Every counter this kernel (the recorded 6.18 fixture) prints has an explanation.
#[test]
fn every_counter_of_this_kernel_is_explained() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../netsight-kernel/tests/fixtures/proc/debian12-6.18.44");
    let snap = netsight_kernel::Snapshot::from_raw(
        &netsight_kernel::LiveSource::with_roots(&root, root.join("no-sys")).collect(),
    );
    let mut missing = Vec::new();
    let mut count = 0;
    for (group, counters) in &snap.mib {
        for name in counters.keys() {
            count += 1;
            match explain(&format!("{group}.{name}")) {
                Ok(e) => assert!(
                    !e.meaning.is_empty() && !e.interpretation.is_empty(),
                    "{group}.{name}"
                ),
                Err(_) => missing.push(format!("{group}.{name}")),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {count} unexplained: {missing:?}",
        missing.len()
    );
    assert!(count > 350, "only {count} counters in the fixture");
    for col in [
        "processed",
        "dropped",
        "time_squeeze",
        "received_rps",
        "flow_limit_count",
        "backlog_len",
    ] {
        assert!(explain(&format!("softnet_stat.{col}")).is_ok(), "{col}");
    }
}

/// Every sysctl a rule reads, and every sysctl the snapshot collects, is explained.
#[test]
fn every_rule_sysctl_is_explained() {
    for rule in crate::rules::all() {
        for read in rule.reads.iter().filter(|r| r.starts_with("net.")) {
            assert!(explain(read).is_ok(), "{} reads {read}", rule.id);
        }
    }
    for name in netsight_kernel::sysctl::DIAGNOSTIC_SYSCTLS {
        assert!(explain(name).is_ok(), "{name}");
    }
}

#[test]
fn name_forms_and_relations() {
    let e = explain("TcpExtListenOverflows").unwrap();
    assert_eq!(e.name, "TcpExt.ListenOverflows");
    assert_eq!(e.layer, Layer::Tcp);
    assert!(e.related_rules.contains(&"tcp.listen_overflows"));
    assert!(!e.fixes.is_empty());
    assert_eq!(
        explain("ListenOverflows").unwrap().name,
        "TcpExt.ListenOverflows"
    );
    assert_eq!(
        explain("UdpLite6InErrors").unwrap().name,
        "UdpLite6.InErrors"
    );
    assert_eq!(
        explain("Udp6RcvbufErrors").unwrap().name,
        "Udp6.RcvbufErrors"
    );
    assert_eq!(explain("somaxconn").unwrap().name, "net.core.somaxconn");
    assert_eq!(
        explain("net/ipv4/tcp_rmem").unwrap().name,
        "net.ipv4.tcp_rmem"
    );
    assert!(explain("Icmp6.OutType135")
        .unwrap()
        .meaning
        .contains("neighbour solicitation"));
    assert!(explain("IcmpMsg.InType3")
        .unwrap()
        .meaning
        .contains("destination unreachable"));
    assert!(matches!(
        explain("InErrors"),
        Err(ExplainError::Ambiguous { .. })
    ));
}

#[test]
fn unknown_names_get_close_matches() {
    match explain("ListenOverflow") {
        Err(ExplainError::Unknown { suggestions, .. }) => {
            assert_eq!(
                suggestions.first().map(String::as_str),
                Some("TcpExt.ListenOverflows")
            )
        }
        other => panic!("{other:?}"),
    }
    let err = explain("net.core.somaxcon").unwrap_err().to_string();
    assert!(err.contains("net.core.somaxconn"), "{err}");
    assert!(
        matches!(explain("zzzzzzzzzzzz"), Err(ExplainError::Unknown { suggestions, .. }) if suggestions.is_empty())
    );
}
