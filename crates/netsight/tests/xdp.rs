//! `netsight xdp` for real: the filter on a veth in one namespace, traffic from
//! the other, and the kernel's own counters (nstat in the receiving namespace,
//! `ip link`, `bpftool`) as the oracle for what was dropped and what passed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{netsight, privileged, NetnsPair};

/// The pair, with netsight's filter detached (and the journal gone) on drop,
/// whatever the test did.
struct Filtered {
    pair: NetnsPair,
}

impl Filtered {
    fn new() -> Filtered {
        Filtered {
            pair: NetnsPair::new(),
        }
    }

    fn xdp(&self, args: &[&str]) -> Output {
        self.xdp_env(args, &[])
    }

    fn xdp_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &self.pair.b, netsight(), "xdp"])
            .args(args);
        cmd.env_remove("SSH_CONNECTION").env_remove("SSH_CLIENT");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn xdp_ok(&self, args: &[&str]) -> String {
        let out = self.xdp(args);
        assert!(
            out.status.success(),
            "xdp {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn status(&self) -> Value {
        let v: Value = serde_json::from_str(&self.xdp_ok(&["status", "vb", "--json"])).unwrap();
        v[0].clone()
    }

    /// `nstat` counters of the receiving namespace (absolute values).
    fn nstat(&self) -> Value {
        let out = self
            .pair
            .exec_ok(&self.pair.b, "nstat", &["-a", "-z", "-s", "--json"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        v["kernel"].clone()
    }

    fn agent(&self, args: &[&str]) -> String {
        let mut full = vec!["lab", "agent"];
        full.extend_from_slice(args);
        self.pair.exec_ok(&self.pair.a, netsight(), &full)
    }

    fn program_on_vb(&self) -> Option<u64> {
        let out = self
            .pair
            .exec_ok(&self.pair.b, "ip", &["-j", "link", "show", "vb"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        v[0]["xdp"]["prog"]["id"].as_u64()
    }
}

impl Drop for Filtered {
    fn drop(&mut self) {
        let _ = self.xdp(&["detach", "vb"]);
    }
}

fn delta(before: &Value, after: &Value, key: &str) -> i64 {
    after[key].as_i64().unwrap_or(0) - before[key].as_i64().unwrap_or(0)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_prefix_flood_is_dropped_with_exact_counters_and_port_ranges_hold() {
    if !privileged(
        "a_prefix_flood_is_dropped_with_exact_counters_and_port_ranges_hold",
        &["ip", "nstat"],
    ) {
        return;
    }
    let f = Filtered::new();
    let src = format!("{}/30", f.pair.addr_a);
    f.xdp_ok(&[
        "attach",
        "vb",
        "--rule",
        &format!("drop src {src} proto udp dport 9000-9009"),
        "--rule",
        "drop src 192.0.2.0/24",
    ]);
    let before = f.nstat();
    // Inside the range: dropped; just past it (9010) and below (8999): pass, and the
    // kernel answers port unreachable (UdpNoPorts).
    let b = f.pair.addr_b.as_str();
    f.agent(&["udp-blast", b, "9000", "1500", "64"]);
    f.agent(&["udp-blast", b, "9009", "500", "64"]);
    f.agent(&["udp-blast", b, "9010", "300", "64"]);
    f.agent(&["udp-blast", b, "8999", "200", "64"]);
    f.pair.ping(3, 56);
    let after = f.nstat();
    let s = f.status();
    assert_eq!(s["rule_counters"][0]["packets"], 2000, "{s}");
    // 64-byte payload + UDP 8 + IPv4 20 + Ethernet 14.
    assert_eq!(s["rule_counters"][0]["bytes"], 2000 * 106, "{s}");
    assert_eq!(s["rule_counters"][1]["packets"], 0, "{s}");
    assert_eq!(s["totals"]["dropped_packets"], 2000, "{s}");
    assert_eq!(
        delta(&before, &after, "UdpNoPorts"),
        500,
        "only 9010 and 8999 reach the stack"
    );
    assert!(delta(&before, &after, "IcmpInEchos") >= 3, "ping passes");
    assert_eq!(s["mode"], "native");
}

#[test]
fn ipv6_prefixes_match_and_v4_passes() {
    if !privileged("ipv6_prefixes_match_and_v4_passes", &["ip", "nstat"]) {
        return;
    }
    let f = Filtered::new();
    for (ns, dev, addr) in [
        (&f.pair.a, "va", "fd00:77:1::1/64"),
        (&f.pair.b, "vb", "fd00:77:1::2/64"),
    ] {
        f.pair
            .exec_ok(ns, "sysctl", &["-qw", "net.ipv6.conf.all.disable_ipv6=0"]);
        f.pair.exec_ok(
            ns,
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{dev}.disable_ipv6=0")],
        );
        f.pair
            .exec_ok(ns, "ip", &["addr", "add", addr, "dev", dev, "nodad"]);
    }
    f.xdp_ok(&[
        "attach",
        "vb",
        "--rule",
        "drop src fd00:77:1::/48 proto udp",
        "--rule",
        "drop src fd00:99::/32",
    ]);
    let before = f.nstat();
    f.agent(&["udp-blast", "fd00:77:1::2", "9000", "700", "100"]);
    f.agent(&["udp-blast", &f.pair.addr_b, "9000", "100", "100"]);
    let after = f.nstat();
    let s = f.status();
    assert_eq!(s["rule_counters"][0]["packets"], 700, "{s}");
    assert_eq!(s["rule_counters"][1]["packets"], 0, "{s}");
    assert_eq!(delta(&before, &after, "Udp6NoPorts"), 0);
    assert_eq!(delta(&before, &after, "UdpNoPorts"), 100);
}

#[test]
fn dry_run_counts_and_drops_nothing_and_rules_change_live() {
    if !privileged(
        "dry_run_counts_and_drops_nothing_and_rules_change_live",
        &["ip", "nstat"],
    ) {
        return;
    }
    let f = Filtered::new();
    f.xdp_ok(&[
        "attach",
        "vb",
        "--rule",
        "drop proto udp dport 7000",
        "--dry-run",
    ]);
    let before = f.nstat();
    f.agent(&["udp-blast", &f.pair.addr_b, "7000", "400", "32"]);
    let after = f.nstat();
    let s = f.status();
    assert_eq!(s["dry_run"], true);
    assert_eq!(s["rule_counters"][0]["packets"], 400, "{s}");
    assert_eq!(s["totals"]["dry_run_packets"], 400, "{s}");
    assert_eq!(s["totals"]["dropped_packets"], 0, "{s}");
    assert_eq!(
        delta(&before, &after, "UdpNoPorts"),
        400,
        "all of it reached the stack"
    );

    // Live changes: a rule put first takes the traffic; its counters start at 0;
    // deleting it gives the traffic back to the old rule, whose counters are kept.
    f.xdp_ok(&[
        "rule",
        "add",
        "vb",
        "pass proto udp dport 7000",
        "--position",
        "1",
    ]);
    f.agent(&["udp-blast", &f.pair.addr_b, "7000", "50", "32"]);
    let s = f.status();
    assert_eq!(s["rule_counters"][0]["packets"], 50, "{s}");
    assert_eq!(s["rule_counters"][1]["packets"], 400, "{s}");
    f.xdp_ok(&["rule", "del", "vb", "1"]);
    f.agent(&["udp-blast", &f.pair.addr_b, "7000", "10", "32"]);
    let s = f.status();
    assert_eq!(s["rules"].as_array().unwrap().len(), 1);
    assert_eq!(s["rule_counters"][0]["packets"], 410, "{s}");
    // Misuse is a usage error and changes nothing.
    for bad in [
        vec!["rule", "del", "vb", "7"],
        vec!["rule", "add", "vb", "drop src 1.2.3.4/40"],
        vec!["attach", "vb"],
    ] {
        let out = f.xdp(&bad);
        assert_eq!(out.status.code(), Some(64), "{bad:?}: {}", stderr(&out));
    }
    assert_eq!(f.status()["rules"].as_array().unwrap().len(), 1);
}

#[test]
fn the_syn_limiter_holds_the_accepted_rate_within_ten_percent() {
    if !privileged(
        "the_syn_limiter_holds_the_accepted_rate_within_ten_percent",
        &["ip", "nstat"],
    ) {
        return;
    }
    let f = Filtered::new();
    // One bucket for all of the flood's spoofed sources (10.77.1.100-249).
    f.xdp_ok(&["attach", "vb", "--syn-limit", "400/s per /16"]);
    let before = f.nstat();
    let started = Instant::now();
    let said = f.agent(&["syn-flood", &f.pair.addr_b, "8080", "1000000", "3", "3000"]);
    let elapsed = started.elapsed().as_secs_f64();
    let after = f.nstat();
    let s = f.status();
    let sent: u64 = said.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(sent > 6000, "the flood must exceed the limit: {said}");
    let accepted = delta(&before, &after, "TcpInSegs") as f64;
    let limited = s["totals"]["syn_limited_packets"].as_f64().unwrap();
    assert_eq!(accepted + limited, sent as f64, "{s}");
    // The bucket starts full (a tenth of a second's worth): 40 SYNs over the rate.
    let rate = (accepted - 40.0) / elapsed;
    assert!(
        (rate - 400.0).abs() <= 40.0,
        "accepted {accepted} SYNs in {elapsed:.2} s: {rate:.0}/s against a 400/s limit"
    );
}

#[test]
fn ttl_expiry_and_detach_leave_no_program_and_others_programs_are_never_replaced() {
    if !privileged(
        "ttl_expiry_and_detach_leave_no_program_and_others_programs_are_never_replaced",
        &["ip", "bpftool"],
    ) {
        return;
    }
    let f = Filtered::new();
    let a: Value = serde_json::from_str(&f.xdp_ok(&[
        "attach",
        "vb",
        "--rule",
        "drop proto icmp",
        "--ttl",
        "2s",
        "--mode",
        "generic",
        "--json",
    ]))
    .unwrap();
    let id = a["prog_id"].as_u64().unwrap();
    assert_eq!(f.program_on_vb(), Some(id));
    assert_eq!(a["mode"], "generic");
    let link = f.pair.exec_ok(&f.pair.b, "ip", &["link", "show", "vb"]);
    assert!(link.contains("xdpgeneric"), "{link}");
    // The shell that attached is gone; the watchdog detaches at the TTL.
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.program_on_vb().is_some() {
        assert!(
            Instant::now() < deadline,
            "still attached 20 s after a 2 s TTL"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = f.xdp_ok(&["status"]);
    assert!(status.contains("no XDP filter"), "{status}");
    f.pair.ping(1, 56);

    // detach: no program on the link, and the kernel has freed it.
    let a: Value =
        serde_json::from_str(&f.xdp_ok(&["attach", "vb", "--rule", "drop proto icmp", "--json"]))
            .unwrap();
    let id = a["prog_id"].as_u64().unwrap().to_string();
    f.xdp_ok(&["detach", "vb"]);
    assert_eq!(f.program_on_vb(), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while support::output("bpftool", &["prog", "show", "id", &id])
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "program {id} still loaded after detach"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = f.xdp(&["detach", "vb"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("no XDP filter on vb"),
        "{}",
        stderr(&out)
    );

    // Someone else's program: never replaced, never detached.
    let object = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../netsight-lab/bpf/xdp_drop_udp.bpf.o"
    );
    f.pair.exec_ok(
        &f.pair.b,
        "ip",
        &[
            "link",
            "set",
            "dev",
            "vb",
            "xdpgeneric",
            "obj",
            object,
            "sec",
            "xdp",
        ],
    );
    let theirs = f.program_on_vb().unwrap();
    let out = f.xdp(&["attach", "vb", "--rule", "drop"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("did not attach"), "{}", stderr(&out));
    let out = f.xdp(&["detach", "vb"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(f.program_on_vb(), Some(theirs));
    f.pair.exec_ok(
        &f.pair.b,
        "ip",
        &["link", "set", "dev", "vb", "xdpgeneric", "off"],
    );
    // Hostile input: an unknown interface, bad rules, absurd numbers.
    for (args, code) in [
        (vec!["attach", "nosuch0", "--rule", "drop"], 3),
        (vec!["attach", "vb", "--rule", "drop src 10.0.0.0/99"], 64),
        (vec!["attach", "vb", "--syn-limit", "0/s"], 64),
        (vec!["attach", "vb", "--rule", "drop", "--ttl", "0s"], 64),
        (vec!["attach", "vb", "--rule", "drop", "--mode", "warp"], 64),
        (vec!["status", "nosuch0"], 3),
    ] {
        let out = f.xdp(&args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("panicked"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(f.program_on_vb(), None);
}

#[test]
fn the_ssh_peer_and_protected_prefixes_are_never_dropped() {
    if !privileged(
        "the_ssh_peer_and_protected_prefixes_are_never_dropped",
        &["ip", "nstat"],
    ) {
        return;
    }
    let f = Filtered::new();
    let ssh = format!("{} 50022 {} 22", f.pair.addr_a, f.pair.addr_b);
    let out = f.xdp_env(
        &["attach", "vb", "--rule", "drop"],
        &[("SSH_CONNECTION", &ssh)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("spared"),
        "the overlap is said: {}",
        stderr(&out)
    );
    f.pair.ping(3, 56);
    let s = f.status();
    assert!(s["totals"]["spared_packets"].as_u64().unwrap() >= 3, "{s}");
    assert_eq!(s["totals"]["dropped_packets"], 0, "{s}");
    f.xdp_ok(&["detach", "vb"]);

    // --protect, and its absence with --force.
    f.xdp_ok(&[
        "attach",
        "vb",
        "--rule",
        "drop proto udp",
        "--protect",
        &format!("{}/32", f.pair.addr_a),
    ]);
    let before = f.nstat();
    f.agent(&["udp-blast", &f.pair.addr_b, "9000", "100", "32"]);
    assert_eq!(delta(&before, &f.nstat(), "UdpNoPorts"), 100);
    assert_eq!(f.status()["totals"]["spared_packets"], 100);
    f.xdp_ok(&["detach", "vb"]);
    let out = f.xdp_env(
        &["attach", "vb", "--rule", "drop proto udp", "--force"],
        &[("SSH_CONNECTION", &ssh)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let before = f.nstat();
    f.agent(&["udp-blast", &f.pair.addr_b, "9000", "100", "32"]);
    assert_eq!(delta(&before, &f.nstat(), "UdpNoPorts"), 0);
    assert_eq!(f.status()["totals"]["dropped_packets"], 100);
}

#[test]
fn a_syn_flood_is_suggested_blocked_and_doctor_clears() {
    if !privileged(
        "a_syn_flood_is_suggested_blocked_and_doctor_clears",
        &["ip", "nstat"],
    ) {
        return;
    }
    let f = Filtered::new();
    let (a, b) = (&f.pair.a, &f.pair.b);
    // The lab's syn-flood-no-cookies: a listener with a backlog of 64, no cookies,
    // spoofed SYNs from 10.77.1.100-249 (routed back towards the client side).
    f.pair
        .exec_ok(b, "sysctl", &["-qw", "net.ipv4.tcp_syncookies=0"]);
    f.pair.exec_ok(
        b,
        "ip",
        &["route", "add", "10.77.0.0/16", "via", &f.pair.addr_a],
    );
    let mut listener = support::KillOnDrop(f.pair.spawn(
        b,
        netsight(),
        &["lab", "agent", "listen", "8080", "64", "noaccept", "60"],
    ));
    let _ready = support::wait_on_stdout(&mut listener.0, "READY");
    let target = f.pair.addr_b.as_str();
    let flood = |seconds: &str| f.agent(&["syn-flood", target, "8080", "1000000", seconds, "2000"]);

    let doctor = |during: &dyn Fn()| -> Value {
        let started = support::start_doctor(b, "3");
        during();
        support::finish_doctor(started).1
    };
    let ids = |report: &Value| -> Vec<String> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["rule_id"].as_str().unwrap().to_string())
            .collect()
    };
    let report = doctor(&|| {
        flood("2");
    });
    assert!(
        ids(&report).iter().any(|i| i == "tcp.syn_queue_full"),
        "doctor saw the flood: {:?}",
        ids(&report)
    );
    let report_file =
        std::env::temp_dir().join(format!("netsight-xdp-doctor-{}.json", std::process::id()));
    std::fs::write(&report_file, report.to_string()).unwrap();

    // suggest: doctor's report plus 2 s of the flood on vb.
    let mut flooding = support::KillOnDrop(f.pair.spawn(
        a,
        netsight(),
        &[
            "lab",
            "agent",
            "syn-flood",
            target,
            "8080",
            "1000000",
            "4",
            "2000",
        ],
    ));
    let out = f.xdp(&[
        "suggest",
        "--from",
        report_file.to_str().unwrap(),
        "--live",
        "2s",
        "-i",
        "vb",
        "--json",
    ]);
    let _ = flooding.0.wait();
    let _ = std::fs::remove_file(&report_file);
    assert!(out.status.success(), "{}", stderr(&out));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        s["doctor_rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "tcp.syn_queue_full"),
        "{s}"
    );
    let rules: Vec<String> = s["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap().to_string())
        .collect();
    assert!(!rules.is_empty(), "{s}");
    assert!(rules.iter().all(|r| r.contains("dport 8080")), "{rules:?}");

    let mut attach = vec!["attach".to_string(), "vb".into()];
    for r in &rules {
        attach.push("--rule".into());
        attach.push(r.clone());
    }
    let args: Vec<&str> = attach.iter().map(String::as_str).collect();
    f.xdp_ok(&args);
    let report = doctor(&|| {
        flood("2");
    });
    // The SYN queue no longer fills (SYN-ACKs of the first flood's half-open
    // connections may still be retransmitted: that is not a new flood).
    assert!(
        !ids(&report).iter().any(|i| i == "tcp.syn_queue_full"),
        "cleared: {:?}",
        ids(&report)
    );
    let status = f.status();
    let dropped: u64 = status["rule_counters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["packets"].as_u64().unwrap())
        .sum();
    assert!(dropped > 1000, "{status}");
}

#[test]
fn without_privilege_xdp_names_the_capabilities() {
    // As root, become nobody with no capabilities; as anyone else, run as is.
    let root = support::is_root();
    if root && !support::have("setpriv") {
        support::skip(
            "without_privilege_xdp_names_the_capabilities",
            "needs setpriv (util-linux)",
        );
        return;
    }
    let unprivileged = |args: &[&str]| -> Output {
        let mut cmd = std::process::Command::new(if root { "setpriv" } else { netsight() });
        if root {
            cmd.args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                netsight(),
            ]);
        }
        cmd.args(args).output().unwrap()
    };
    for args in [
        &["xdp", "attach", "lo", "--rule", "drop"][..],
        &["xdp", "status"],
        &["xdp", "detach", "lo"],
    ] {
        let out = unprivileged(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let text = stderr(&out);
        assert!(
            text.contains("CAP_NET_ADMIN") && text.contains("CAP_BPF"),
            "{args:?}: {text}"
        );
    }
}

#[test]
fn suggest_reads_doctor_reports_and_refuses_anything_else() {
    let dir = std::env::temp_dir().join(format!("netsight-xdp-suggest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_string_lossy().into_owned()
    };
    let report = file(
        "doctor.json",
        br#"{"findings": [{"rule_id": "tcp.syn_queue_full"}]}"#,
    );
    let quiet = file("quiet.json", br#"{"findings": []}"#);
    let garbage = file("garbage.json", b"\x00\xffnot json at all");
    let other = file("other.json", br#"{"flows": []}"#);
    let run = |args: &[&str]| {
        let mut full = vec!["xdp", "suggest"];
        full.extend_from_slice(args);
        support::output(netsight(), &full)
    };
    let out = run(&["--from", &report, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["syn_limit"], "1000/s per /32", "{v}");
    assert_eq!(v["doctor_rules"][0], "tcp.syn_queue_full");
    let out = run(&["--from", &quiet]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to suggest"));
    for (args, code) in [
        (vec!["--from", garbage.as_str()], 64),
        (vec!["--from", other.as_str()], 64),
        (vec!["--from", "/nonexistent/doctor.json"], 3),
        (vec![], 64),
        (vec!["--live", "soon"], 64),
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{args:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
