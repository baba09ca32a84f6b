//! `netsight doctor` end to end: faults made in a namespace during the doctor's
//! interval are named with the right rule; an idle namespace gets no warning.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::process::{Command, Stdio};

use serde_json::Value;
use support::{netsight, privileged, ConnHolder, NetnsPair};

/// Runs doctor in `ns` with `interval` seconds while `fault` runs; returns (exit code, report).
fn doctor_during(pair: &NetnsPair, ns: &str, interval: &str, fault: impl FnOnce()) -> (i32, Value) {
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            netsight(),
            "doctor",
            "--interval",
            interval,
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("doctor");
    let mut child = child;
    let stderr = wait_on_stderr(&mut child, &["first snapshot taken"]);
    fault();
    let out = child.wait_with_output().expect("doctor output");
    let _ = stderr.join();
    let _ = pair;
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor JSON: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), report)
}

/// Reads the child's stderr until every needle has shown up (its readiness
/// lines); the rest is drained on a thread so the child never blocks.
fn wait_on_stderr(
    child: &mut std::process::Child,
    needles: &[&str],
) -> std::thread::JoinHandle<String> {
    use std::io::BufRead as _;
    let mut reader = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    while !needles.iter().all(|n| seen.contains(n)) {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap_or(0) > 0,
            "ended before {needles:?}: {seen}"
        );
        seen.push_str(&line);
    }
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
        seen + &rest
    })
}

fn finding<'a>(report: &'a Value, rule: &str) -> Option<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == rule)
}

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
fn deep_mode_attaches_traced_drop_reasons() {
    if !privileged("deep_mode_attaches_traced_drop_reasons", &["ip", "python3"]) {
        return;
    }
    let pair = NetnsPair::new();
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.b,
            netsight(),
            "doctor",
            "--deep",
            "3",
            "--json",
            "--no-sockets",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("doctor");
    // Both tracers say when they are attached.
    let stderr = wait_on_stderr(
        &mut child,
        &["attached to kfree_skb", "attached to tcp_retransmit_skb"],
    );
    let holder = ConnHolder::start(&pair.b, &["udp-overflow"]);
    let out = child.wait_with_output().expect("doctor output");
    let _ = stderr.join();
    drop(holder);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let f = finding(&report, "udp.receive_buffer_errors").unwrap_or_else(|| panic!("{report}"));
    assert!(
        f["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["metric"] == "traced drop reason SOCKET_RCVBUFF"),
        "{f}"
    );
    assert!(report["deep"]["drop_reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r[0] == "SOCKET_RCVBUFF"));
    // Attached only where the reason explains the finding.
    for other in report["findings"].as_array().unwrap() {
        if other["rule_id"] != "udp.receive_buffer_errors"
            && other["rule_id"] != "tcp.receive_pruning"
        {
            assert!(
                !other
                    .to_string()
                    .contains("traced drop reason SOCKET_RCVBUFF"),
                "{other}"
            );
        }
    }
    assert_eq!(report["deep"]["lost_events"], 0);
}
