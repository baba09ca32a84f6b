//! `netsight tune` (issue 8) against the real kernel, each in a fresh network
//! namespace: apply changes values, rollback restores every byte, a failing write
//! midway leaves nothing changed, an unconfirmed apply reverts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{netsight, output, privileged, NetnsPair};

/// Every readable value under net.ipv4 and net.core of `ns`, exactly as the kernel prints it.
fn sysctl_dump(pair: &NetnsPair, ns: &str) -> String {
    let out = pair.exec(
        ns,
        "sh",
        &[
            "-c",
            "grep -r . /proc/sys/net/ipv4 /proc/sys/net/core 2>/dev/null | sort",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("tcp_rmem:"),
        "sysctl dump is empty: {text:.200}"
    );
    text
}

/// Lines of `after` that differ from `before` (both ways), for readable failures.
fn changed_lines(before: &str, after: &str) -> Vec<String> {
    let b: std::collections::BTreeSet<&str> = before.lines().collect();
    let a: std::collections::BTreeSet<&str> = after.lines().collect();
    b.symmetric_difference(&a).map(|l| l.to_string()).collect()
}

fn assert_same(before: &str, after: &str, what: &str) {
    let diff = changed_lines(before, after);
    assert!(diff.is_empty(), "{what}: values differ: {diff:#?}");
}

fn read(pair: &NetnsPair, ns: &str, key: &str) -> String {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    pair.exec_ok(ns, "cat", &[&path])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A namespace whose settings give the plan work: small buffers and accept queues.
fn detuned() -> Option<NetnsPair> {
    if !privileged("tune in a namespace", &["ip", "sysctl"]) {
        return None;
    }
    let pair = NetnsPair::new();
    pair.exec_ok(
        &pair.a,
        "sysctl",
        &[
            "-qw",
            "net.ipv4.tcp_rmem=4096 8192 16384",
            "net.core.somaxconn=16",
        ],
    );
    Some(pair)
}

/// The arguments with what every audit here assumes: a veth reports no real speed,
/// so buffers are sized for a stated 1 Gbit/s x 1 ms path; counters are watched 200 ms.
fn with_basis<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut full = vec!["tune"];
    full.extend_from_slice(args);
    let audits = matches!(args.first(), Some(&("audit" | "plan" | "apply" | "export")));
    if audits && !args.contains(&"--link-speed") {
        full.extend(["--link-speed", "1G", "--rtt", "1ms", "--interval", "200ms"]);
    }
    full
}

fn tune(pair: &NetnsPair, args: &[&str]) -> std::process::Output {
    pair.exec(&pair.a, netsight(), &with_basis(args))
}

/// `netsight tune ARGS` in the first namespace, which must succeed; its stdout.
fn tune_ok(pair: &NetnsPair, args: &[&str]) -> String {
    pair.exec_ok(&pair.a, netsight(), &with_basis(args))
}

#[test]
fn apply_then_rollback_restores_every_byte() {
    let Some(pair) = detuned() else { return };
    let host_before = support::run("sysctl", &["-n", "net.ipv4.tcp_rmem", "net.core.somaxconn"]);
    let before = sysctl_dump(&pair, &pair.a);

    let out = tune_ok(
        &pair,
        &["apply", "--yes", "--json", "--profile", "connections"],
    );
    let applied: Value = serde_json::from_str(&out).unwrap();
    let changes = applied["applied"].as_array().unwrap();
    assert!(changes.len() >= 5, "{applied}");
    for c in changes {
        let key = c["key"].as_str().unwrap();
        assert_eq!(
            read(&pair, &pair.a, key),
            c["to"].as_str().unwrap(),
            "{key}"
        );
    }
    assert_eq!(read(&pair, &pair.a, "net.core.somaxconn"), "8192");
    assert!(!changed_lines(&before, &sysctl_dump(&pair, &pair.a)).is_empty());
    // Only this namespace changed.
    assert_eq!(
        support::run("sysctl", &["-n", "net.ipv4.tcp_rmem", "net.core.somaxconn"]),
        host_before
    );
    // A second apply is journaled on top; one rollback undoes both.
    tune_ok(
        &pair,
        &["apply", "--yes", "--set", "net.core.somaxconn=9000"],
    );
    tune_ok(&pair, &["rollback"]);
    assert_eq!(
        sysctl_dump(&pair, &pair.a),
        before,
        "rollback must restore every value byte for byte"
    );
    let again = tune(&pair, &["rollback"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to roll back"));
}

#[test]
fn failing_write_midway_leaves_nothing_changed() {
    let Some(pair) = detuned() else { return };
    let before = sysctl_dump(&pair, &pair.a);
    // The audit's changes come first, the unknown algorithm last: it passes netsight's
    // checks (a word where the kernel holds a word) and the kernel refuses it (ENOENT)
    // after several writes succeeded.
    let out = tune(
        &pair,
        &[
            "apply",
            "--yes",
            "--profile",
            "connections",
            "--set",
            "net.ipv4.tcp_congestion_control=nosuchcc",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("tcp_congestion_control") && stderr.contains("No such file"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing is left changed"), "{stderr}");
    assert!(
        !stderr.contains("(0 value(s) restored)"),
        "the failure must come after real writes: {stderr}"
    );
    assert_same(
        &before,
        &sysctl_dump(&pair, &pair.a),
        "after a failed apply",
    );
    let out = tune(&pair, &["rollback"]);
    assert!(!out.status.success(), "no journal may be left behind");
}

#[test]
fn unconfirmed_apply_reverts_and_confirmed_stays() {
    let Some(pair) = detuned() else { return };
    let before = sysctl_dump(&pair, &pair.a);
    tune_ok(&pair, &["apply", "--yes", "--confirm-within", "2s"]);
    assert_eq!(
        read(&pair, &pair.a, "net.ipv4.tcp_rmem").split(' ').nth(1),
        Some("131072")
    );
    let started = Instant::now();
    while sysctl_dump(&pair, &pair.a) != before {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not reverted 10 s after a 2 s deadline"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "reverted before the deadline"
    );
    let late = tune(&pair, &["confirm"]);
    assert!(!late.status.success());

    tune_ok(&pair, &["apply", "--yes", "--confirm-within", "3s"]);
    tune_ok(&pair, &["confirm"]);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        read(&pair, &pair.a, "net.ipv4.tcp_rmem").split(' ').nth(1),
        Some("131072"),
        "a confirmed apply must stay"
    );
    tune_ok(&pair, &["rollback"]);
    assert_same(&before, &sysctl_dump(&pair, &pair.a), "after rollback");
}

#[test]
fn host_wide_values_are_not_planned_inside_a_namespace() {
    let Some(pair) = detuned() else { return };
    let out = tune_ok(&pair, &["audit", "--json", "--profile", "throughput"]);
    let audit: Value = serde_json::from_str(&out).unwrap();
    let item = |key: &str| {
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["key"] == key)
            .cloned()
            .unwrap()
    };
    // netdev_max_backlog does not exist in a child namespace; rmem_max is read-only there.
    assert_eq!(item("net.core.netdev_max_backlog")["status"], "unavailable");
    assert_eq!(item("net.core.rmem_max")["status"], "unavailable");
    assert_eq!(item("net.ipv4.tcp_rmem")["status"], "change");
    let plan = tune(&pair, &["plan", "--json", "--profile", "throughput"]);
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    let keys = plan_keys(&plan);
    assert!(keys.contains(&"net.ipv4.tcp_rmem"), "{keys:?}");
    assert!(
        !keys.contains(&"net.core.rmem_max") && !keys.contains(&"net.core.netdev_max_backlog"),
        "{keys:?}"
    );
}

#[test]
fn bdp_and_export_need_no_privilege() {
    let out = output(
        netsight(),
        &["tune", "bdp", "--speed", "10G", "--rtt", "80ms", "--json"],
    );
    assert!(out.status.success());
    let b: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(b["bdp_bytes"], 100_000_000);
    assert_eq!(b["buffer_bytes"], 268_435_456u64);
    let bad = output(
        netsight(),
        &["tune", "bdp", "--speed", "10", "--rtt", "80ms"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("add a unit"));

    let out = output(
        netsight(),
        &[
            "tune",
            "export",
            "--format",
            "sysctl.d",
            "--profile",
            "throughput",
            "--link-speed",
            "10G",
            "--rtt",
            "80ms",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("net.ipv4.tcp_rmem = 4096 131072 268435456")
            || text.contains("net.ipv4.tcp_rmem = "),
        "{text}"
    );
    assert!(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .all(|l| l.contains(" = ")),
        "{text}"
    );
    let tuned = output(
        netsight(),
        &[
            "tune",
            "export",
            "--format",
            "tuned",
            "--profile",
            "latency",
        ],
    );
    assert!(String::from_utf8_lossy(&tuned.stdout).contains("[sysctl]"));
    let unknown = output(netsight(), &["tune", "audit", "--profile", "fastest"]);
    assert!(String::from_utf8_lossy(&unknown.stderr)
        .contains("balanced, latency, throughput or connections"));
}

#[test]
fn hostile_set_keys_and_values_are_refused_before_anything_is_read_or_written() {
    let Some(pair) = detuned() else { return };
    let before = sysctl_dump(&pair, &pair.a);
    for (set, expect) in [
        ("/etc/shadow=x", "not a path"),
        ("/etc/hostname=x", "not a path"),
        ("kernel.hostname=pwned", "only network sysctls"),
        ("kernel.core_pattern=|/tmp/x", "only network sysctls"),
        ("net/../../etc/shadow=x", "`..`"),
        ("net.ipv4.no_such_knob=1", "no sysctl net.ipv4.no_such_knob"),
        ("net.ipv4.tcp_fin_timeout=-5", "outside 1..=3600"),
        ("net.ipv4.tcp_rmem=4096 131072", "3 number(s) expected"),
        ("net.core.somaxconn=$(id)", "not an integer"),
        // Host-wide: read-only (rmem_max) or absent (netdev_max_backlog) in a namespace.
        (
            "net.core.rmem_max=67108864",
            "host-wide; not writable from a namespace",
        ),
        (
            "net.core.netdev_max_backlog=5000",
            "host-wide; not writable from a namespace",
        ),
    ] {
        for verb in ["plan", "apply", "export"] {
            let mut args = vec![verb, "--set", set];
            if verb == "apply" {
                args.push("--yes");
            }
            let out = tune(&pair, &args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{verb} --set {set} was accepted");
            assert!(stderr.contains(expect), "{verb} --set {set}: {stderr}");
            assert!(
                !String::from_utf8_lossy(&out.stdout).contains("root:"),
                "{verb} --set {set} printed a file"
            );
        }
    }
    assert_eq!(
        support::run("hostname", &[]),
        support::run("cat", &["/proc/sys/kernel/hostname"])
    );
    assert_same(&before, &sysctl_dump(&pair, &pair.a), "after refused --set");
    // sysctl(8)'s `/` rule: an interface name with a dot is one component.
    pair.exec_ok(
        &pair.a,
        "ip",
        &[
            "link", "add", "link", "va", "name", "va.100", "type", "macvlan",
        ],
    );
    let out = tune_ok(
        &pair,
        &[
            "plan",
            "--json",
            "--set",
            "net.ipv4.conf.va/100.rp_filter=2",
        ],
    );
    assert!(out.contains("net.ipv4.conf.va/100.rp_filter"), "{out}");
}

#[test]
fn export_writes_only_the_plan_unless_all() {
    let Some(pair) = detuned() else { return };
    let plan: Value = serde_json::from_str(&tune_ok(
        &pair,
        &["plan", "--json", "--profile", "connections"],
    ))
    .unwrap();
    let planned = plan_keys(&plan);
    let text = tune_ok(
        &pair,
        &["export", "--format", "sysctl.d", "--profile", "connections"],
    );
    let exported: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(" = ").next())
        .collect();
    assert_eq!(exported, planned, "{text}");
    assert!(
        !text.contains("default_qdisc"),
        "an unchanged value was pinned: {text}"
    );
    let all = tune_ok(&pair, &["export", "--all", "--profile", "connections"]);
    assert!(all.lines().count() > text.lines().count(), "{all}");
}

#[test]
fn a_killed_watchdog_is_noticed_and_the_next_run_reverts() {
    let Some(pair) = detuned() else { return };
    let before = sysctl_dump(&pair, &pair.a);
    tune_ok(&pair, &["apply", "--yes", "--confirm-within", "2s"]);
    assert_ne!(sysctl_dump(&pair, &pair.a), before);
    kill_watchdogs_in(&pair);
    // Before the deadline: confirm works and says the watchdog was gone.
    let confirmed = tune(&pair, &["confirm"]);
    assert!(confirmed.status.success());
    assert!(String::from_utf8_lossy(&confirmed.stderr).contains("watchdog was no longer running"));
    tune_ok(&pair, &["rollback"]);
    assert_same(&before, &sysctl_dump(&pair, &pair.a), "after rollback");

    // Past the deadline with the watchdog killed: any netsight run reverts.
    tune_ok(&pair, &["apply", "--yes", "--confirm-within", "1s"]);
    kill_watchdogs_in(&pair);
    // Waiting for a deadline to pass, not for something to become ready.
    std::thread::sleep(Duration::from_millis(1200));
    assert_ne!(sysctl_dump(&pair, &pair.a), before, "nothing reverted yet");
    let out = pair.exec(&pair.a, netsight(), &["explain", "somaxconn"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reverted now"),
        "{out:?}"
    );
    assert_same(&before, &sysctl_dump(&pair, &pair.a), "after the next run");
}

/// SIGKILLs the revert watchdogs running in the pair's first namespace.
fn kill_watchdogs_in(pair: &NetnsPair) {
    let netns = pair.exec_ok(&pair.a, "readlink", &["/proc/self/ns/net"]);
    let pgrep = output("pgrep", &["-f", "tune watchdog"]);
    let mut killed = 0;
    for pid in String::from_utf8_lossy(&pgrep.stdout).split_whitespace() {
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap_or_default();
        if ns.to_string_lossy() == netns.trim() {
            output("kill", &["-KILL", pid]);
            killed += 1;
        }
    }
    assert_eq!(killed, 1, "one watchdog expected in {}", pair.a);
}

/// The keys of `tune plan --json` output, in order.
fn plan_keys(plan: &Value) -> Vec<&str> {
    plan.as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect()
}
