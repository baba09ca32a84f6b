//! `netsight capture` (issue 7) against tcpdump and tshark, in throw-away namespaces: the same
//! packets as tcpdump with the same filter, files tshark opens, the filter programs tcpdump
//! compiles, privileges dropped, clear errors, no drops under loopback iperf3 load.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{have, netsight, output, privileged, NetnsPair};

fn temp(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("netsight-capture-{}-{name}", std::process::id()))
        .display()
        .to_string()
}

/// Frames tshark reads from `file` that match `display_filter` (empty: all).
fn tshark_count(file: &str, display_filter: &str) -> usize {
    let mut args = vec!["-r", file];
    if !display_filter.is_empty() {
        args.extend(["-Y", display_filter]);
    }
    let out = output("tshark", &args);
    assert!(
        out.status.success(),
        "tshark cannot read {file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// tcpdump's "N packets dropped by kernel" from its stderr.
fn tcpdump_stat(stderr: &str, what: &str) -> u64 {
    stderr
        .lines()
        .find(|l| l.contains(what))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no '{what}' in tcpdump output: {stderr}"))
}

#[test]
fn same_packets_as_tcpdump_with_the_same_filter() {
    if !privileged("capture vs tcpdump", &["ip", "tcpdump", "tshark", "ping"]) {
        return;
    }
    let pair = NetnsPair::new();
    let (ours, theirs) = (temp("veth-ours.pcap"), temp("veth-tcpdump.pcap"));
    let filter = "icmp or tcp";
    let capture = pair.spawn(
        &pair.a,
        netsight(),
        &[
            "capture",
            "-i",
            "va",
            "-w",
            &ours,
            "--duration",
            "4",
            "--json",
            filter,
        ],
    );
    let mut tcpdump = pair.spawn(
        &pair.a,
        "timeout",
        &[
            "-s", "INT", "4", "tcpdump", "-i", "va", "-w", &theirs, filter,
        ],
    );
    let mut capture = capture;
    let ours_ready = wait_for_line(capture.stderr.take().unwrap(), "capturing on");
    let tcpdump_ready = wait_for_line(tcpdump.stderr.take().unwrap(), "listening on");
    // Pings, ARP (filtered out), and a TCP SYN to a closed port answered by RST.
    pair.exec_ok(
        &pair.a,
        "ping",
        &["-c", "10", "-i", "0.1", "-q", &pair.addr_b],
    );
    let _ = pair.exec(
        &pair.a,
        "bash",
        &["-c", &format!("echo > /dev/tcp/{}/5999", pair.addr_b)],
    );
    let _ = tcpdump.wait();
    let report: Value = serde_json::from_slice(&capture.wait_with_output().unwrap().stdout)
        .expect("capture --json prints its report");
    let _ = ours_ready.join();
    let tcpdump_stderr = tcpdump_ready.join().unwrap_or_default();

    let ours_n = tshark_count(&ours, "");
    let theirs_n = tshark_count(&theirs, "");
    assert_eq!(
        ours_n, theirs_n,
        "same filter, same traffic: netsight {ours_n} frames, tcpdump {theirs_n}"
    );
    assert_eq!(report["packets_captured"].as_u64(), Some(ours_n as u64));
    assert_eq!(report["packets_dropped_by_kernel"].as_u64(), Some(0));
    assert_eq!(
        report["packets_received_by_filter"].as_u64(),
        Some(tcpdump_stat(&tcpdump_stderr, "received by filter")),
        "received-by-filter counts agree with tcpdump"
    );
    assert_eq!(
        tshark_count(&ours, "icmp"),
        20,
        "10 echo requests and 10 replies"
    );
    assert_eq!(
        tshark_count(&ours, "arp"),
        0,
        "the kernel filter kept ARP out"
    );
    assert_eq!(tshark_count(&ours, "tcp.flags.reset == 1"), 1);

    // The capture analyses: the refused connection is diagnosed.
    let analysis: Value =
        serde_json::from_slice(&output(netsight(), &["analyze", &ours, "--json"]).stdout).unwrap();
    let ids: Vec<&str> = analysis["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert!(ids.contains(&"syn-refused"), "diagnoses: {ids:?}");
    let _ = std::fs::remove_file(&ours);
    let _ = std::fs::remove_file(&theirs);
}

#[test]
fn pcapng_on_loopback_opens_in_tshark_and_runs_without_privilege() {
    if !privileged(
        "capture pcapng on lo",
        &["ip", "tshark", "capinfos", "ping"],
    ) {
        return;
    }
    let pair = NetnsPair::new();
    let file = temp("lo.pcapng");
    let mut child = pair.spawn(
        &pair.a,
        netsight(),
        &[
            "capture",
            "-i",
            "lo",
            "-w",
            &file,
            "--pcapng",
            "--duration",
            "3",
            "icmp",
        ],
    );
    let _stderr = wait_until_capturing(&mut child);
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    pair.exec_ok(
        &pair.a,
        "ping",
        &["-c", "4", "-i", "0.1", "-q", "127.0.0.1"],
    );
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
    };
    assert_eq!(
        field("Uid:").as_deref(),
        Some("65534 65534 65534 65534"),
        "runs as nobody after opening the socket"
    );
    assert_eq!(
        field("CapEff:").as_deref(),
        Some("0000000000000000"),
        "no capabilities left"
    );
    let info = String::from_utf8_lossy(&output("capinfos", &[&file]).stdout).into_owned();
    assert!(info.contains("pcapng"), "{info}");
    // Loopback shows each packet twice to AF_PACKET; like tcpdump, one copy is kept.
    assert_eq!(tshark_count(&file, "icmp"), 8);
    let _ = std::fs::remove_file(&file);
}

#[test]
fn filter_programs_are_the_ones_tcpdump_compiles() {
    if !have("tcpdump") {
        support::skip(
            "filter_programs_are_the_ones_tcpdump_compiles",
            "needs tcpdump (run scripts/setup)",
        );
        return;
    }
    for expr in [
        "tcp port 443",
        "icmp or arp",
        "host 10.0.0.1 and not udp",
        "tcp[tcpflags] & tcp-syn != 0",
        "ip6 and tcp dst port 22",
        "vlan and tcp",
        "net 192.168.0.0/16 and portrange 8000-8100",
    ] {
        let ours = netsight_packet::filter::compile(expr, 1, 262_144)
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        let ddd = output("tcpdump", &["-y", "EN10MB", "-s", "262144", "-ddd", expr]);
        assert!(
            ddd.status.success(),
            "tcpdump -ddd {expr}: {}",
            String::from_utf8_lossy(&ddd.stderr)
        );
        let theirs = netsight_packet::filter::parse_ddd(&String::from_utf8_lossy(&ddd.stdout))
            .expect("tcpdump -ddd output");
        assert_eq!(ours, theirs, "{expr}");
    }
    let err = netsight_packet::filter::compile("tcp portt 80", 1, 262_144).unwrap_err();
    assert!(err.to_string().contains("tcp portt 80"), "{err}");
}

#[test]
fn errors_name_the_interface_the_filter_or_the_capability() {
    if !privileged("capture errors", &["ip", "setpriv"]) {
        return;
    }
    let file = temp("err.pcap");
    let out = output(
        netsight(),
        &["capture", "-i", "nosuch0", "-w", &file, "--count", "1"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no interface named \"nosuch0\""));
    let out = output(
        netsight(),
        &[
            "capture", "-i", "lo", "-w", &file, "--count", "1", "tcp", "portt", "80",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("filter \"tcp portt 80\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = output(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            netsight(),
            "capture",
            "-i",
            "lo",
            "-w",
            "/tmp/x.pcap",
            "--count",
            "1",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CAP_NET_RAW"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&file);
}

#[test]
fn no_kernel_drops_under_loopback_iperf3_load_where_tcpdump_has_none() {
    if !privileged("capture under iperf3 load", &["ip", "tcpdump", "iperf3"]) {
        return;
    }
    let pair = NetnsPair::new();
    let ns = pair.a.clone();
    // Two bounded 2-second iperf3 runs on the namespace's loopback: one under tcpdump, one under netsight.
    let load = || {
        let mut server = pair.spawn(&ns, "iperf3", &["-s", "-1", "-p", "5299", "--forceflush"]);
        let listening = wait_for_line(server.stdout.take().unwrap(), "listening");
        pair.exec_ok(&ns, "iperf3", &["-c", "127.0.0.1", "-p", "5299", "-t", "2"]);
        let _ = server.wait_with_output();
        let _ = listening.join();
    };
    let theirs = temp("load-tcpdump.pcap");
    let mut tcpdump = pair.spawn(
        &ns,
        "timeout",
        &[
            "-s", "INT", "4", "tcpdump", "-i", "lo", "-s", "128", "-w", &theirs, "tcp",
        ],
    );
    let tcpdump_stderr = wait_for_line(tcpdump.stderr.take().unwrap(), "listening on");
    load();
    let _ = tcpdump.wait();
    let tcpdump_err = tcpdump_stderr.join().unwrap_or_default();
    let tcpdump_drops = tcpdump_stat(&tcpdump_err, "dropped by kernel");

    let ours = temp("load-ours.pcap");
    let capture = pair.spawn(
        &ns,
        netsight(),
        &[
            "capture",
            "-i",
            "lo",
            "-s",
            "128",
            "-w",
            &ours,
            "--duration",
            "4",
            "--json",
            "tcp",
        ],
    );
    let mut capture = capture;
    let ready = wait_for_line(capture.stderr.take().unwrap(), "capturing on");
    load();
    let out = capture.wait_with_output().unwrap();
    let _ = ready.join();
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    let captured = report["packets_captured"].as_u64().unwrap();
    let dropped = report["packets_dropped_by_kernel"].as_u64().unwrap();
    eprintln!("iperf3 on lo: netsight captured {captured}, dropped {dropped}; tcpdump dropped {tcpdump_drops}");
    assert!(
        captured > 10_000,
        "a 2-second loopback iperf3 run is tens of thousands of segments, got {captured}"
    );
    if tcpdump_drops == 0 {
        assert_eq!(dropped, 0, "tcpdump kept up without drops, so must we");
    }
    let _ = std::fs::remove_file(&ours);
    let _ = std::fs::remove_file(&theirs);
}

/// Reads a child's stream until a line contains `needle` (a readiness line such as
/// tcpdump's "listening on"), then keeps draining it; the handle gives all its text.
fn wait_for_line<R: std::io::Read + Send + 'static>(
    stream: R,
    needle: &'static str,
) -> std::thread::JoinHandle<String> {
    use std::io::BufRead as _;
    let mut reader = std::io::BufReader::new(stream);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("ended before {needle:?}: {seen}");
        }
        seen.push_str(&line);
        if line.contains(needle) {
            break;
        }
    }
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
        seen + &rest
    })
}

