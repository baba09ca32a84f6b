//! Parsers on /proc trees recorded from real kernels (debian12-6.18.44) and on
//! hand-made older formats (handmade-*), through the same code path as a live run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::PathBuf;

use netsight_kernel::{LiveSource, Snapshot};

fn fixture(name: &str) -> Snapshot {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/proc")
        .join(name);
    assert!(root.is_dir(), "missing fixture {}", root.display());
    Snapshot::from_raw(&LiveSource::with_roots(&root, root.join("no-sys")).collect())
}

/// Parse problems (not absences) recorded for proc/net sources.
fn parse_errors(s: &Snapshot) -> Vec<String> {
    s.unavailable
        .iter()
        .filter(|(k, why)| k.starts_with("proc/net") && !why.contains("not present"))
        .map(|(k, why)| format!("{k}: {why}"))
        .collect()
}

#[test]
fn debian_6_18_all_sources_parse() {
    let s = fixture("debian12-6.18.44");
    assert!(parse_errors(&s).is_empty(), "{:?}", parse_errors(&s));
    // Values as recorded in the fixture files.
    assert_eq!(s.counter("Ip", "InReceives"), Some(2128));
    assert_eq!(s.counter("Ip", "OutTransmits"), Some(1487));
    assert_eq!(s.counter("Tcp", "MaxConn"), Some(-1));
    assert_eq!(s.counter("TcpExt", "TW"), Some(10));
    assert!(s.mib.contains_key("MPTcpExt"));
    assert!(s.mib["Ip6"].contains_key("InReceives"));
    assert!(s.mib["Icmp6"].contains_key("InMsgs"));
    assert_eq!(s.sockstat["sockets"]["used"], 8);
    assert_eq!(s.sockstat["TCP"]["mem"], 91);
    assert_eq!(s.sockstat["TCP6"]["inuse"], 0);

    // softnet_stat, 15 columns: the kernel prints the CPU index.
    assert_eq!(s.softnet.len(), 2);
    assert_eq!((s.softnet[0].cpu, s.softnet[0].processed), (0, 0xf));
    assert_eq!((s.softnet[1].cpu, s.softnet[1].processed), (1, 0x844));
    assert_eq!(s.softnet[1].backlog_len, Some(0));

    // Links fall back to /proc/net/dev without netlink.
    let lo = s.link("lo").expect("lo");
    assert_eq!((lo.stats.rx_bytes, lo.stats.rx_packets), (3193, 29));
    assert_eq!(s.links.len(), 4);

    let ct = s.conntrack.as_ref().expect("conntrack stat file present");
    assert!(ct.stats.contains_key("clashres"));
}

#[test]
fn linux_4_19_formats_parse() {
    let s = fixture("handmade-4.19");
    assert!(parse_errors(&s).is_empty(), "{:?}", parse_errors(&s));
    assert_eq!(s.counter("Ip", "OutTransmits"), None);
    assert!(!s.mib.contains_key("MPTcpExt"));
    assert!(s.mib["TcpExt"].contains_key("ListenOverflows"));
    assert!(!s.mib["TcpExt"].contains_key("TCPMigrateReqSuccess"));

    // 11 columns: flow_limit_count but no cpu index or backlog length.
    assert_eq!(s.softnet.len(), 2);
    assert_eq!(s.softnet[1].cpu, 1);
    assert_eq!(s.softnet[0].dropped, 3);
    assert_eq!(s.softnet[0].time_squeeze, 0x1c);
    assert_eq!(s.softnet[1].received_rps, 0x12);
    assert_eq!(s.softnet[1].flow_limit_count, Some(1));
    assert_eq!(s.softnet[1].backlog_len, None);

    // 4.x conntrack stat names (searched, delete_list), summed over CPUs.
    let ct = s.conntrack.as_ref().expect("conntrack");
    assert_eq!(ct.stats["entries"], 0x21);
    assert_eq!(ct.stats["found"], 7);
    assert_eq!(ct.stats["drop"], 4);
    assert_eq!(ct.stats["search_restart"], 4);
    assert!(ct.stats.contains_key("delete_list"));
}

