//! `netsight doctor` end to end: faults made in a namespace during the doctor's
//! interval are named with the right rule; an idle namespace gets no warning.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::process::{Command, Stdio};

use serde_json::Value;
use support::{
    doctor_during, finding, finish_doctor, netsight, privileged, start_doctor, wait_on_stderr,
    ConnHolder, NetnsPair,
};

#[test]
fn listen_overflow_is_diagnosed() {
    if !privileged("listen_overflow_is_diagnosed", &["ip", "python3"]) {
        return;
    }
    let pair = NetnsPair::new();
    let mut holder = None;
    let (code, report) = doctor_during(&pair, &pair.b, "4", || {
        holder = Some(ConnHolder::start(&pair.b, &["listen-overflow"]));
    });
    let f = finding(&report, "tcp.listen_overflows")
        .unwrap_or_else(|| panic!("no listen overflow finding: {report}"));
    assert!(matches!(
        f["severity"].as_str(),
        Some("warning" | "critical")
    ));
    assert_eq!(f["layer"], "tcp");
    assert_eq!(f["use_kind"], "saturation");
    assert!(f["evidence"][0]["metric"]
        .as_str()
        .unwrap()
        .contains("ListenOverflows"));
    assert!(f["evidence"][0]["value"].as_f64().unwrap() > 0.0);
    assert!(!f["fix"].as_array().unwrap().is_empty() && !f["why"].as_str().unwrap().is_empty());
    // The listener itself shows up full in the socket rules.
    let port = holder.as_ref().unwrap().ports[0];
    let full = finding(&report, "sockets.accept_queue_full").expect("accept queue finding");
    assert!(
        full["subject"]
            .as_str()
            .unwrap()
            .contains(&format!(":{port}")),
        "{full}"
    );
    assert!(code >= 1, "exit status carries the severity, got {code}");
}

#[test]
fn udp_receive_buffer_overflow_is_diagnosed() {
    if !privileged(
        "udp_receive_buffer_overflow_is_diagnosed",
        &["ip", "python3"],
    ) {
        return;
    }
    let pair = NetnsPair::new();
    let mut holder = None;
    let (code, report) = doctor_during(&pair, &pair.b, "2", || {
        holder = Some(ConnHolder::start(&pair.b, &["udp-overflow"]));
    });
    let f = finding(&report, "udp.receive_buffer_errors")
        .unwrap_or_else(|| panic!("no UDP finding: {report}"));
    let increase = f["evidence"][1]["value"].as_f64().unwrap();
    assert!(
        increase >= 100.0,
        "most of 2000 datagrams overflow a 4 KiB buffer: {f}"
    );
    assert_eq!(f["layer"], "udp");
    assert!(code >= 1);
    drop(holder);
}

