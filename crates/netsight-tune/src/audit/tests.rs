use super::*;

fn snapshot(sysctls: &[(&str, &str)], listen_overflows: i64) -> Snapshot {
    let sysctls: serde_json::Map<String, serde_json::Value> = sysctls
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    serde_json::from_value(serde_json::json!({
        "meta": {"taken_at_unix_ms": 0, "monotonic_ns": 0, "kernel_release": null, "hostname": null, "netsight_version": "test"},
        "mib": {"TcpExt": {"ListenOverflows": listen_overflows}},
        "sockstat": {"TCP": {"inuse": 3, "tw": 0}},
        "softnet": [],
        "links": [],
        "qdiscs": [],
        "conntrack": null,
        "sockets": null,
        "sysctls": sysctls,
        "unavailable": {},
    }))
    .unwrap_or_else(|e| panic!("test snapshot: {e}"))
}

fn item<'a>(a: &'a Audit, key: &str) -> &'a Item {
    a.items
        .iter()
        .find(|i| i.key == key)
        .unwrap_or_else(|| panic!("{key} not audited"))
}

const DEFAULTS: &[(&str, &str)] = &[
    ("net.ipv4.tcp_rmem", "4096\t131072\t6291456"),
    ("net.ipv4.tcp_wmem", "4096\t16384\t4194304"),
    ("net.core.rmem_max", "212992"),
    ("net.core.wmem_max", "212992"),
    ("net.core.somaxconn", "128"),
    ("net.ipv4.tcp_syncookies", "1"),
    ("net.ipv4.ip_local_port_range", "32768\t60999"),
    ("net.ipv4.tcp_congestion_control", "cubic"),
    ("net.ipv4.tcp_available_congestion_control", "reno cubic"),
    ("net.core.default_qdisc", "fq_codel"),
];

#[test]
fn buffers_follow_the_bdp_and_never_shrink() {
    let facts = HostFacts::default();
    let opts = TuneOptions {
        profile: Some(Profile::Throughput),
        speed_bits_per_s: Some(10_000_000_000),
        rtt_us: Some(80_000),
    };
    let a = audit(&snapshot(DEFAULTS, 0), &facts, &opts, None);
    assert_eq!(
        item(&a, "net.ipv4.tcp_rmem").recommended.as_deref(),
        Some("4096 131072 268435456")
    );
    assert_eq!(
        item(&a, "net.core.wmem_max").recommended.as_deref(),
        Some("268435456")
    );
    // BBR is not available here: no change, and the reason says how to get it.
    let cc = item(&a, "net.ipv4.tcp_congestion_control");
    assert_eq!(cc.status, Status::Ok);
    assert!(cc.reason.contains("modprobe tcp_bbr"), "{}", cc.reason);

    let mut big = DEFAULTS.to_vec();
    big[0] = ("net.ipv4.tcp_rmem", "8192 262144 1073741824");
    let a = audit(&snapshot(&big, 0), &facts, &opts, None);
    assert_eq!(item(&a, "net.ipv4.tcp_rmem").status, Status::Ok);
    assert!(a.plan(&[]).iter().all(|c| c.key != "net.ipv4.tcp_rmem"));
}

