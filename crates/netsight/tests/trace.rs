//! `netsight trace drops` names the reason of drops a test causes in a namespace,
//! leaves nothing loaded, and names the missing capability without privilege.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::process::{Command, Stdio};

use std::sync::RwLock;

use serde_json::Value;
use support::{netsight, privileged, NetnsPair};

/// The leak check needs no other tracer running: it takes this exclusively.
static TRACERS: RwLock<()> = RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    TRACERS.read().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn drops_are_named_by_reason_and_nothing_stays_loaded() {
    if !privileged(
        "drops_are_named_by_reason_and_nothing_stays_loaded",
        &["ip", "bpftool", "bash"],
    ) {
        return;
    }
    let _shared = shared();
    let pair = NetnsPair::new();
    let tracer = Command::new(netsight())
        .args([
            "trace",
            "drops",
            "--duration",
            "3",
            "--json",
            "--addr",
            &pair.addr_b,
            "--port",
            "9",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    // 50 datagrams to a port nobody listens on in namespace b: NO_SOCKET drops.
    let burst = format!(
        "for i in $(seq 50); do echo x > /dev/udp/{}/9; done 2>/dev/null; true",
        pair.addr_b
    );
    pair.exec_ok(&pair.a, "bash", &["-c", &burst]);
    let out = tracer.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = &lines.last().unwrap()["summary"];
    let no_socket = summary["by_reason"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[0] == "NO_SOCKET")
        .map(|r| r[1].as_u64().unwrap())
        .unwrap_or(0);
    assert!(
        no_socket >= 50,
        "expected at least our 50 NO_SOCKET drops: {summary}"
    );
    let udp_drops = lines
        .iter()
        .filter(|e| e["reason"] == "NO_SOCKET" && e["protocol"] == "ipv4")
        .filter(|e| e["location"].as_str().unwrap_or("").contains("udp"))
        .count();
    assert!(
        udp_drops >= 50,
        "drops located in the UDP receive path: {udp_drops}"
    );

    // Programs are released shortly after the tracer exits.
    let mut left = String::new();
    for _ in 0..30 {
        left = support::run("bpftool", &["prog", "list"]);
        if !left.contains("kfree_skb") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        !left.contains("kfree_skb"),
        "tracer left a program loaded: {left}"
    );
}

#[test]
fn without_privilege_the_capability_is_named() {
    if !privileged("without_privilege_the_capability_is_named", &["setpriv"]) {
        return;
    }
    // Run as nobody: a copy of the binary readable by everyone.
    let copy = std::env::temp_dir().join(format!("netsight-unpriv-{}", std::process::id()));
    std::fs::copy(netsight(), &copy).unwrap();
    support::run("chmod", &["755", copy.to_str().unwrap()]);
    let out = support::output(
        "setpriv",
        &[
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            copy.to_str().unwrap(),
            "trace",
            "drops",
            "--duration",
            "1",
        ],
    );
    std::fs::remove_file(&copy).ok();
    assert_eq!(out.status.code(), Some(3), "could not run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CAP_BPF") && err.contains("CAP_PERFMON"),
        "{err}"
    );
}

/// TcpRetransSegs of namespace `ns`, read with netsight's own snapshot.
fn retrans_segs(pair: &NetnsPair, ns: &str) -> u64 {
    let snap: Value =
        serde_json::from_str(&pair.exec_ok(ns, netsight(), &["snapshot", "--json"])).unwrap();
    snap["mib"]["Tcp"]["RetransSegs"].as_u64().unwrap()
}

#[test]
fn retransmissions_match_the_kernel_counter() {
    if !privileged(
        "retransmissions_match_the_kernel_counter",
        &["ip", "iptables", "ethtool"],
    ) {
        return;
    }
    let _shared = shared();
    let pair = NetnsPair::new();
    // One segment per skb (no TSO/GSO), so per-skb events equal the per-segment counter.
    pair.exec_ok(
        &pair.a,
        "ethtool",
        &["-K", "va", "tso", "off", "gso", "off"],
    );
    pair.exec_ok(
        &pair.b,
        "iptables",
        &[
            "-A",
            "INPUT",
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            "0.05",
            "-j",
            "DROP",
        ],
    );
    let mut tracer = Command::new(netsight())
        // The readings below take ~6 s; a slow, loaded CI run needs the margin.
        .args(["trace", "retrans", "--duration", "12", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let before = retrans_segs(&pair, &pair.a);
    let sink = Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.b,
            netsight(),
            "lab",
            "agent",
            "listen",
            "8080",
            "16",
            "sink",
            "5",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    pair.exec_ok(
        &pair.a,
        netsight(),
        &["lab", "agent", "bulk", &pair.addr_b, "8080", "2"],
    );
    // Let the connection finish (queued data, FIN) before the second reading.
    std::thread::sleep(std::time::Duration::from_millis(2000));
    let after = retrans_segs(&pair, &pair.a);
    let traced_the_whole_window = tracer.try_wait().unwrap().is_none();
    let out = tracer.wait_with_output().unwrap();
    drop(sink);
    assert!(
        traced_the_whole_window,
        "the tracer ended before the second counter reading: the comparison would be unfair"
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The counter counts segments (a retransmitted GSO skb carries several), and
    // counts them before transmission: a retransmit that then fails in transmit
    // (err != 0, seen under load) is in the counter; one that fails earlier is not.
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["lost_events"], 0, "an incomplete trace: {summary}");
    let (mut ok, mut failed) = (0u64, 0u64);
    for e in lines
        .iter()
        .filter(|e| e["local_addr"] == pair.addr_a.as_str())
    {
        let segs = e["segs"].as_u64().unwrap();
        if e["err"] == 0 {
            ok += segs;
        } else {
            failed += segs;
        }
    }
    let delta = after - before;
    assert!(
        delta >= 20,
        "5 % loss should cause retransmissions: {delta}"
    );
    assert!(
        ok <= delta && delta <= ok + failed,
        "TcpRetransSegs delta {delta} outside traced [{ok}, {}] (ok, ok + failed)",
        ok + failed
    );
}

/// Runs a tracer for `seconds` while `work` runs; returns its JSON lines.
fn trace_during(kind: &str, seconds: &str, work: impl FnOnce()) -> Vec<Value> {
    let tracer = Command::new(netsight())
        .args(["trace", kind, "--duration", seconds, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    work();
    let out = tracer.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn life_sees_exactly_the_connections_made_and_states_their_handshakes() {
    if !privileged(
        "life_sees_exactly_the_connections_made_and_states_their_handshakes",
        &["ip"],
    ) {
        return;
    }
    let _shared = shared();
    let pair = NetnsPair::new();
    let connect = |pair: &NetnsPair| {
        let sink = Command::new("ip")
            .args([
                "netns",
                "exec",
                &pair.b,
                netsight(),
                "lab",
                "agent",
                "listen",
                "8080",
                "64",
                "sink",
                "3",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let made = pair.exec_ok(
            &pair.a,
            netsight(),
            &[
                "lab",
                "agent",
                "connect",
                &pair.addr_b,
                "8080",
                "20",
                "close",
                "3",
            ],
        );
        assert!(made.contains("connected 20 failed 0"), "{made}");
        std::thread::sleep(std::time::Duration::from_millis(500));
        drop(sink);
    };

    let lives = trace_during("life", "4", || connect(&pair));
    let ours = |local: &str| {
        lives
            .iter()
            .filter(|l| {
                l["local_addr"] == local && (l["local_port"] == 8080 || l["remote_port"] == 8080)
            })
            .collect::<Vec<_>>()
    };
    let (active, passive) = (ours(&pair.addr_a), ours(&pair.addr_b));
    assert_eq!(active.len(), 20, "one life per client connection");
    assert_eq!(passive.len(), 20, "one life per accepted connection");
    assert!(active
        .iter()
        .all(|l| l["opened"] == "active" && l["remote_port"] == 8080));
    assert!(passive
        .iter()
        .all(|l| l["opened"] == "passive" && l["local_port"] == 8080));
    assert!(
        active.iter().all(|l| l["comm"] == "netsight"),
        "the connecting process is named"
    );

    let changes = trace_during("states", "4", || connect(&pair));
    let handshakes = changes
        .iter()
        .filter(|c| {
            c["local_addr"] == pair.addr_a.as_str()
                && c["old_state"] == "SYN-SENT"
                && c["new_state"] == "ESTAB"
        })
        .count();
    assert_eq!(handshakes, 20);
    assert!(changes
        .iter()
        .filter(|c| c["old_state"] == "SYN-SENT" && c["local_addr"] == pair.addr_a.as_str())
        .all(|c| c["in_old_state_ms"].as_f64().is_some_and(|ms| ms >= 0.0)));
}

#[test]
fn connect_and_accept_report_handshakes_and_failures() {
    if !privileged("connect_and_accept_report_handshakes_and_failures", &["ip"]) {
        return;
    }
    let _shared = shared();
    let pair = NetnsPair::new();
    let work = |pair: &NetnsPair| {
        let sink = Command::new("ip")
            .args([
                "netns",
                "exec",
                &pair.b,
                netsight(),
                "lab",
                "agent",
                "listen",
                "8080",
                "64",
                "sink",
                "3",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        pair.exec_ok(
            &pair.a,
            netsight(),
            &[
                "lab",
                "agent",
                "connect",
                &pair.addr_b,
                "8080",
                "10",
                "close",
                "3",
            ],
        );
        // Nobody listens on 8081: refused (RST), a failed connect.
        pair.exec_ok(
            &pair.a,
            netsight(),
            &[
                "lab",
                "agent",
                "connect",
                &pair.addr_b,
                "8081",
                "1",
                "close",
                "3",
            ],
        );
        drop(sink);
    };
    let addr = pair.addr_a.clone();
    let mut args = vec![
        "trace",
        "connect",
        "--duration",
        "3",
        "--json",
        "--addr",
        addr.as_str(),
    ];
    let run = |args: &[&str], pair: &NetnsPair| {
        let tracer = Command::new(netsight())
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1000));
        work(pair);
        let out = tracer.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let connects = run(&args, &pair);
    let summary = &connects.last().unwrap()["summary"];
    let events = &connects[..connects.len() - 1];
    assert_eq!(
        events.iter().filter(|e| e["established"] == true).count(),
        10,
        "{summary}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["established"] == false && e["remote_port"] == 8081)
            .count(),
        1
    );
    assert!(events.iter().all(|e| e["comm"] == "netsight"));
    assert!(events
        .iter()
        .filter(|e| e["established"] == true)
        .all(|e| e["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0)));

    args[1] = "accept";
    args[6] = pair.addr_b.as_str();
    let accepts = run(&args, &pair);
    let accepted = accepts
        .iter()
        .filter(|e| e["established"] == true && e["local_port"] == 8080)
        .count();
    assert_eq!(accepted, 10);
}

#[test]
fn no_events_lost_at_100k_per_second() {
    if !privileged("no_events_lost_at_100k_per_second", &["ip"]) {
        return;
    }
    let _shared = shared();
    let pair = NetnsPair::new();
    let tracer = Command::new(netsight())
        .args(["trace", "drops", "--duration", "5", "--json", "--quiet"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    // 300,000 datagrams to a closed port inside the namespace: one drop event each.
    let started = std::time::Instant::now();
    pair.exec_ok(
        &pair.a,
        netsight(),
        &[
            "lab",
            "agent",
            "udp-blast",
            "127.0.0.1",
            "9",
            "300000",
            "16",
        ],
    );
    let rate = 300_000.0 / started.elapsed().as_secs_f64();
    let out = tracer.wait_with_output().unwrap();
    assert!(out.status.success());
    let summary: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let no_socket = summary["summary"]["by_reason"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[0] == "NO_SOCKET")
        .map(|r| r[1].as_u64().unwrap())
        .unwrap_or(0);
    assert!(
        rate >= 100_000.0,
        "the load must reach 100k events/s, got {rate:.0}/s"
    );
    assert_eq!(summary["summary"]["lost_events"], 0, "{summary}");
    assert!(no_socket >= 300_000, "every drop traced: {no_socket}");
}

#[test]
fn rtt_histogram_covers_the_peer_of_a_transfer() {
    if !privileged("rtt_histogram_covers_the_peer_of_a_transfer", &["ip"]) {
        return;
    }
    let _shared = shared();
    let pair = NetnsPair::new();
    let lines = trace_during("rtt", "4", || {
        let sink = Command::new("ip")
            .args([
                "netns",
                "exec",
                &pair.b,
                netsight(),
                "lab",
                "agent",
                "listen",
                "8080",
                "16",
                "sink",
                "3",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        pair.exec_ok(
            &pair.a,
            netsight(),
            &["lab", "agent", "bulk", &pair.addr_b, "8080", "1"],
        );
        drop(sink);
    });
    let peers = lines.last().unwrap()["summary"]["peers"]
        .as_array()
        .unwrap()
        .clone();
    // The sender (in a) sees ACKs from b; the receiver (in b) sees data from a.
    let to_b = peers
        .iter()
        .find(|p| p["peer"] == pair.addr_b.as_str())
        .expect("peer b");
    assert!(to_b["samples"].as_u64().unwrap() > 100, "{to_b}");
    let buckets = to_b["buckets"].as_array().unwrap();
    let counted: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, to_b["samples"].as_u64().unwrap());
    assert!(
        buckets
            .iter()
            .all(|b| b["high_us"].as_u64().unwrap() <= 1 << 20),
        "veth RTTs are far below a second"
    );
}

#[test]
fn synbl_sees_a_full_accept_queue() {
    if !privileged("synbl_sees_a_full_accept_queue", &["ip", "python3"]) {
        return;
    }
    let _shared = shared();
    let pair = NetnsPair::new();
    let holder = support::ConnHolder::start(&pair.b, &["leak-and-overflow"]);
    let port = holder.ports[0].to_string();
    let out = pair.exec_ok(
        &pair.b,
        netsight(),
        &[
            "trace",
            "synbl",
            "--duration",
            "1",
            "--json",
            "--port",
            &port,
        ],
    );
    let summary: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let listeners = summary["summary"]["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 1, "{summary}");
    let l = &listeners[0];
    assert_eq!(l["backlog"], 2);
    assert_eq!(l["max_queued"], 3);
    assert_eq!(l["full_samples"], l["samples"], "full in every sample");
    assert!(l["samples"].as_u64().unwrap() >= 5);
}

#[test]
fn no_program_or_link_stays_after_any_tracer() {
    if !privileged("no_program_or_link_stays_after_any_tracer", &["bpftool"]) {
        return;
    }
    let _alone = TRACERS.write().unwrap_or_else(|e| e.into_inner());
    for kind in [
        "drops", "retrans", "life", "states", "connect", "accept", "rtt",
    ] {
        let out = support::output(netsight(), &["trace", kind, "--duration", "0.3", "--quiet"]);
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ours = [
        "kfree_skb",
        "tcp_retransmit_skb",
        "inet_sock_set_state",
        "tcp_probe",
    ];
    let (mut progs, mut links) = (String::new(), String::new());
    for _ in 0..30 {
        progs = support::run("bpftool", &["prog", "list"]);
        links = support::run("bpftool", &["link", "list"]);
        if !ours.iter().any(|n| progs.contains(n) || links.contains(n)) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("tracer programs or links left behind:\n{progs}\n{links}");
}

/// SIGTERM and SIGHUP end a tracer as Ctrl-C does: it stops early, prints its
/// summary, and leaves no program or link behind.
#[test]
fn signals_end_a_tracer_with_its_summary_and_nothing_left_attached() {
    if !privileged("signals_end_a_tracer", &["bpftool"]) {
        return;
    }
    let _alone = TRACERS.write().unwrap_or_else(|e| e.into_inner());
    for signal in ["TERM", "HUP", "INT"] {
        let child = std::process::Command::new(netsight())
            .args(["trace", "drops", "--duration", "60", "--json", "--quiet"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Attached when the kernel lists the program.
        let started = std::time::Instant::now();
        while !support::run("bpftool", &["prog", "list"]).contains("kfree_skb") {
            assert!(started.elapsed().as_secs() < 20, "tracer never attached");
            std::thread::yield_now();
        }
        support::run("kill", &[&format!("-{signal}"), &child.id().to_string()]);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{signal}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            started.elapsed().as_secs() < 30,
            "{signal} did not stop the tracer"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap();
        assert!(
            summary["summary"].is_object(),
            "{signal}: no summary: {stdout}"
        );
        // The kernel frees a program after its last reference goes (RCU): allow it a moment.
        let closed = std::time::Instant::now();
        while support::run("bpftool", &["prog", "list"]).contains("kfree_skb") {
            assert!(
                closed.elapsed().as_secs() < 5,
                "{signal}: program left attached"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