#[test]
fn idle_namespace_has_no_warning() {
    if !privileged("idle_namespace_has_no_warning", &["ip"]) {
        return;
    }
    let pair = NetnsPair::new();
    let (code, report) = doctor_during(&pair, &pair.a, "1", || {});
    let loud: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .collect();
    assert!(loud.is_empty(), "{loud:?}");
    assert_eq!(code, 0);
    assert!(report["workload"]["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["name"] == "va"));
    assert!(report["skipped"].is_array());
}

#[test]
fn list_rules_and_offline_bundle() {
    let out = support::output(netsight(), &["doctor", "--list-rules", "--json"]);
    assert!(out.status.success());
    let rules: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rules.as_array().unwrap().len() >= 30);

    if !privileged("list_rules_and_offline_bundle", &["ip"]) {
        return;
    }
    let pair = NetnsPair::new();
    let dir = std::env::temp_dir().join(format!("netsight-doctor-bundle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ns.nsb");
    let f = file.to_str().unwrap();
    pair.exec_ok(
        &pair.a,
        netsight(),
        &["snapshot", "-o", f, "--interval", "0.5", "--sockets"],
    );
    let out = support::output(netsight(), &["doctor", "--from", f, "--json"]);
    let one = dir.join("one.nsb");
    pair.exec_ok(
        &pair.a,
        netsight(),
        &["snapshot", "-o", one.to_str().unwrap()],
    );
    let single = support::output(netsight(), &["doctor", "--from", one.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.code().is_some_and(|c| c <= 2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!((report["workload"]["interval_s"].as_f64().unwrap() - 0.5).abs() < 0.3);
    assert!(report["workload"]["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["name"] == "va"));
    assert_eq!(
        single.status.code(),
        Some(3),
        "one snapshot cannot be diagnosed"
    );
    assert!(String::from_utf8_lossy(&single.stderr).contains("needs two"));
}

#[test]
fn drop_reasons_are_counted_by_default_and_attached_where_they_explain() {
    if !privileged(
        "drop_reasons_are_counted_by_default_and_attached_where_they_explain",
        &["ip", "python3"],
    ) {
        return;
    }
    let pair = NetnsPair::new();
    let mut holder = None;
    let (_, report) = doctor_during(&pair, &pair.b, "3", || {
        holder = Some(ConnHolder::start(&pair.b, &["udp-overflow"]));
    });
    drop(holder);
    let f = finding(&report, "udp.receive_buffer_errors").unwrap_or_else(|| panic!("{report}"));
    let reason = f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["metric"]
                .as_str()
                .unwrap()
                .starts_with("kernel drop reason SOCKET_RCVBUFF in this network namespace")
        })
        .unwrap_or_else(|| panic!("{f}"));
    assert!(reason["value"].as_f64().unwrap() > 0.0);
    let cells = report["kernel_drops"]["cells"].as_array().unwrap();
    assert!(
        cells.iter().any(|c| c["reason"] == "SOCKET_RCVBUFF"),
        "{cells:?}"
    );
    assert_eq!(report["kernel_drops"]["lost"], 0);
    // Attached only where the reason explains the finding; no finding of its own.
    assert!(finding(&report, "drops.socket_rcvbuff").is_none());
    for other in report["findings"].as_array().unwrap() {
        if other["rule_id"] != "udp.receive_buffer_errors"
            && other["rule_id"] != "tcp.receive_pruning"
        {
            assert!(!other.to_string().contains("SOCKET_RCVBUFF"), "{other}");
        }
    }
    // --no-trace opts out.
    let out = pair.exec(
        &pair.b,
        netsight(),
        &["doctor", "--interval", "200ms", "--json", "--no-trace"],
    );
    let quiet: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(quiet.get("kernel_drops").is_none(), "{quiet}");
}

#[test]
fn deep_mode_attaches_retransmitting_flows() {
    if !privileged("deep_mode_attaches_retransmitting_flows", &["ip"]) {
        return;
    }
    let pair = NetnsPair::new();
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.a,
            netsight(),
            "doctor",
            "--deep",
            "2",
            "--json",
            "--no-sockets",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("doctor");
    let mut child = child;
    let stderr = wait_on_stderr(
        &mut child,
        &["attached to kfree_skb", "attached to tcp_retransmit_skb"],
    );
    let out = child.wait_with_output().expect("doctor output");
    let _ = stderr.join();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(report["deep"]["retrans_flows"].is_array(), "{report}");
    assert_eq!(report["deep"]["lost_events"], 0);
    assert!(
        report["deep"].get("drop_reasons").is_none(),
        "drops are counted by default now"
    );
}

/// A fault no counter-based rule reads: a netfilter rule dropping a service's
/// datagrams. The kernel's drop reason names it, in the right namespace.
#[test]
fn a_firewall_drop_is_named_by_its_drop_reason() {
    if !privileged(
        "a_firewall_drop_is_named_by_its_drop_reason",
        &["ip", "iptables"],
    ) {
        return;
    }
    let pair = NetnsPair::new();
    pair.exec_ok(
        &pair.b,
        "iptables",
        &["-A", "INPUT", "-p", "udp", "--dport", "9977", "-j", "DROP"],
    );
    let inode = pair.exec_ok(&pair.b, "stat", &["-L", "-c", "%i", "/proc/self/ns/net"]);
    let (code, report) = doctor_during(&pair, &pair.b, "3", || {
        pair.exec_ok(
            &pair.a,
            netsight(),
            &[
                "lab",
                "agent",
                "udp-blast",
                &pair.addr_b,
                "9977",
                "2000",
                "64",
                "2",
                "1000",
            ],
        );
    });
    // The rule is named from its counter (netlink), and the kernel's drop reason,
    // with the dropping function and the namespace, is its evidence.
    let f = finding(&report, "filter.rule_drops").unwrap_or_else(|| panic!("{report}"));
    assert_eq!(f["severity"], "warning", "{f}");
    assert_eq!(f["layer"], "filter");
    assert!(
        f["subject"]
            .as_str()
            .unwrap()
            .starts_with("ip filter INPUT rule #1 (handle "),
        "{f}"
    );
    let text = f.to_string();
    assert!(text.contains("matched 2000 packets"), "{f}");
    assert!(
        text.contains("kernel drop reason NETFILTER_DROP in this network namespace")
            && text.contains(inode.trim()),
        "{f}"
    );
    // The dropping function: nftables' chain walk (iptables-nft) or the legacy hook.
    assert!(
        ["nft_do_chain", "nf_hook_slow", "ipt_do_table"]
            .iter()
            .any(|function| text.contains(&format!("(at {function})"))),
        "{f}"
    );
    assert!(
        finding(&report, "drops.netfilter_drop").is_none(),
        "explained, not repeated"
    );
    assert!(code >= 1);
}

/// Another fault outside the lab: packets to a next hop that never answers ARP.
#[test]
fn a_dead_next_hop_is_named_by_its_drop_reason() {
    if !privileged("a_dead_next_hop_is_named_by_its_drop_reason", &["ip"]) {
        return;
    }
    let pair = NetnsPair::new();
    // An on-link route to an address nobody holds: ARP for it fails.
    pair.exec_ok(
        &pair.a,
        "ip",
        &["route", "add", "10.231.254.9/32", "dev", "va"],
    );
    let (_, report) = doctor_during(&pair, &pair.a, "5", || {
        pair.exec_ok(
            &pair.a,
            netsight(),
            &[
                "lab",
                "agent",
                "udp-blast",
                "10.231.254.9",
                "9",
                "3000",
                "64",
                "1",
                "3000",
            ],
        );
    });
    let neigh: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"].as_str().unwrap().starts_with("drops.neigh_"))
        .collect();
    assert!(!neigh.is_empty(), "{report}");
    assert!(neigh.iter().any(|f| f["severity"] != "info"), "{neigh:?}");
    assert!(neigh.iter().all(|f| f["layer"] == "ip"));
}

/// Runs doctor in both namespaces of the pair at once while `load` runs.
fn doctors_during(pair: &NetnsPair, interval: &str, load: impl FnOnce()) -> [Value; 2] {
    let (a, b) = (
        start_doctor(&pair.a, interval),
        start_doctor(&pair.b, interval),
    );
    load();
    [a, b].map(|doctor| finish_doctor(doctor).1)
}

/// Waits for an agent's READY line (its socket is bound).
fn ready(mut child: std::process::Child) -> std::process::Child {
    use std::io::BufRead as _;
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = std::io::BufReader::new(stdout);
    let mut line = String::new();
    while !line.contains("READY") {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap_or(0) > 0,
            "agent ended before READY"
        );
    }
    // The rest of its output is read by whoever waits on it.
    child.stdout = Some(reader.into_inner());
    child
}

fn assert_quiet(reports: &[Value], load: &str) {
    fn loud_in<'a>(findings: &'a Value, out: &mut Vec<&'a Value>) {
        for f in findings.as_array().into_iter().flatten() {
            if f["severity"] != "info" {
                out.push(f);
            }
            loud_in(&f["symptoms"], out);
        }
    }
    for report in reports {
        let mut loud = Vec::new();
        loud_in(&report["findings"], &mut loud);
        assert!(loud.is_empty(), "{load}: false alarm: {loud:#?}");
    }
}

/// Doctor on both sides while a 3 s bulk TCP transfer runs from a to b at full speed.
fn bulk_transfer_between(pair: &NetnsPair) -> [Value; 2] {
    let sink = ready(pair.spawn(
        &pair.b,
        netsight(),
        &["lab", "agent", "listen", "5001", "128", "sink", "6"],
    ));
    let reports = doctors_during(pair, "3", || {
        pair.exec_ok(
            &pair.a,
            netsight(),
            &["lab", "agent", "bulk", &pair.addr_b, "5001", "3"],
        );
    });
    drop(sink);
    reports
}

#[test]
fn healthy_bulk_transfer_over_veth_gets_no_warning() {
    if !privileged("healthy_bulk_transfer_over_veth_gets_no_warning", &["ip"]) {
        return;
    }
    let pair = NetnsPair::new();
    let reports = bulk_transfer_between(&pair);
    // The transfer ran at full speed during the interval.
    let sent: f64 = reports[0]["workload"]["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["name"] == "va")
        .map(|i| i["tx_mbit_per_s"].as_f64().unwrap())
        .sum();
    assert!(sent > 500.0, "a real load: {sent} Mbit/s");
    assert_quiet(&reports, "bulk TCP over veth");
}

#[test]
fn healthy_bulk_transfer_over_a_bridge_gets_no_warning() {
    if !privileged(
        "healthy_bulk_transfer_over_a_bridge_gets_no_warning",
        &["ip"],
    ) {
        return;
    }
    let pair = NetnsPair::new();
    // Put a bridge between them: b's end of the veth becomes a bridge port.
    pair.exec_ok(
        &pair.b,
        "ip",
        &["addr", "del", &format!("{}/30", pair.addr_b), "dev", "vb"],
    );
    pair.exec_ok(&pair.b, "ip", &["link", "add", "br0", "type", "bridge"]);
    pair.exec_ok(&pair.b, "ip", &["link", "set", "vb", "master", "br0"]);
    pair.exec_ok(
        &pair.b,
        "ip",
        &["addr", "add", &format!("{}/30", pair.addr_b), "dev", "br0"],
    );
    pair.exec_ok(&pair.b, "ip", &["link", "set", "br0", "up"]);
    let reports = bulk_transfer_between(&pair);
    assert_quiet(&reports, "bulk TCP over a bridge");
}

#[test]
fn steady_connection_churn_gets_no_warning() {
    if !privileged("steady_connection_churn_gets_no_warning", &["ip"]) {
        return;
    }
    let pair = NetnsPair::new();
    let reports = doctors_during(&pair, "3", || {
        pair.exec_ok(&pair.a, netsight(), &["lab", "agent", "churn", "3"]);
    });
    let opens = reports[0]["workload"]["tcp_connections_per_s"]
        .as_f64()
        .unwrap();
    assert!(opens > 500.0, "a real churn: {opens}/s");
    assert_quiet(&reports, "connection churn");
}

#[test]
fn udp_streaming_within_capacity_gets_no_warning() {
    if !privileged("udp_streaming_within_capacity_gets_no_warning", &["ip"]) {
        return;
    }
    let pair = NetnsPair::new();
    let reader = ready(pair.spawn(
        &pair.b,
        netsight(),
        &["lab", "agent", "udp-read", "9300", "6"],
    ));
    let reports = doctors_during(&pair, "3", || {
        // 5000 datagrams/s of 1200 bytes (48 Mbit/s): well within one reader's capacity.
        pair.exec_ok(
            &pair.a,
            netsight(),
            &[
                "lab",
                "agent",
                "udp-blast",
                &pair.addr_b,
                "9300",
                "15000",
                "1200",
                "3",
                "5000",
            ],
        );
    });
    let out = reader.wait_with_output().unwrap();
    let received: u64 = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(received > 10_000, "the stream arrived: {received}");
    assert_quiet(&reports, "UDP streaming");
}

/// A process moved into a cgroup named like a docker container's; removed on drop.
struct FakeContainer {
    process: std::process::Child,
    cgroup: std::path::PathBuf,
    id: String,
}

impl FakeContainer {
    fn start(pair: &NetnsPair, ns: &str) -> FakeContainer {
        let id = format!("{:064x}", 0xc0ffee_u64 + u64::from(std::process::id()));
        // cgroup v1 (pids) as on this host, or the v2 hierarchy.
        let cgroup = [
            "/sys/fs/cgroup/pids",
            "/sys/fs/cgroup/unified",
            "/sys/fs/cgroup",
        ]
        .iter()
        .map(std::path::Path::new)
        .find(|root| root.join("cgroup.procs").exists())
        .map(|root| root.join("docker").join(&id))
        .expect("a writable cgroup hierarchy");
        std::fs::create_dir_all(&cgroup).unwrap();
        let process = pair.spawn(ns, "sleep", &["30"]);
        // `ip netns exec` forks sleep itself: move the sleep, found by its namespace.
        let netns = pair.exec_ok(ns, "readlink", &["/proc/self/ns/net"]);
        let pid = wait_for_sleep_in(netns.trim());
        std::fs::write(cgroup.join("cgroup.procs"), pid.to_string()).unwrap();
        FakeContainer {
            process,
            cgroup,
            id,
        }
    }
}

fn wait_for_sleep_in(netns: &str) -> u32 {
    for _ in 0..200 {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap_or_default();
            if comm.trim() == "sleep" && ns.to_string_lossy() == netns {
                return pid;
            }
        }
        // Polling for a process to appear: it has no readiness signal of its own.
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("no sleep in {netns}");
}

impl Drop for FakeContainer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        // The cgroup empties once the process is reaped.
        for _ in 0..100 {
            if std::fs::remove_dir(&self.cgroup).is_ok() || !self.cgroup.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if let Some(parent) = self.cgroup.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

#[test]
fn netns_all_attributes_each_fault_to_its_namespace_and_container() {
    if !privileged(
        "netns_all_attributes_each_fault_to_its_namespace_and_container",
        &["ip", "iptables", "python3"],
    ) {
        return;
    }
    let pair = NetnsPair::new();
    pair.exec_ok(
        &pair.b,
        "iptables",
        &["-A", "INPUT", "-p", "udp", "--dport", "9978", "-j", "DROP"],
    );
    let container = FakeContainer::start(&pair, &pair.a);
    let mut child = Command::new(netsight())
        .args(["doctor", "--netns", "all", "--interval", "3", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("doctor");
    let stderr = wait_on_stderr(
        &mut child,
        &["first snapshot taken", "attached to kfree_skb"],
    );
    // Namespace a: a UDP socket overflowing; namespace b: a firewall dropping a service.
    let holder = ConnHolder::start(&pair.a, &["udp-overflow"]);
    pair.exec_ok(
        &pair.a,
        netsight(),
        &[
            "lab",
            "agent",
            "udp-blast",
            &pair.addr_b,
            "9978",
            "2000",
            "64",
            "2",
            "1000",
        ],
    );
    let out = child.wait_with_output().expect("doctor output");
    let _ = stderr.join();
    drop(holder);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let ns = |name: &str| {
        report["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap_or_else(|| panic!("no namespace {name}: {report}"))
            .clone()
    };
    let ids = |v: &Value| -> Vec<String> {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (a, b) = (ns(&pair.a), ns(&pair.b));
    assert!(
        ids(&a).contains(&"udp.receive_buffer_errors".to_string()),
        "{a}"
    );
    assert!(!ids(&a).contains(&"filter.rule_drops".to_string()), "{a}");
    assert!(ids(&b).contains(&"filter.rule_drops".to_string()), "{b}");
    assert!(
        !ids(&b).contains(&"udp.receive_buffer_errors".to_string()),
        "{b}"
    );
    let host = ids(&report["host"]);
    assert!(
        !host
            .iter()
            .any(|id| id == "filter.rule_drops" || id == "udp.receive_buffer_errors"),
        "the host is not blamed: {host:?}"
    );
    let label = format!("docker:{}", &container.id[..12]);
    assert!(
        a["labels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == label.as_str()),
        "{a}"
    );
    assert!(a["processes"].to_string().contains("sleep["), "{a}");
    assert!(
        out.status.code().unwrap_or(0) >= 1,
        "the worst namespace sets the exit status"
    );
    // One namespace by name: its report alone.
    let single = support::output(
        netsight(),
        &[
            "doctor",
            "--netns",
            &pair.b,
            "--interval",
            "200ms",
            "--json",
        ],
    );
    let single: Value = serde_json::from_slice(&single.stdout).unwrap();
    assert_eq!(single["name"], pair.b.as_str());
    let unknown = support::output(netsight(), &["doctor", "--netns", "no-such-namespace-x"]);
    assert_eq!(unknown.status.code(), Some(64));
}

/// With every namespace visible, a veth pair's two ends are compared: an MTU that
/// differs across the pair is one finding under the host, naming both ends and
/// their namespaces, and no namespace's own report repeats it.
#[test]
fn netns_all_compares_the_two_ends_of_a_veth_pair() {
    if !privileged("netns_all_compares_the_two_ends_of_a_veth_pair", &["ip"]) {
        return;
    }
    let pair = NetnsPair::new();
    // A second pair with the same ifindexes: only the namespace ids (RTM_GETNSID)
    // tell whose peer is whose.
    let _decoy = NetnsPair::new();
    pair.exec_ok(&pair.a, "ip", &["link", "set", "va", "mtu", "9000"]);
    let out = support::output(
        netsight(),
        &[
            "doctor",
            "--netns",
            "all",
            "--interval",
            "0.2",
            "--no-trace",
            "--json",
        ],
    );
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let mismatch = finding(&report["host"], "nic.veth_mtu_mismatch")
        .unwrap_or_else(|| panic!("no mismatch under the host: {}", report["host"]));
    let subject = mismatch["subject"].as_str().unwrap();
    for end in [format!("va ({})", pair.a), format!("vb ({})", pair.b)] {
        assert!(subject.contains(&end), "{subject} lacks {end}");
    }
    let values: Vec<f64> = mismatch["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_f64().unwrap())
        .collect();
    assert!(
        values.contains(&9000.0) && values.contains(&1500.0),
        "{mismatch}"
    );
    for n in report["namespaces"].as_array().unwrap() {
        assert!(
            finding(n, "nic.veth_mtu_mismatch").is_none(),
            "said twice: {n}"
        );
    }
}