#[test]
fn counters_and_profiles_drive_the_plan() {
    let facts = HostFacts::default();
    let balanced = TuneOptions {
        rtt_us: Some(1000),
        ..TuneOptions::default()
    };
    let mut settings = DEFAULTS.to_vec();
    settings.push(("net.ipv4.tcp_max_syn_backlog", "2048"));
    settings.push(("net.core.netdev_budget", "300"));
    let quiet = audit(&snapshot(&settings, 0), &facts, &balanced, None);
    // 42 overflows since boot, none now: nothing is said of them.
    let since_boot = audit(&snapshot(&settings, 42), &facts, &balanced, None);
    assert!(!item(&since_boot, "net.core.somaxconn")
        .reason
        .contains("42"));
    let now = Activity {
        interval_s: 2.0,
        listen_overflows: 42,
        listen_drops: 42,
        time_squeeze: 1,
        ..Activity::default()
    };
    let overflowing = audit(&snapshot(&settings, 0), &facts, &balanced, Some(&now));
    // somaxconn 128 is below the 5.4+ default either way; overflows make it the reason.
    assert!(item(&overflowing, "net.core.somaxconn")
        .reason
        .contains("42 accept-queue overflows in 2.0 s"));
    // ListenDrops that are all accept-queue overflows say nothing about the SYN queue.
    let syn = item(&overflowing, "net.ipv4.tcp_max_syn_backlog");
    assert_eq!(syn.status, Status::Ok, "{}", syn.reason);
    // One squeeze in two seconds is not a reason to raise the budget.
    assert_eq!(
        item(&overflowing, "net.core.netdev_budget").status,
        Status::Ok
    );
    let squeezed = Activity {
        interval_s: 2.0,
        time_squeeze: 100,
        listen_drops: 30,
        ..Activity::default()
    };
    let busy = audit(&snapshot(&settings, 0), &facts, &balanced, Some(&squeezed));
    assert_eq!(
        item(&busy, "net.core.netdev_budget").recommended.as_deref(),
        Some("600")
    );
    assert_eq!(
        item(&busy, "net.ipv4.tcp_max_syn_backlog")
            .recommended
            .as_deref(),
        Some("8192")
    );
    assert_eq!(
        item(&quiet, "net.ipv4.ip_local_port_range").status,
        Status::Ok
    );
    let conns = audit(
        &snapshot(DEFAULTS, 0),
        &facts,
        &TuneOptions {
            profile: Some(Profile::Connections),
            ..balanced.clone()
        },
        None,
    );
    assert_eq!(
        item(&conns, "net.ipv4.ip_local_port_range")
            .recommended
            .as_deref(),
        Some("10000 65535")
    );
    assert_eq!(
        item(&conns, "net.core.somaxconn").recommended.as_deref(),
        Some("8192")
    );
    // --set wins over the audit's own value and comes last.
    let plan =
        conns.plan(&[parse_override("net.core.somaxconn=16384").unwrap_or_else(|e| panic!("{e}"))]);
    assert_eq!(plan.last().map(|c| c.value.as_str()), Some("16384"));
    assert_eq!(
        plan.iter()
            .filter(|c| c.key == "net.core.somaxconn")
            .count(),
        1
    );
    assert!(parse_override("novalue").is_err());
}

#[test]
fn without_a_link_speed_buffers_are_left_alone() {
    let a = audit(
        &snapshot(DEFAULTS, 0),
        &HostFacts::default(),
        &TuneOptions::default(),
        None,
    );
    assert!(!a.link.speed_known);
    for key in ["net.ipv4.tcp_rmem", "net.core.rmem_max"] {
        let i = item(&a, key);
        assert_eq!(i.status, Status::Ok, "{key}");
        assert!(
            i.reason.contains("no NIC reports a link speed"),
            "{}",
            i.reason
        );
    }
}

#[test]
fn dangerous_and_read_only_settings() {
    let mut settings = DEFAULTS.to_vec();
    settings.push(("net.ipv4.tcp_tw_recycle", "1"));
    settings[5] = ("net.ipv4.tcp_syncookies", "0");
    let mut facts = HostFacts::default();
    facts.read_only_sysctls.insert("net.core.rmem_max".into());
    let speed = TuneOptions {
        speed_bits_per_s: Some(10_000_000_000),
        ..TuneOptions::default()
    };
    let a = audit(&snapshot(&settings, 0), &facts, &speed, None);
    assert_eq!(item(&a, "net.ipv4.tcp_tw_recycle").status, Status::Danger);
    assert_eq!(
        item(&a, "net.ipv4.tcp_syncookies").recommended.as_deref(),
        Some("1")
    );
    assert_eq!(a.items[0].status, Status::Danger, "dangers come first");
    let ro = item(&a, "net.core.rmem_max");
    assert_eq!(ro.status, Status::Unavailable);
    assert!(a.plan(&[]).iter().all(|c| c.key != "net.core.rmem_max"));
    // Absent on this kernel (or in this namespace): never planned.
    assert_eq!(
        item(&a, "net.core.netdev_max_backlog").status,
        Status::Unavailable
    );
}
