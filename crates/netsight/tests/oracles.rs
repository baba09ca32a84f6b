//! netsight against the tools engineers trust, inside namespaces the tests
//! create: nstat, ip -s -j link, tc -s -j qdisc, ethtool -S/-l/-g, sar -n DEV.
//! Counters move between two reads, so each oracle value must lie between our
//! reading just before and just after the oracle ran.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::{netsight, privileged, NetnsPair};

fn snapshot(pair: &NetnsPair, ns: &str) -> Value {
    let out = pair.exec_ok(ns, netsight(), &["snapshot", "--json"]);
    serde_json::from_str(&out).expect("snapshot --json is JSON")
}

fn link<'a>(snap: &'a Value, name: &str) -> &'a Value {
    snap["links"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["name"] == name))
        .unwrap_or_else(|| panic!("no link {name} in snapshot"))
}

fn between(what: &str, before: u64, oracle: u64, after: u64) {
    assert!(
        before <= oracle && oracle <= after,
        "{what}: oracle {oracle} not within our readings [{before}, {after}]"
    );
}

/// Our MIB flattened to nstat's names: group + counter ("TcpExtListenOverflows").
fn flat_mib(snap: &Value) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (group, counters) in snap["mib"].as_object().expect("mib") {
        for (name, v) in counters.as_object().expect("group") {
            out.insert(format!("{group}{name}"), v.as_i64().expect("integer"));
        }
    }
    out
}

#[test]
fn mib_counters_match_nstat() {
    if !privileged("mib_counters_match_nstat", &["ip", "nstat", "ping"]) {
        return;
    }
    let pair = NetnsPair::new();
    pair.ping(20, 56);
    let before = flat_mib(&snapshot(&pair, &pair.a));
    let nstat = pair.exec_ok(&pair.a, "nstat", &["-asz"]);
    let after = flat_mib(&snapshot(&pair, &pair.a));

    let mut compared = 0;
    for line in nstat.lines().filter(|l| !l.starts_with('#')) {
        let mut f = line.split_whitespace();
        let (Some(name), Some(value)) = (f.next(), f.next()) else {
            continue;
        };
        let value: i64 = value.parse().expect("nstat value");
        let (Some(&b), Some(&a)) = (before.get(name), after.get(name)) else {
            panic!("nstat has {name}, netsight does not");
        };
        assert!(
            b <= value && value <= a,
            "{name}: nstat {value}, netsight {b}..{a}"
        );
        compared += 1;
    }
    assert!(compared > 300, "only {compared} counters compared");
    // The traffic we made is visible.
    assert!(after["IcmpOutEchos"] >= 20, "{}", after["IcmpOutEchos"]);
}

#[test]
fn link_stats_match_ip_s_link() {
    if !privileged("link_stats_match_ip_s_link", &["ip", "ping"]) {
        return;
    }
    let pair = NetnsPair::new();
    pair.ping(30, 200);
    let before = snapshot(&pair, &pair.a);
    let ip: Value = serde_json::from_str(&pair.exec_ok(&pair.a, "ip", &["-s", "-j", "link"]))
        .expect("ip -j is JSON");
    let after = snapshot(&pair, &pair.a);

    let oracle_links = ip.as_array().expect("array");
    assert_eq!(
        oracle_links.len(),
        before["links"].as_array().unwrap().len()
    );
    for ol in oracle_links {
        let name = ol["ifname"].as_str().expect("ifname");
        let (b, a) = (link(&before, name), link(&after, name));
        assert_eq!(b["ifindex"], ol["ifindex"], "{name} ifindex");
        assert_eq!(b["mtu"], ol["mtu"], "{name} mtu");
        assert_eq!(b["txqlen"], ol["txqlen"], "{name} txqlen");
        assert_eq!(b["operstate"], ol["operstate"], "{name} operstate");
        assert_eq!(b["qdisc"], ol["qdisc"], "{name} qdisc");
        for (dir, fields) in [
            ("rx", ["bytes", "packets", "errors", "dropped"]),
            ("tx", ["bytes", "packets", "errors", "dropped"]),
        ] {
            for f in fields {
                let ours = format!("{dir}_{f}");
                between(
                    &format!("{name} {ours}"),
                    b["stats"][&ours].as_u64().unwrap(),
                    ol["stats64"][dir][f].as_u64().unwrap(),
                    a["stats"][&ours].as_u64().unwrap(),
                );
            }
        }
    }
    assert!(link(&after, "va")["stats"]["tx_packets"].as_u64().unwrap() >= 30);
    assert_eq!(link(&after, "va")["kind"], "veth");
}

