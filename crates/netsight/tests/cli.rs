//! Command-line behaviour that needs no privilege: help, errors, JSON shape.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use support::{netsight, output};

#[test]
fn bad_input_gets_a_clear_error_and_exit_2() {
    let out = output(netsight(), &["stat", "BOGUS"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown keyword \"BOGUS\""));

    let out = output(netsight(), &["snapshot", "--from", "/nonexistent/host.nsb"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/host.nsb"));

    let junk = std::env::temp_dir().join(format!("netsight-junk-{}.nsb", std::process::id()));
    std::fs::write(&junk, b"definitely not gzip").unwrap();
    let out = output(netsight(), &["stat", "--from", junk.to_str().unwrap()]);
    std::fs::remove_file(&junk).ok();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a netsight bundle"));
}

#[test]
fn help_has_examples() {
    for verb in ["snapshot", "stat"] {
        let out = output(netsight(), &[verb, "--help"]);
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Examples:"),
            "{verb}"
        );
    }
}

#[test]
fn snapshot_json_contract() {
    let out = output(netsight(), &["snapshot", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The contract other tools rely on: kernel MIB names under "mib", links by name.
    assert!(v["mib"]["Tcp"]["ActiveOpens"].is_i64());
    assert!(v["mib"]["TcpExt"]["ListenOverflows"].is_i64());
    assert!(v["mib"]["Udp"]["InDatagrams"].is_i64());
    assert!(v["mib"]["Ip"]["InReceives"].is_i64());
    let links = v["links"].as_array().unwrap();
    assert!(links.iter().any(|l| l["name"] == "lo"));
}

#[test]
fn stat_json_one_object_per_interval() {
    let out = output(netsight(), &["stat", "ALL", "0.2", "2", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "two intervals and an average");
    for key in [
        "DEV", "EDEV", "IP", "EIP", "TCP", "ETCP", "UDP", "SOCK", "SOFT", "QDISC",
    ] {
        assert!(!lines[0][key].is_null(), "{key} missing");
    }
    assert!((lines[0]["interval_s"].as_f64().unwrap() - 0.2).abs() < 0.1);
}