#[test]
fn linux_5_10_and_3_10_softnet() {
    let s = fixture("handmade-5.10");
    assert_eq!(
        s.softnet[1].cpu, 2,
        "5.10 prints the CPU index (CPU 1 offline here)"
    );
    assert_eq!(s.softnet[1].backlog_len, Some(3));
    assert_eq!(s.softnet[1].dropped, 2);

    let s = fixture("handmade-3.10");
    assert_eq!(s.softnet.len(), 1);
    assert_eq!(s.softnet[0].received_rps, 4);
    assert_eq!(s.softnet[0].flow_limit_count, None);
}

#[test]
fn missing_sources_are_reported_not_fatal() {
    let s = fixture("handmade-3.10");
    assert!(s.mib.is_empty());
    let why = &s.unavailable["proc/net/snmp"];
    assert!(why.contains("not present"), "{why}");
    assert!(s.unavailable.contains_key("netlink/route/link"));
}

#[test]
fn delta_rates_wraps_and_link_changes() {
    use netsight_kernel::delta;
    let prev = fixture("debian12-6.18.44");
    let mut cur = prev.clone();
    cur.meta.monotonic_ns = prev.meta.monotonic_ns + 2_000_000_000;
    *cur.mib
        .get_mut("Tcp")
        .unwrap()
        .get_mut("ActiveOpens")
        .unwrap() += 10;
    *cur.mib
        .get_mut("Tcp")
        .unwrap()
        .get_mut("CurrEstab")
        .unwrap() += 10;
    cur.links[0].stats.rx_bytes += 4096;
    cur.links.retain(|l| l.name != "ifb1");
    let mut new_link = cur.links[1].clone();
    new_link.name = "veth9".into();
    cur.links.push(new_link);
    cur.softnet[0].dropped += 6;

    let r = delta(&prev, &cur);
    assert!((r.interval_s - 2.0).abs() < 1e-9);
    assert_eq!(r.mib_rate("Tcp", "ActiveOpens"), 5.0);
    assert!(
        !r.mib["Tcp"].contains_key("CurrEstab"),
        "gauges get no rate"
    );
    assert_eq!(r.links[0].stats.rx_bytes, 2048.0);
    assert_eq!(r.links_gone, vec!["ifb1".to_string()]);
    assert_eq!(r.links_appeared, vec!["veth9".to_string()]);
    assert_eq!(r.softnet[0].dropped, 3.0);
}

proptest::proptest! {
    /// MIB rates are the counters present in both samples (gauges left out),
    /// whatever names either side has: the two sorted maps are walked together.
    #[test]
    fn mib_rates_cover_the_names_both_samples_have(
        before in proptest::collection::btree_map("[A-Z][a-z]{0,3}|CurrEstab|MaxConn", 0u32..1000, 0..12),
        after in proptest::collection::btree_map("[A-Z][a-z]{0,3}|CurrEstab|MaxConn", 0u32..1000, 0..12),
    ) {
        let mut prev = fixture("debian12-6.18.44");
        prev.mib.clear();
        let mut cur = prev.clone();
        cur.meta.monotonic_ns = prev.meta.monotonic_ns + 2_000_000_000;
        let group = |m: &std::collections::BTreeMap<String, u32>| {
            m.iter().map(|(k, v)| (k.clone(), i64::from(*v))).collect()
        };
        prev.mib.insert("Tcp".into(), group(&before));
        cur.mib.insert("Tcp".into(), group(&after));
        let expected: std::collections::BTreeMap<String, f64> = after
            .iter()
            .filter(|(name, _)| !["CurrEstab", "MaxConn"].contains(&name.as_str()))
            .filter_map(|(name, &c)| {
                let p = *before.get(name)?;
                (c >= p).then(|| (name.clone(), f64::from(c - p) / 2.0))
            })
            .collect();
        let rates = netsight_kernel::delta(&prev, &cur);
        proptest::prop_assert_eq!(&rates.mib["Tcp"], &expected);
    }
}
