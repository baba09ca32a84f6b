//! `netsight bench` for real: a server in one namespace and clients in another
//! over veth, and a server on loopback fed garbage and many clients at once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{netsight, output, privileged, NetnsPair};

/// A running `netsight bench server`, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(prefix: &[&str], listen: &str, extra: &[&str]) -> Server {
        let mut cmd = match prefix.split_first() {
            Some((p, rest)) => {
                let mut c = Command::new(p);
                c.args(rest).arg(netsight());
                c
            }
            None => Command::new(netsight()),
        };
        let mut child = cmd
            .args(["bench", "server", "--listen", listen])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bench server");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = stderr.read_to_string(&mut sink);
        });
        Server { child, addr }
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(prefix: &[&str], args: &[&str]) -> Value {
    let mut full: Vec<&str> = prefix.to_vec();
    full.push(netsight());
    full.push("bench");
    full.extend_from_slice(args);
    full.push("--json");
    let out = output(full[0], &full[1..]);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn stream_rr_and_crr_between_namespaces() {
    if !privileged("stream_rr_and_crr_between_namespaces", &["ip", "iptables"]) {
        return;
    }
    let pair = NetnsPair::new();
    let server = Server::start(
        &["ip", "netns", "exec", &pair.b],
        &format!("{}:9978", pair.addr_b),
        &[],
    );
    let to = server.addr.to_string();
    let in_a = ["ip", "netns", "exec", pair.a.as_str()];
    let s = client(
        &in_a,
        &["stream", "--to", &to, "-P", "2", "--duration", "2s"],
    );
    let flows = s["streams"].as_array().unwrap();
    assert_eq!(flows.len(), 2);
    for f in flows {
        let (sent, got) = (
            f["sender_bytes"].as_u64().unwrap(),
            f["receiver_bytes"].as_u64().unwrap(),
        );
        assert!(got > 1_000_000 && got <= sent, "{f}");
    }
    assert!(
        s["workload"].is_object() && s["findings"].is_array(),
        "doctor over the run: {s}"
    );
    let total = s["receiver_bits_per_s"].as_f64().unwrap();
    let sum: f64 = flows
        .iter()
        .map(|f| f["receiver_bits_per_s"].as_f64().unwrap())
        .sum();
    assert!((total - sum).abs() < 1.0 && total > 1e8, "{s}");
    // The receiver's count agrees with the interface's: veth vb received at least that much.
    let rev = client(
        &in_a,
        &["stream", "--to", &to, "--reverse", "--duration", "1s"],
    );
    assert!(rev["receiver_bits_per_s"].as_f64().unwrap() > 1e8, "{rev}");
    // Reversed, the server is the sender: its tcp_info view comes back in its report.
    let class = rev["streams"][0]["why"]["classification"].as_str();
    assert!(class.is_some_and(|c| !c.is_empty()), "{rev}");
    assert!(
        rev["counters"]["server"]["Tcp.OutSegs"].as_i64().unwrap() > 1000,
        "{rev}"
    );
    let both = client(
        &in_a,
        &["stream", "--to", &to, "--bidir", "--duration", "1s"],
    );
    assert_eq!(both["streams"].as_array().unwrap().len(), 2, "{both}");
    for dir in ["upload_bits_per_s", "download_bits_per_s"] {
        assert!(both[dir].as_f64().unwrap() > 1e8, "{dir}: {both}");
    }

    let rr = client(
        &in_a,
        &["rr", "--to", &to, "--size", "64", "--duration", "1s"],
    );
    let l = &rr["latency"];
    let p = |k: &str| l[k].as_f64().unwrap();
    assert!(rr["transactions"].as_u64().unwrap() > 500, "{rr}");
    assert!(
        p("min_us") <= p("p50_us") && p("p50_us") <= p("p99_us") && p("p99_us") <= p("max_us"),
        "{rr}"
    );
    // Fixed rate: close to the asked rate, not faster.
    let fixed = client(
        &in_a,
        &["rr", "--to", &to, "--rate", "200", "--duration", "1s"],
    );
    let n = fixed["transactions"].as_u64().unwrap();
    assert!((180..=201).contains(&n), "{fixed}");

    // UDP at a fixed rate: all of it arrives, at that rate.
    let udp = client(
        &in_a,
        &["udp", "--to", &to, "--rate", "20000", "--duration", "1s"],
    );
    let (sent, got) = (
        udp["sent"].as_u64().unwrap(),
        udp["received"].as_u64().unwrap(),
    );
    assert!(
        (19_000..=20_100).contains(&sent) && got * 100 >= sent * 99,
        "{udp}"
    );
    let pps = udp["packets_per_s"].as_f64().unwrap();
    assert!((18_000.0..=22_000.0).contains(&pps), "{udp}");
    // A tenth dropped at random on the way in: the loss is counted as such.
    pair.exec_ok(
        &pair.b,
        "iptables",
        &[
            "-A",
            "INPUT",
            "-p",
            "udp",
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            "0.1",
            "-j",
            "DROP",
        ],
    );
    let lossy = client(
        &in_a,
        &["udp", "--to", &to, "--rate", "20000", "--duration", "1s"],
    );
    let loss = lossy["loss_percent"].as_f64().unwrap();
    assert!((7.0..=13.0).contains(&loss), "{lossy}");
    assert_eq!(
        lossy["lost"].as_u64().unwrap(),
        lossy["sent"].as_u64().unwrap() - lossy["received"].as_u64().unwrap()
    );

    let crr = client(&in_a, &["crr", "--to", &to, "--duration", "1s"]);
    assert!(crr["connections"].as_u64().unwrap() > 100, "{crr}");
    assert_eq!(crr["errors"], 0, "{crr}");
    assert!(crr["connect_latency"]["p50_us"].as_f64().unwrap() > 0.0);
    // The server timed each accept from the segment that made the connection
    // acceptable (its kernel's receive timestamp): one sample per connection.
    let wait = &crr["accept_wait_latency"];
    let (samples, done) = (
        wait["count"].as_u64().unwrap(),
        crr["connections"].as_u64().unwrap(),
    );
    assert!(samples >= done && samples <= done + 1, "{crr}");
    assert!(
        wait["p50_us"].as_f64().unwrap() > 0.0 && wait["p50_us"].as_f64().unwrap() < 100_000.0,
        "{crr}"
    );
}

fn why(report: &Value) -> (String, String) {
    let w = &report["streams"][0]["why"];
    (
        w["classification"].as_str().unwrap_or("none").to_string(),
        w["summary"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn a_tiny_receive_buffer_and_random_loss_are_named_as_the_limit() {
    if !privileged(
        "a_tiny_receive_buffer_and_random_loss_are_named_as_the_limit",
        &["ip", "iptables"],
    ) {
        return;
    }
    let pair = NetnsPair::new();
    let in_b = ["ip", "netns", "exec", pair.b.as_str()];
    let in_a = ["ip", "netns", "exec", pair.a.as_str()];
    let tiny = Server::start(
        &in_b,
        &format!("{}:9978", pair.addr_b),
        &["--rcvbuf", "8192"],
    );
    let plain = Server::start(&in_b, &format!("{}:9979", pair.addr_b), &[]);
    let stream = |to: SocketAddr| {
        client(
            &in_a,
            &["stream", "--to", &to.to_string(), "--duration", "2s"],
        )
    };
    let (class, summary) = why(&stream(tiny.addr));
    assert_eq!(class, "receiver-window-limited", "{summary}");
    assert!(summary.contains("SO_RCVBUF"), "{summary}");
    let (class, summary) = why(&stream(plain.addr));
    assert!(
        class != "receiver-window-limited" && class != "loss-limited",
        "nothing limits the plain server's flow: {class}: {summary}"
    );
    // 2 % of the segments to the plain server dropped at random (the namespace,
    // and the rule with it, go when the pair does).
    pair.exec_ok(
        &pair.b,
        "iptables",
        &[
            "-A",
            "INPUT",
            "-p",
            "tcp",
            "--dport",
            "9979",
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            "0.02",
            "-j",
            "DROP",
        ],
    );
    let lossy = stream(plain.addr);
    let (class, summary) = why(&lossy);
    assert_eq!(class, "loss-limited", "{summary}");
    let w = &lossy["streams"][0]["why"];
    assert!(w["retransmitted_percent"].as_f64().unwrap() >= 1.0, "{w}");
    // doctor over the run, on the sender's host, names the retransmissions too.
    let rules: Vec<&str> = lossy["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["rule_id"].as_str())
        .collect();
    assert!(rules.contains(&"tcp.retransmissions"), "{rules:?}");
    assert!(w["loss_ceiling_bits_per_s"].as_f64().unwrap() > 0.0, "{w}");
}

/// The server's answer to a connection: the error frame's message, if any.
fn error_for(addr: SocketAddr, bytes: &[u8]) -> Option<String> {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = conn.write_all(bytes);
    let mut reply = Vec::new();
    let _ = conn.read_to_end(&mut reply);
    if reply.len() < 8 || &reply[..4] != b"NSB\x01" {
        return None;
    }
    let v: Value = serde_json::from_slice(&reply[8..]).ok()?;
    (v["type"] == "error").then(|| v["message"].as_str().unwrap_or("").to_string())
}

#[test]
fn the_server_survives_garbage_and_many_clients_at_once() {
    let mut server = Server::start(&[], "127.0.0.1:0", &["--max-sessions", "64"]);
    let addr = server.addr;
    let frame = |body: &[u8], version: u8| {
        let mut f = b"NSB".to_vec();
        f.push(version);
        f.extend_from_slice(&(body.len() as u32).to_be_bytes());
        f.extend_from_slice(body);
        f
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), "magic"),
        (vec![0xff; 300], "magic"),
        (b"NSB\x01\xff\xff\xff\xff".to_vec(), "limit"),
        (frame(b"{}", 9), "version 9"),
        (frame(b"{not json", 1), "bad message"),
        (
            frame(br#"{"type":"hello","mode":"rr","duration_ms":86400000,"size":64,"reverse":false}"#, 1),
            "duration_ms",
        ),
        (
            frame(br#"{"type":"hello","mode":"rr","duration_ms":1000,"size":0,"reverse":false}"#, 1),
            "size",
        ),
        (
            frame(br#"{"type":"hello","mode":"teleport","duration_ms":1000,"size":1,"reverse":false}"#, 1),
            "bad message",
        ),
        (frame(br#"{"type":"ready"}"#, 1), "expected a hello"),
    ];
    for (bytes, needle) in &cases {
        let said = error_for(addr, bytes).unwrap_or_else(|| panic!("no error frame for {needle}"));
        assert!(said.contains(needle), "{needle}: {said:?}");
    }
    // A client that connects and says nothing is dropped after the hello timeout,
    // without holding anyone else up.
    let silent = std::thread::spawn(move || error_for(addr, b""));
    assert!(server.alive());

    // 40 clients at once, each a 1-second rr.
    let results: Vec<Value> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..40)
            .map(|_| {
                scope.spawn(|| client(&[], &["rr", "--to", &addr.to_string(), "--duration", "1s"]))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(results
        .iter()
        .all(|r| r["transactions"].as_u64().unwrap() > 10));
    assert!(server.alive());
    let s = client(
        &[],
        &["stream", "--to", &addr.to_string(), "--duration", "1s"],
    );
    assert!(s["receiver_bits_per_s"].as_f64().unwrap() > 1e8);

    // --json-stream: a line per second while it runs, then the result.
    let out = output(
        netsight(),
        &[
            "bench",
            "stream",
            "--to",
            &addr.to_string(),
            "--duration",
            "2s",
            "--json-stream",
        ],
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 2, "{lines:?}");
    assert!(lines[0]["bits_per_s"].as_f64().unwrap() > 1e8 && lines[0]["interval_end_s"] == 1);
    assert!(
        lines.last().unwrap()["result"]["receiver_bits_per_s"]
            .as_f64()
            .unwrap()
            > 1e8
    );
    let said = silent
        .join()
        .unwrap()
        .expect("an error frame for a silent client");
    assert!(said.contains("no hello within 5 s"), "{said}");
    // A client to a port nobody serves gets a clear error and exit 3.
    let out = output(
        netsight(),
        &["bench", "rr", "--to", "127.0.0.1:1", "--duration", "1s"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("connecting to 127.0.0.1:1"));
}

#[test]
fn ab_of_nodelay_on_split_writes_shows_the_nagle_stall() {
    let server = Server::start(&[], "127.0.0.1:0", &[]);
    let to = server.addr.to_string();
    let out = output(
        netsight(),
        &[
            "bench",
            "ab",
            "--a",
            "--nodelay",
            "--b",
            "",
            "--trials",
            "2",
            "--warmup",
            "0",
            "--json",
            "rr",
            "--to",
            &to,
            "--size",
            "32",
            "--writes",
            "2",
            "--duration",
            "1s",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p50 = &v["metrics"][0];
    assert_eq!(p50["metric"], "p50_us");
    let c = &p50["comparison"];
    // Without TCP_NODELAY the second write waits for the delayed ACK (40 ms).
    assert!(c["b_mean"].as_f64().unwrap() > 20_000.0, "{v:#}");
    assert!(c["a_mean"].as_f64().unwrap() < 5_000.0, "{v:#}");
    assert_eq!(c["significant"], true, "{v:#}");
    assert_eq!(p50["better"], "a");
    let bad = output(
        netsight(),
        &["bench", "ab", "--a", "", "--b", "", "teleport", "--to", &to],
    );
    assert_eq!(bad.status.code(), Some(64));
}

#[test]
fn rrul_grades_a_deep_queue_on_the_uplink_and_not_the_downlink() {
    if !privileged(
        "rrul_grades_a_deep_queue_on_the_uplink_and_not_the_downlink",
        &["ip", "tc"],
    ) {
        return;
    }
    let pair = NetnsPair::new();
    let server = Server::start(
        &["ip", "netns", "exec", &pair.b],
        &format!("{}:9978", pair.addr_b),
        &[],
    );
    let to = server.addr.to_string();
    // The client's uplink: 20 Mbit/s with a 3 MB FIFO (over a second of queue).
    pair.exec_ok(
        &pair.a,
        "tc",
        &[
            "qdisc", "add", "dev", "va", "root", "tbf", "rate", "20mbit", "burst", "32kbit",
            "limit", "3mb",
        ],
    );
    let r = client(
        &["ip", "netns", "exec", &pair.a],
        &["rrul", "--to", &to, "--duration", "2s"],
    );
    let phase = |name: &str| {
        r["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["phase"] == name)
            .unwrap_or_else(|| panic!("no {name} phase: {r}"))
            .clone()
    };
    let (idle, up, down) = (phase("idle"), phase("upload"), phase("download"));
    assert!(idle["latency"]["p50_us"].as_f64().unwrap() < 5_000.0, "{r}");
    // The uplink's queue fills: tens of milliseconds or more added.
    assert!(up["bloat_p50_us"].as_f64().unwrap() > 30_000.0, "{r}");
    let up_rate = up["upload_bits_per_s"].as_f64().unwrap();
    assert!((10e6..=25e6).contains(&up_rate), "{r}");
    // The downlink has no such queue.
    assert!(down["bloat_p50_us"].as_f64().unwrap() < 20_000.0, "{r}");
    assert!(down["download_bits_per_s"].as_f64().unwrap() > 100e6, "{r}");
    let grade = r["grade"].as_str().unwrap();
    assert!(["B", "C", "D", "F"].contains(&grade), "{r}");
}

#[test]
fn socket_option_flags_take_effect_on_both_ends() {
    if !privileged("socket_option_flags_take_effect_on_both_ends", &["ip"]) {
        return;
    }
    let pair = NetnsPair::new();
    // Fast Open is per namespace: client side in a, server side in b.
    pair.exec_ok(&pair.a, "sysctl", &["-qw", "net.ipv4.tcp_fastopen=1"]);
    pair.exec_ok(&pair.b, "sysctl", &["-qw", "net.ipv4.tcp_fastopen=2"]);
    let listen = format!("{}:9978", pair.addr_b);
    let in_b = ["ip", "netns", "exec", pair.b.as_str()];
    let server = Server::start(&in_b, &listen, &["--fastopen", "--reuseport"]);
    let to = server.addr.to_string();
    let in_a = ["ip", "netns", "exec", pair.a.as_str()];
    let crr = client(
        &in_a,
        &["crr", "--to", &to, "--fastopen", "--duration", "1s"],
    );
    let n = crr["connections"].as_i64().unwrap();
    // The first connection fetches the cookie; the rest carry data in the SYN.
    let passive = crr["counters"]["server"]["TcpExt.TCPFastOpenPassive"]
        .as_i64()
        .unwrap_or(0);
    let active = crr["counters"]["client"]["TcpExt.TCPFastOpenActive"]
        .as_i64()
        .unwrap_or(0);
    assert!(n > 100 && passive >= n - 1 && active >= n - 1, "{crr}");
    // A second server on the port is refused without SO_REUSEPORT, let in with it.
    let refused = output(
        "ip",
        &[
            "netns",
            "exec",
            &pair.b,
            netsight(),
            "bench",
            "server",
            "--listen",
            &listen,
        ],
    );
    assert!(!refused.status.success(), "a second plain server started");
    let second = Server::start(&in_b, &listen, &["--reuseport"]);
    drop(second);
    // TCP_CORK holds each small request until the 200 ms cork timer.
    let corked = client(
        &in_a,
        &[
            "rr",
            "--to",
            &to,
            "--cork",
            "--size",
            "64",
            "--duration",
            "1s",
        ],
    );
    let p50 = corked["latency"]["p50_us"].as_f64().unwrap();
    assert!(
        p50 > 150_000.0 && corked["transactions"].as_u64().unwrap() < 10,
        "{corked}"
    );
    // The rest are accepted and the run works (busy polling needs CAP_NET_ADMIN above
    // net.core.busy_read, which root has).
    let plain = client(
        &in_a,
        &[
            "rr",
            "--to",
            &to,
            "--quickack",
            "--busy-poll",
            "50",
            "--nodelay",
            "--duration",
            "1s",
        ],
    );
    assert!(
        plain["latency"]["p50_us"].as_f64().unwrap() < 50_000.0,
        "{plain}"
    );
}

#[test]
fn topology_all_runs_the_mode_over_each_kind_and_leaves_nothing() {
    if !privileged(
        "topology_all_runs_the_mode_over_each_kind_and_leaves_nothing",
        &["ip"],
    ) {
        return;
    }
    let r = client(&[], &["--topology", "all", "crr", "--duration", "1s"]);
    let rows = r["topologies"].as_array().unwrap();
    let kinds: Vec<&str> = rows
        .iter()
        .map(|t| t["topology"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["veth", "bridge", "macvlan", "ipvlan"], "{r}");
    for row in rows {
        match (&row["result"], &row["unavailable"]) {
            (Value::Object(_), _) => {
                assert!(
                    row["result"]["connections"].as_u64().unwrap() > 100,
                    "{row}"
                );
            }
            // A kernel without the type says so (this CI kernel lacks macvlan and ipvlan).
            (_, Value::String(why)) => {
                assert!(
                    why.contains("no ")
                        && !["veth", "bridge"].contains(&row["topology"].as_str().unwrap()),
                    "{row}"
                );
            }
            _ => panic!("neither a result nor a reason: {row}"),
        }
    }
    let left = output("ip", &["netns", "list"]);
    let left = String::from_utf8_lossy(&left.stdout);
    assert!(!left.contains("bench-"), "namespaces left: {left}");
    // One kind, its output as the mode's own.
    let one = client(&[], &["--topology", "veth", "rr", "--duration", "1s"]);
    assert!(one["transactions"].as_u64().unwrap() > 100, "{one}");
    // Misuse is a usage error.
    let server = output(netsight(), &["bench", "--topology", "veth", "server"]);
    assert_eq!(server.status.code(), Some(64));
    let to = output(
        netsight(),
        &["bench", "--topology", "veth", "rr", "--to", "127.0.0.1:1"],
    );
    assert_eq!(to.status.code(), Some(64));
}