/// Reads the child's stderr up to the line saying the socket is attached.
fn wait_until_capturing(child: &mut std::process::Child) -> std::process::ChildStderr {
    use std::io::BufRead as _;
    let stderr = child.stderr.take().unwrap();
    let mut reader = std::io::BufReader::new(stderr);
    let mut line = String::new();
    while !line.contains("capturing on") {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "capture ended before it started"
        );
    }
    reader.into_inner()
}

#[test]
fn signals_leave_a_valid_file_with_every_packet_taken() {
    if !privileged("capture signals", &["ip", "tshark", "ping"]) {
        return;
    }
    let pair = NetnsPair::new();
    // SIGTERM and SIGHUP finish the file; SIGKILL with -U keeps every packet written so far.
    for (signal, extra) in [("TERM", None), ("HUP", None), ("KILL", Some("-U"))] {
        let file = temp(&format!("signal-{signal}.pcap"));
        let mut args = vec!["capture", "-i", "lo", "-w", &file];
        args.extend(extra);
        args.push("icmp");
        let mut child = pair.spawn(&pair.a, netsight(), &args);
        let _stderr = wait_until_capturing(&mut child);
        pair.exec_ok(
            &pair.a,
            "ping",
            &["-c", "3", "-i", "0.05", "-q", "127.0.0.1"],
        );
        // Packets reach the file within FLUSH_EVERY (-U: at once); tshark is the oracle of "valid".
        let started = std::time::Instant::now();
        if signal == "KILL" {
            while tshark_count(&file, "icmp") < 6 {
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "-U did not write packets as they came"
                );
                std::thread::yield_now();
            }
        }
        output("kill", &[&format!("-{signal}"), &child.id().to_string()]);
        let status = child.wait().unwrap();
        if signal != "KILL" {
            assert!(status.success(), "{signal}: {status:?}");
        }
        assert_eq!(
            tshark_count(&file, "icmp"),
            6,
            "{signal}: every packet is in a readable file"
        );
        let _ = std::fs::remove_file(&file);
    }
}