#[test]
fn qdisc_stats_match_tc() {
    if !privileged("qdisc_stats_match_tc", &["ip", "tc", "bash", "head"]) {
        return;
    }
    let pair = NetnsPair::new();
    // A slow tbf with a small queue; a burst of 300 UDP datagrams of 1 kB overruns it.
    pair.exec_ok(
        &pair.a,
        "tc",
        &[
            "qdisc", "add", "dev", "va", "root", "handle", "8001:", "tbf", "rate", "1mbit",
            "burst", "4kb", "limit", "8kb",
        ],
    );
    let burst = format!(
        "for i in $(seq 300); do head -c 1000 /dev/zero > /dev/udp/{}/9; done 2>/dev/null; true",
        pair.addr_b
    );
    pair.exec_ok(&pair.a, "bash", &["-c", &burst]);
    // Wait until the tbf has drained (its backlog is 0), so both readings see a still queue.
    let started = std::time::Instant::now();
    loop {
        let q: Value = serde_json::from_str(&pair.exec_ok(
            &pair.a,
            "tc",
            &["-s", "-j", "qdisc", "show", "dev", "va"],
        ))
        .unwrap();
        if q.as_array()
            .unwrap()
            .iter()
            .all(|q| q["backlog"].as_u64() == Some(0) || q["backlog"].is_null())
        {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 10,
            "the queue never drained: {q}"
        );
        std::thread::yield_now();
    }
    let before = snapshot(&pair, &pair.a);
    let tc: Value = serde_json::from_str(&pair.exec_ok(
        &pair.a,
        "tc",
        &["-s", "-j", "qdisc", "show", "dev", "va"],
    ))
    .expect("tc -j is JSON");
    let after = snapshot(&pair, &pair.a);

    let find = |snap: &Value| -> Value {
        snap["qdiscs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["link"] == "va" && q["kind"] == "tbf")
            .cloned()
            .expect("tbf qdisc on va")
    };
    let (b, a) = (find(&before), find(&after));
    let oracle = tc
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["kind"] == "tbf")
        .expect("tc shows tbf");
    assert_eq!(b["handle"], oracle["handle"]);
    assert_eq!(b["parent"], "root");
    for f in ["bytes", "packets", "drops", "overlimits", "requeues"] {
        between(
            &format!("tbf {f}"),
            b[f].as_u64().unwrap(),
            oracle[f].as_u64().unwrap(),
            a[f].as_u64().unwrap(),
        );
    }
    assert_eq!(b["backlog_bytes"], oracle["backlog"]);
    assert_eq!(b["qlen"], oracle["qlen"]);
    assert!(
        a["drops"].as_u64().unwrap() > 0,
        "the tbf should have dropped: {a}"
    );
    assert!(a["overlimits"].as_u64().unwrap() > 0);
}

