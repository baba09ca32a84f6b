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

fn alongside_other_tracers() -> std::sync::RwLockReadGuard<'static, ()> {
    TRACERS.read().unwrap_or_else(|e| e.into_inner())
}

/// A running `netsight trace ...`, started (inside a namespace if given) and
/// returned once it says its programs are attached: no sleeping on luck.
struct Tracer {
    child: std::process::Child,
    stderr: std::thread::JoinHandle<String>,
}

impl Tracer {
    fn start(ns: Option<&str>, args: &[&str]) -> Tracer {
        use std::io::BufRead as _;
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, netsight()]);
                c
            }
            None => Command::new(netsight()),
        };
        let mut child = cmd
            .arg("trace")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            assert!(
                reader.read_line(&mut line).unwrap() > 0,
                "tracer {args:?} ended before attaching: {seen}"
            );
            seen.push_str(&line);
            if line.contains("attached to") {
                break;
            }
        }
        let stderr = std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
            seen + &rest
        });
        Tracer { child, stderr }
    }

    fn still_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the end; the JSON lines it printed (events, then the summary).
    fn finish(self) -> Vec<Value> {
        let out = self.child.wait_with_output().unwrap();
        let stderr = self.stderr.join().unwrap_or_default();
        assert!(out.status.success(), "tracer failed: {stderr}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// `lab agent listen PORT BACKLOG MODE SECONDS` in `ns`, returned once it is listening.
fn listen_in(
    ns: &str,
    port: &str,
    backlog: &str,
    mode: &str,
    seconds: &str,
) -> std::process::Child {
    use std::io::BufRead as _;
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            netsight(),
            "lab",
            "agent",
            "listen",
            port,
            backlog,
            mode,
            seconds,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "READY", "listener in {ns}");
    child
}

/// A summary row (NsCount) by name: its count summed over namespaces.
fn count_of(rows: &Value, name: &str) -> u64 {
    rows.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == name)
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

#[test]
fn drops_are_named_by_reason_and_nothing_stays_loaded() {
    if !privileged(
        "drops_are_named_by_reason_and_nothing_stays_loaded",
        &["ip", "bpftool", "bash"],
    ) {
        return;
    }
    let _tracers = alongside_other_tracers();
    let pair = NetnsPair::new();
    let tracer = Tracer::start(
        None,
        &[
            "drops",
            "--duration",
            "3",
            "--json",
            "--addr",
            &pair.addr_b,
            "--port",
            "9",
        ],
    );
    // The same tracer inside namespace a sees none of b's drops.
    let in_a = Tracer::start(
        Some(&pair.a),
        &["drops", "--duration", "3", "--json", "--quiet"],
    );
    // 50 datagrams to a port nobody listens on in namespace b: NO_SOCKET drops;
    // 30 more to port 10, which the filter must leave out of the summary too.
    let burst = format!(
        "for i in $(seq 50); do echo x > /dev/udp/{b}/9; done 2>/dev/null; for i in $(seq 30); do echo x > /dev/udp/{b}/10; done 2>/dev/null; true",
        b = pair.addr_b
    );
    pair.exec_ok(&pair.a, "bash", &["-c", &burst]);
    let lines = tracer.finish();
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(
        count_of(&summary["by_reason"], "NO_SOCKET"),
        50,
        "exactly our 50 drops: {summary}"
    );
    let a_summary = in_a.finish().pop().unwrap();
    assert_eq!(
        count_of(&a_summary["summary"]["by_reason"], "NO_SOCKET"),
        0,
        "scoped to namespace a: {a_summary}"
    );
    assert_eq!(summary["total"], 50, "{summary}");
    let netns_b = std::fs::metadata(format!("/run/netns/{}", pair.b))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    assert!(
        summary["by_reason"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["netns"] == netns_b),
        "every row names namespace b ({netns_b}): {summary}"
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
    // Alone: the kernel skips a BPF program that is already running on a CPU (recursion
    // protection, counted in bpf_prog_info.recursion_misses, which aya 0.14 does not
    // expose). Other tests' tracers and transfers nest retransmits into ours that way
    // (seen in CI: 46 of 11,837 segments); without them the count is exact.
    let _alone = TRACERS.write().unwrap_or_else(|e| e.into_inner());
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
    // Inside namespace a, the tracer sees only a's retransmissions (data and SYN-ACK).
    let mut tracer = Tracer::start(Some(&pair.a), &["retrans", "--duration", "30", "--json"]);
    let before = retrans_segs(&pair, &pair.a);
    let sink = listen_in(&pair.b, "8080", "16", "sink", "5");
    pair.exec_ok(
        &pair.a,
        netsight(),
        &["lab", "agent", "bulk", &pair.addr_b, "8080", "2"],
    );
    drop(sink);
    // Quiet before the second reading: no socket of the transfer left but TIME-WAIT.
    let started = std::time::Instant::now();
    loop {
        let socks: Value = serde_json::from_str(&pair.exec_ok(
            &pair.a,
            netsight(),
            &["sockets", "--json", "--port", "8080", "--no-process"],
        ))
        .unwrap();
        if socks
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "TIME-WAIT")
        {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 20,
            "the transfer never finished: {socks}"
        );
        std::thread::yield_now();
    }
    let after = retrans_segs(&pair, &pair.a);
    assert!(
        tracer.still_running(),
        "the tracer ended before the second counter reading: the comparison would be unfair"
    );
    netsight_stop(&tracer);
    let lines = tracer.finish();

    // The counter counts segments (a retransmitted GSO skb carries several), and
    // counts them before transmission: a retransmit that then fails in transmit
    // (err != 0, seen under load) is in the counter; one that fails earlier is not.
    let summary = &lines.last().unwrap()["summary"];
    assert_eq!(summary["lost_events"], 0, "an incomplete trace: {summary}");
    let (mut ok, mut failed) = (0u64, 0u64);
    for e in &lines[..lines.len() - 1] {
        assert_eq!(
            e["local_addr"],
            pair.addr_a.as_str(),
            "an event of another namespace: {e}"
        );
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
    if failed == 0 {
        assert_eq!(delta, ok, "TcpRetransSegs delta equals the traced segments");
    } else {
        // A retransmit failing inside transmit is in the counter; one failing before is not.
        assert!(
            ok <= delta && delta <= ok + failed,
            "TcpRetransSegs delta {delta} outside traced [{ok}, {}] (ok, ok + failed)",
            ok + failed
        );
    }
}

/// Ends a tracer the way a user does (SIGINT): it prints its summary and exits 0.
fn netsight_stop(tracer: &Tracer) {
    support::run("kill", &["-INT", &tracer.child.id().to_string()]);
}

/// Runs a tracer for `seconds` while `work` runs; returns its JSON lines.
fn trace_during(kind: &str, seconds: &str, work: impl FnOnce()) -> Vec<Value> {
    let tracer = Tracer::start(None, &[kind, "--duration", seconds, "--json"]);
    work();
    tracer.finish()
}

#[test]
fn life_sees_exactly_the_connections_made_and_states_their_handshakes() {
    if !privileged(
        "life_sees_exactly_the_connections_made_and_states_their_handshakes",
        &["ip"],
    ) {
        return;
    }
    let _tracers = alongside_other_tracers();
    let pair = NetnsPair::new();
    let connect = |pair: &NetnsPair| {
        let sink = listen_in(&pair.b, "8080", "64", "sink", "3");
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
    // Every transition to CLOSE names the real local port (the tracepoint's inet_sport).
    let closes: Vec<&Value> = changes
        .iter()
        .filter(|c| {
            c["new_state"] == "CLOSE" && (c["remote_port"] == 8080 || c["local_port"] == 8080)
        })
        .collect();
    assert!(closes.len() >= 20, "{}", closes.len());
    assert!(
        closes.iter().all(|c| c["local_port"] != 0),
        "a CLOSE with local port 0: {closes:?}"
    );
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
    let _tracers = alongside_other_tracers();
    let pair = NetnsPair::new();
    let work = |pair: &NetnsPair| {
        let sink = listen_in(&pair.b, "8080", "64", "sink", "3");
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
        "connect",
        "--duration",
        "3",
        "--json",
        "--addr",
        addr.as_str(),
    ];
    let run = |args: &[&str], pair: &NetnsPair| {
        let tracer = Tracer::start(None, args);
        work(pair);
        tracer.finish()
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

    assert_eq!(
        summary["established"], 10,
        "the summary counts what the filter admits: {summary}"
    );
    assert_eq!(summary["failed"], 1, "{summary}");
    args[0] = "accept";
    args[5] = pair.addr_b.as_str();
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
    let _tracers = alongside_other_tracers();
    let pair = NetnsPair::new();
    // Inside the namespace: only its drops are counted.
    let tracer = Tracer::start(
        Some(&pair.a),
        &["drops", "--duration", "5", "--json", "--quiet"],
    );
    // 300,000 datagrams to a closed port inside the namespace: one drop event each.
    let sent = pair.exec_ok(
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
    // "sent N in S s": the rate the kernel saw events at, timed by the sender.
    let seconds: f64 = sent
        .split_whitespace()
        .nth(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("udp-blast said {sent:?}"));
    let rate = 300_000.0 / seconds;
    let summary = tracer.finish().pop().unwrap();
    let no_socket = count_of(&summary["summary"]["by_reason"], "NO_SOCKET");
    assert!(
        rate >= 100_000.0,
        "the load must reach 100k events/s, got {rate:.0}/s"
    );
    assert_eq!(summary["summary"]["lost_events"], 0, "{summary}");
    assert_eq!(
        no_socket, 300_000,
        "every drop traced, and only this namespace's"
    );
}

#[test]
fn rtt_histogram_covers_the_peer_of_a_transfer() {
    if !privileged("rtt_histogram_covers_the_peer_of_a_transfer", &["ip"]) {
        return;
    }
    let _tracers = alongside_other_tracers();
    let pair = NetnsPair::new();
    let lines = trace_during("rtt", "4", || {
        let sink = listen_in(&pair.b, "8080", "16", "sink", "3");
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
    let _tracers = alongside_other_tracers();
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

/// SYN-ACK retransmissions (tcp:tcp_retransmit_synack) are traced as their own
/// kind and TcpRetransSegs counts them: the delta equals the trace exactly.
#[test]
fn synack_retransmissions_are_traced_and_counted() {
    if !privileged(
        "synack_retransmissions_are_traced_and_counted",
        &["ip", "iptables"],
    ) {
        return;
    }
    let _tracers = alongside_other_tracers();
    let pair = NetnsPair::new();
    // The client's handshake ACKs never reach the server: it re-sends its SYN-ACK.
    pair.exec_ok(
        &pair.a,
        "iptables",
        &[
            "-A",
            "OUTPUT",
            "-p",
            "tcp",
            "--dport",
            "8080",
            "--tcp-flags",
            "SYN,ACK,FIN,RST,PSH",
            "ACK",
            "-j",
            "DROP",
        ],
    );
    let sink = listen_in(&pair.b, "8080", "16", "noaccept", "10");
    let tracer = Tracer::start(Some(&pair.b), &["retrans", "--duration", "30", "--json"]);
    let before = retrans_segs(&pair, &pair.b);
    // One connection, held 2.5 s: the server re-sends its SYN-ACK after 1 s and 3 s... at least once.
    pair.exec_ok(
        &pair.a,
        netsight(),
        &[
            "lab",
            "agent",
            "connect",
            &pair.addr_b,
            "8080",
            "1",
            "hold",
            "2.5",
        ],
    );
    // The client's FIN (not dropped) completes the handshake: then no more SYN-ACKs.
    let started = std::time::Instant::now();
    while pair
        .exec_ok(
            &pair.b,
            netsight(),
            &["sockets", "--state", "syn-recv", "--json", "--no-process"],
        )
        .trim()
        != "[]"
    {
        assert!(
            started.elapsed().as_secs() < 20,
            "the request socket never went away"
        );
        std::thread::yield_now();
    }
    let after = retrans_segs(&pair, &pair.b);
    netsight_stop(&tracer);
    let lines = tracer.finish();
    drop(sink);
    let events = &lines[..lines.len() - 1];
    let synacks = events.iter().filter(|e| e["kind"] == "synack").count() as u64;
    assert!(synacks >= 1, "no SYN-ACK retransmission traced: {lines:?}");
    assert!(events
        .iter()
        .filter(|e| e["kind"] == "synack")
        .all(|e| e["state"] == "SYN-RECV" && e["local_port"] == 8080));
    let traced: u64 = events.iter().map(|e| e["segs"].as_u64().unwrap()).sum();
    assert_eq!(
        after - before,
        traced,
        "TcpRetransSegs delta vs traced: {lines:?}"
    );
    assert_eq!(
        count_of(&lines.last().unwrap()["summary"]["by_kind"], "synack"),
        synacks
    );
}

/// --port filters rtt samples in the kernel; the summary has only that connection's peer.
#[test]
fn rtt_port_filter_applies_in_the_kernel() {
    if !privileged("rtt_port_filter_applies_in_the_kernel", &["ip"]) {
        return;
    }
    let _tracers = alongside_other_tracers();
    let pair = NetnsPair::new();
    let tracer = Tracer::start(
        Some(&pair.a),
        &["rtt", "--duration", "30", "--json", "--port", "8081"],
    );
    let sink = listen_in(&pair.b, "8080", "16", "sink", "3");
    pair.exec_ok(
        &pair.a,
        netsight(),
        &["lab", "agent", "bulk", &pair.addr_b, "8080", "1"],
    );
    drop(sink);
    netsight_stop(&tracer);
    let summary = tracer.finish().pop().unwrap();
    assert_eq!(
        summary["summary"]["peers"].as_array().unwrap().len(),
        0,
        "port 8080 traffic passed a --port 8081 filter: {summary}"
    );
}