/// `capture -w -` writes the capture to stdout and `analyze -` reads one from stdin;
/// a damaged file exits with its own status (4) after printing what it read.
#[test]
fn stdout_stdin_and_damaged_input() {
    if !privileged("capture stdout / analyze stdin", &["ip", "ping"]) {
        return;
    }
    let pair = NetnsPair::new();
    let mut child = pair.spawn(
        &pair.a,
        netsight(),
        &["capture", "-i", "lo", "-w", "-", "-c", "6", "icmp"],
    );
    let _stderr = wait_until_capturing(&mut child);
    pair.exec_ok(
        &pair.a,
        "ping",
        &["-c", "3", "-i", "0.05", "-q", "127.0.0.1"],
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let pcap = out.stdout;
    assert_eq!(&pcap[2..4], &[0xb2, 0xa1], "a pcap (µs or ns) on stdout");
    let analyze = |bytes: &[u8]| {
        use std::io::Write as _;
        let mut a = std::process::Command::new(netsight())
            .args(["analyze", "-", "--json"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        a.stdin.take().unwrap().write_all(bytes).unwrap();
        a.wait_with_output().unwrap()
    };
    let whole = analyze(&pcap);
    assert!(
        whole.status.success(),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let report: Value = serde_json::from_slice(&whole.stdout).unwrap();
    assert_eq!(report["packets"]["frames"], 6);
    // Cut inside the last record: the frames before it are reported, and the status says damaged.
    let cut = analyze(&pcap[..pcap.len() - 10]);
    assert_eq!(
        cut.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&cut.stderr)
    );
    let report: Value = serde_json::from_slice(&cut.stdout).unwrap();
    assert_eq!(report["packets"]["frames"], 5);
    assert!(String::from_utf8_lossy(&cut.stderr).contains("truncated"));
}