/// `ethtool -S` text: "     name: value" lines after "NIC statistics:".
fn parse_ethtool_s(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .skip_while(|l| !l.starts_with("NIC statistics"))
        .skip(1)
        .filter_map(|l| {
            let (n, v) = l.trim().rsplit_once(':')?;
            Some((n.trim().to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// `ethtool -l` text: the "Pre-set maximums" and "Current hardware settings" blocks.
fn parse_ethtool_l(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut suffix = "";
    for line in text.lines() {
        if line.starts_with("Pre-set maximums") {
            suffix = "_max";
        } else if line.starts_with("Current hardware settings") {
            suffix = "";
        } else if let Some((k, v)) = line.split_once(':') {
            if let Ok(v) = v.trim().parse::<u64>() {
                out.insert(format!("{}{suffix}", k.trim().to_lowercase()), v);
            }
        }
    }
    out
}

#[test]
fn driver_stats_and_channels_match_ethtool() {
    if !privileged(
        "driver_stats_and_channels_match_ethtool",
        &["ip", "ethtool", "ping"],
    ) {
        return;
    }
    let pair = NetnsPair::new();
    pair.ping(10, 56);
    let before = snapshot(&pair, &pair.a);
    let stats = parse_ethtool_s(&pair.exec_ok(&pair.a, "ethtool", &["-S", "va"]));
    let channels = parse_ethtool_l(&pair.exec_ok(&pair.a, "ethtool", &["-l", "va"]));
    let rings = pair.exec(&pair.a, "ethtool", &["-g", "va"]);
    let lo_stats = pair.exec(&pair.a, "ethtool", &["-S", "lo"]);
    let features = pair.exec_ok(&pair.a, "ethtool", &["-k", "va"]);
    let after = snapshot(&pair, &pair.a);

    let (b, a) = (link(&before, "va"), link(&after, "va"));
    assert_eq!(b["driver_stats"]["status"], "available");
    let ours = b["driver_stats"]["value"].as_object().unwrap();
    assert!(stats.len() >= 4, "ethtool -S va gave {stats:?}");
    assert_eq!(ours.len(), stats.len(), "same set of driver counters");
    for (name, value) in &stats {
        between(
            name,
            ours[name].as_u64().unwrap(),
            *value,
            a["driver_stats"]["value"][name].as_u64().unwrap(),
        );
    }

    assert_eq!(b["ethtool"]["channels"]["status"], "available");
    for (name, value) in &channels {
        assert_eq!(
            b["ethtool"]["channels"]["value"][name].as_u64(),
            Some(*value),
            "channel {name}"
        );
    }
    // veth has no rings and lo no driver stats: both say so, as ethtool does.
    if !rings.status.success() {
        assert_eq!(b["ethtool"]["rings"]["status"], "not_supported");
    }
    if !lo_stats.status.success() {
        assert_eq!(
            link(&before, "lo")["driver_stats"]["status"],
            "not_supported"
        );
    }
    assert_eq!(b["ethtool"]["features"]["status"], "available");
    let ours = &b["ethtool"]["features"]["value"];
    let mut compared = 0;
    for line in features.lines().skip(1) {
        let Some((name, state)) = line.trim().split_once(": ") else {
            continue;
        };
        // ethtool -k prints legacy aliases and aggregates under other names; skip those.
        if LEGACY_FEATURE_NAMES.contains(&name) {
            continue;
        }
        let on = state.starts_with("on");
        if on {
            assert_eq!(ours[name], true, "feature {name} is on per ethtool -k");
            compared += 1;
        } else if !ours[name].is_null() {
            assert_eq!(ours[name], false, "feature {name} is off per ethtool -k");
            compared += 1;
        }
    }
    assert!(compared >= 10, "only {compared} features compared");
    assert_eq!(ours["tx-scatter-gather"], true, "bit 0 is decoded");
}

/// Names `ethtool -k` prints that are not kernel feature names (netdev_features_strings).
const LEGACY_FEATURE_NAMES: &[&str] = &[
    "rx-checksumming",
    "tx-checksumming",
    "scatter-gather",
    "tcp-segmentation-offload",
    "udp-fragmentation-offload",
    "generic-segmentation-offload",
    "generic-receive-offload",
    "large-receive-offload",
    "rx-vlan-offload",
    "tx-vlan-offload",
    "ntuple-filters",
    "receive-hashing",
];

/// sar's "Average:" row for an interface: rxpck/s txpck/s rxkB/s txkB/s.
fn sar_average(text: &str, iface: &str) -> [f64; 4] {
    let line = text
        .lines()
        .find(|l| l.starts_with("Average:") && l.split_whitespace().nth(1) == Some(iface))
        .unwrap_or_else(|| panic!("no Average row for {iface} in:\n{text}"));
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(2)
        .take(4)
        .map(|t| t.parse().unwrap())
        .collect();
    [v[0], v[1], v[2], v[3]]
}

#[test]
fn stat_dev_agrees_with_sar() {
    if !privileged("stat_dev_agrees_with_sar", &["ip", "sar", "ping"]) {
        return;
    }
    let pair = NetnsPair::new();
    // ~200 packets/s each way for 6 s, a steady load both tools watch together.
    let mut load = pair.ping_in_background("0.005", "6");
    // The load is running once packets leave va.
    let tx = |pair: &NetnsPair| {
        link(&snapshot(pair, &pair.a), "va")["stats"]["tx_packets"]
            .as_u64()
            .unwrap_or(0)
    };
    let first = tx(&pair);
    while tx(&pair) < first + 20 {
        std::thread::yield_now();
    }
    let sar = Command::new("ip")
        .args(["netns", "exec", &pair.a, "sar", "-n", "DEV", "1", "4"])
        .env("LC_ALL", "C")
        .stdout(Stdio::piped())
        .spawn()
        .expect("sar");
    let ours = pair.exec_ok(&pair.a, netsight(), &["stat", "DEV", "1", "4", "--json"]);
    let sar = sar.wait_with_output().expect("sar output");
    let _ = load.wait();

    let reports: Vec<Value> = ours
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 5, "4 intervals and the average");
    let average = &reports[4];
    assert!(average["timestamp_unix_ms"].is_null());
    let va = average["DEV"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["iface"] == "va")
        .expect("va row");
    let sar_va = sar_average(&String::from_utf8_lossy(&sar.stdout), "va");
    let ours_va = [
        va["rxpck"].as_f64().unwrap(),
        va["txpck"].as_f64().unwrap(),
        va["rxkB"].as_f64().unwrap(),
        va["txkB"].as_f64().unwrap(),
    ];
    assert!(ours_va[1] > 100.0, "load not seen: {ours_va:?}");
    // Tolerance: the two tools' 4 s windows start a few ms apart; 10 % covers that.
    for (i, col) in ["rxpck/s", "txpck/s", "rxkB/s", "txkB/s"]
        .iter()
        .enumerate()
    {
        let (o, s) = (ours_va[i], sar_va[i]);
        assert!(
            (o - s).abs() <= 0.10 * s.max(1.0),
            "{col}: netsight {o:.2} vs sar {s:.2}"
        );
    }
}

#[test]
fn bundle_round_trip_through_cli() {
    if !privileged("bundle_round_trip_through_cli", &["ip", "ping"]) {
        return;
    }
    let pair = NetnsPair::new();
    let dir = std::env::temp_dir().join(format!("netsight-cli-bundle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ns.nsb");
    let file_s = file.to_str().unwrap();

    let mut load = pair.ping_in_background("0.01", "2");
    pair.exec_ok(
        &pair.a,
        netsight(),
        &["snapshot", "-o", file_s, "--interval", "1"],
    );
    let _ = load.wait();

    let snaps: Value = serde_json::from_str(&pair.exec_ok(
        &pair.a,
        netsight(),
        &["snapshot", "--from", file_s, "--json"],
    ))
    .unwrap();
    assert_eq!(snaps.as_array().map(|a| a.len()), Some(2));
    assert!(link(&snaps[0], "va")["ethtool"]["features"]["status"] == "available");

    // Offline stat from the bundle: run outside the namespace to prove it reads no live source.
    let out = support::run(
        netsight(),
        &["stat", "DEV", "TCP", "--from", file_s, "--json"],
    );
    std::fs::remove_dir_all(&dir).ok();
    let report: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let va = report["DEV"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["iface"] == "va")
        .expect("va in bundle");
    assert!(va["txpck"].as_f64().unwrap() > 20.0, "{va}");
    assert!(report["TCP"].is_object());
    assert!((report["interval_s"].as_f64().unwrap() - 1.0).abs() < 0.3);
}

/// Issue 15: sar's ICMP, EICMP, IP6, EIP6, ICMP6, EICMP6, UDP6 and SOCK6 keywords,
/// with sar's own column names (sar is the oracle) and exact counts of traffic the
/// test makes between two snapshots of one namespace.
#[test]
fn stat_ipv6_and_icmp_keywords_count_exactly_with_sars_columns() {
    if !privileged("stat ipv6/icmp keywords", &["ip", "sar", "ping", "python3"]) {
        return;
    }
    let pair = NetnsPair::new();
    pair.exec_ok(
        &pair.a,
        "sysctl",
        &["-qw", "net.ipv6.conf.lo.disable_ipv6=0"],
    );
    let dir = std::env::temp_dir().join(format!("netsight-stat6-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (before, after, both) = (dir.join("a.nsb"), dir.join("b.nsb"), dir.join("ab.nsb"));
    pair.exec_ok(
        &pair.a,
        netsight(),
        &["snapshot", "-o", before.to_str().unwrap()],
    );
    // 20 IPv4 echoes to the peer, 10 IPv6 echoes on loopback, 7 UDP6 datagrams to a closed port.
    pair.exec_ok(
        &pair.a,
        "ping",
        &["-q", "-c", "20", "-i", "0.01", &pair.addr_b],
    );
    pair.exec_ok(
        &pair.a,
        "ping",
        &["-6", "-q", "-c", "10", "-i", "0.01", "::1"],
    );
    pair.exec_ok(
        &pair.a,
        "python3",
        &["-c", "import socket\ns=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\nfor _ in range(7): s.sendto(b'x', ('::1', 9))"],
    );
    pair.exec_ok(
        &pair.a,
        netsight(),
        &["snapshot", "-o", after.to_str().unwrap()],
    );
    let mut raws = netsight_kernel::bundle::read(&before).unwrap();
    raws.extend(netsight_kernel::bundle::read(&after).unwrap());
    netsight_kernel::bundle::write(&both, &raws).unwrap();
    let out = support::run(
        netsight(),
        &[
            "stat",
            "ICMP",
            "EICMP",
            "IP6",
            "EIP6",
            "ICMP6",
            "EICMP6",
            "UDP6",
            "SOCK6",
            "--from",
            both.to_str().unwrap(),
            "--json",
        ],
    );
    let text = support::run(
        netsight(),
        &["stat", "ALL", "--from", both.to_str().unwrap()],
    );
    std::fs::remove_dir_all(&dir).ok();
    let r: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let secs = r["interval_s"].as_f64().unwrap();
    let count = |kw: &str, col: &str| (r[kw][col].as_f64().unwrap() * secs).round() as i64;
    assert_eq!(count("ICMP", "oech"), 20, "{r}");
    assert_eq!(count("ICMP", "iechr"), 20, "{r}");
    // Loopback: each echo is both sent and received by this namespace.
    assert_eq!(count("ICMP6", "iech6"), 10, "{r}");
    assert_eq!(count("ICMP6", "oechr6"), 10, "{r}");
    assert_eq!(count("UDP6", "odgm6"), 7, "{r}");
    assert_eq!(count("UDP6", "noport6"), 7, "{r}");
    assert_eq!(
        count("EICMP6", "odtunr6"),
        7,
        "port unreachable for each: {r}"
    );
    assert!(count("IP6", "irec6") >= 10 + 10 + 7, "{r}");
    assert!(r["SOCK6"]["tcp6sck"].is_number());

    // Every column header is one sar prints for the same keyword.
    let sar = Command::new("sar")
        .args([
            "-n",
            "ICMP,EICMP,IP6,EIP6,ICMP6,EICMP6,UDP6,SOCK6",
            "1",
            "1",
        ])
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    let sar_words: std::collections::BTreeSet<String> = String::from_utf8_lossy(&sar.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    for kw in [
        "ICMP", "EICMP", "IP6", "EIP6", "ICMP6", "EICMP6", "UDP6", "SOCK6",
    ] {
        for col in r[kw].as_object().unwrap().keys() {
            let shown = if kw == "SOCK6" {
                col.clone()
            } else {
                format!("{col}/s")
            };
            assert!(
                sar_words.contains(&shown),
                "{kw} column {shown} is not sar's"
            );
            assert!(text.contains(&shown), "text output lacks {shown}");
        }
    }
}

#[test]
fn stat_iface_filters_rows() {
    if !privileged("stat --iface", &["ip"]) {
        return;
    }
    let pair = NetnsPair::new();
    let out = pair.exec_ok(
        &pair.a,
        netsight(),
        &["stat", "DEV", "EDEV", "0.2", "1", "--iface", "va", "--json"],
    );
    let r: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    for kw in ["DEV", "EDEV"] {
        let names: Vec<&str> = r[kw]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["iface"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["va"], "{kw}");
    }
    let bad = pair.exec(
        &pair.a,
        netsight(),
        &["stat", "DEV", "0.2", "1", "--iface", "nope0"],
    );
    assert_eq!(bad.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nope0"));
}

/// `iptables-legacy-save -c` as (chain, packets) in table order: policies first
/// (":INPUT ACCEPT [p:b]"), then the rules ("[p:b] -A CHAIN ...").
fn legacy_save_counters(text: &str) -> (BTreeMap<String, u64>, Vec<(String, u64)>) {
    let packets = |field: &str| -> u64 {
        field
            .trim_matches(['[', ']'])
            .split(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let mut policies = BTreeMap::new();
    let mut rules = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [chain, policy, counters] if chain.starts_with(':') && *policy != "-" => {
                policies.insert(chain[1..].to_string(), packets(counters));
            }
            [counters, "-A", chain, ..] if counters.starts_with('[') => {
                rules.push((chain.to_string(), packets(counters)));
            }
            _ => {}
        }
    }
    (policies, rules)
}

/// iptables-legacy tables are read with their rules' chains, positions, verdicts
/// and counters as iptables-legacy-save -c shows them; a namespace without
/// legacy tables gets none created by being read; doctor names the legacy rule.
#[test]
fn iptables_legacy_counters_match_iptables_legacy_save() {
    if !privileged(
        "iptables_legacy_counters_match_iptables_legacy_save",
        &["ip", "iptables-legacy", "iptables-legacy-save", "python3"],
    ) {
        return;
    }
    let pair = NetnsPair::new();
    // Reading a namespace with no legacy table creates none.
    let _ = snapshot(&pair, &pair.a);
    let names = pair.exec(&pair.a, "cat", &["/proc/net/ip_tables_names"]);
    assert_eq!(
        String::from_utf8_lossy(&names.stdout).trim(),
        "",
        "a table was created by reading"
    );
    let legacy = |args: &[&str]| pair.exec_ok(&pair.b, "iptables-legacy", args);
    legacy(&["-A", "INPUT", "-p", "udp", "--dport", "9979", "-j", "DROP"]);
    legacy(&["-N", "blocked"]);
    legacy(&["-A", "blocked", "-p", "tcp", "-j", "REJECT"]);
    legacy(&["-A", "INPUT", "-p", "tcp", "--dport", "81", "-j", "blocked"]);
    legacy(&["-P", "FORWARD", "DROP"]);
    let send = format!(
        "import socket\nu=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         for i in range(40): u.sendto(b'x',('{0}',9979))\n\
         for i in range(3):\n  t=socket.socket()\n  t.settimeout(2)\n  try: t.connect(('{0}',81))\n  except OSError: pass\n",
        pair.addr_b
    );
    pair.exec_ok(&pair.a, "python3", &["-c", &send]);
    let snap = snapshot(&pair, &pair.b);
    let save = pair.exec_ok(&pair.b, "iptables-legacy-save", &["-c"]);
    let (policies, oracle) = legacy_save_counters(&save);
    let ours: Vec<&Value> = snap["netfilter_rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["legacy"] == true && r["table"] == "filter" && r["family"] == "ip")
        .collect();
    let rules: Vec<(String, u64)> = ours
        .iter()
        .filter(|r| r["position"] != 0 && !(r["chain"] == "blocked" && r["verdict"] == "return"))
        .map(|r| {
            (
                r["chain"].as_str().unwrap().to_string(),
                r["packets"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rules, oracle, "{save}");
    for r in ours.iter().filter(|r| r["position"] == 0) {
        let chain = r["chain"].as_str().unwrap();
        assert_eq!(
            Some(&r["packets"].as_u64().unwrap()),
            policies.get(chain),
            "{chain} policy"
        );
    }
    let verdicts: Vec<&str> = ours
        .iter()
        .map(|r| r["verdict"].as_str().unwrap())
        .collect();
    assert!(
        verdicts.contains(&"drop") && verdicts.contains(&"reject") && verdicts.contains(&"jump"),
        "{verdicts:?}"
    );
    assert!(
        rules[0].1 >= 40,
        "the DROP rule counted the datagrams: {rules:?}"
    );
    let forward = ours.iter().find(|r| r["chain"] == "FORWARD").unwrap();
    assert_eq!(
        (forward["position"].as_u64(), forward["verdict"].as_str()),
        (Some(0), Some("drop"))
    );

    // doctor over a blast at the dropped port names the legacy rule.
    let (_, report) = support::doctor_during(&pair, &pair.b, "2", || {
        pair.exec_ok(
            &pair.a,
            netsight(),
            &[
                "lab",
                "agent",
                "udp-blast",
                &pair.addr_b,
                "9979",
                "2000",
                "64",
                "1",
                "500",
            ],
        );
    });
    let finding = support::finding(&report, "filter.rule_drops")
        .unwrap_or_else(|| panic!("no filter.rule_drops: {report}"));
    assert_eq!(
        finding["subject"], "iptables-legacy filter INPUT rule #1",
        "{finding}"
    );
}
