//! `netsight sockets` against `ss` on connection sets made in a namespace, and
//! the CLOSE-WAIT leak / full accept queue reported with the right process and listener.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::{netsight, privileged, ConnHolder, NetnsPair};

fn sockets_json(pair: &NetnsPair, ns: &str, extra: &[&str]) -> Value {
    let mut args = vec!["sockets", "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&pair.exec_ok(ns, netsight(), &args)).expect("JSON")
}

#[test]
fn states_rtt_and_cwnd_match_ss() {
    if !privileged("states_rtt_and_cwnd_match_ss", &["ip", "ss", "python3"]) {
        return;
    }
    let pair = NetnsPair::new();
    let holder = ConnHolder::start(&pair.b, &["pairs", "40"]);

    let ours = sockets_json(&pair, &pair.b, &["--tcp"]);
    let ss_states = pair.exec_ok(&pair.b, "ss", &["-tanH"]);
    let ss_info = pair.exec_ok(&pair.b, "ss", &["-tinH", "state", "established"]);

    // Counts by state.
    let mut ss_counts: BTreeMap<String, u64> = BTreeMap::new();
    for line in ss_states.lines() {
        if let Some(state) = line.split_whitespace().next() {
            *ss_counts.entry(state.to_string()).or_default() += 1;
        }
    }
    let mut our_counts: BTreeMap<String, u64> = BTreeMap::new();
    for s in ours.as_array().unwrap() {
        *our_counts
            .entry(s["state"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(our_counts, ss_counts);
    assert_eq!(our_counts["ESTAB"], 2 * 40, "40 open pairs");
    assert_eq!(our_counts["FIN-WAIT-2"], 3, "3 clients closed");
    assert_eq!(our_counts["CLOSE-WAIT"], 3);

    // rtt and cwnd of every established connection.
    let lines: Vec<&str> = ss_info.lines().collect();
    let mut compared = 0;
    for chunk in lines.chunks(2) {
        let [addrs, info] = chunk else { continue };
        let f: Vec<&str> = addrs.split_whitespace().collect();
        let (local, peer) = (f[2], f[3]);
        let field = |name: &str| {
            info.split_whitespace()
                .find_map(|t| t.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {info}"))
        };
        let ss_rtt_ms: f64 = field("rtt:").split('/').next().unwrap().parse().unwrap();
        let ss_cwnd: u64 = field("cwnd:").parse().unwrap();
        let mine = ours
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                format!("{}:{}", s["local_addr"].as_str().unwrap(), s["local_port"]) == local
                    && format!(
                        "{}:{}",
                        s["remote_addr"].as_str().unwrap(),
                        s["remote_port"]
                    ) == peer
            })
            .unwrap_or_else(|| panic!("ss has {local} -> {peer}, netsight does not"));
        let rtt_ms = mine["tcp_info"]["rtt_us"].as_f64().unwrap() / 1000.0;
        // Idle connections keep their rtt; ss prints it rounded to the microsecond.
        assert!(
            (rtt_ms - ss_rtt_ms).abs() <= 0.002 + 0.1 * ss_rtt_ms,
            "{local}: rtt {rtt_ms} vs ss {ss_rtt_ms}"
        );
        assert_eq!(
            mine["tcp_info"]["snd_cwnd"].as_u64(),
            Some(ss_cwnd),
            "{local} cwnd"
        );
        // What the kernel sent (its struct grows with versions): enough for the fields compared.
        assert!(
            mine["tcp_info_len"].as_u64().is_some_and(|n| n >= 104),
            "tcp_info_len {}",
            mine["tcp_info_len"]
        );
        assert_eq!(mine["process"]["pid"].as_u64(), Some(u64::from(holder.pid)));
        compared += 1;
    }
    assert_eq!(compared, 2 * 40);
}

#[test]
fn owners_come_from_the_bpf_iterator_and_nothing_stays_loaded() {
    if !privileged(
        "owners_come_from_the_bpf_iterator_and_nothing_stays_loaded",
        &["ip", "bpftool", "python3"],
    ) {
        return;
    }
    let pair = NetnsPair::new();
    let holder = ConnHolder::start(&pair.b, &["pairs", "5"]);
    let dir = std::env::temp_dir().join(format!("netsight-owners-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bundle = dir.join("s.nsb");
    pair.exec_ok(
        &pair.b,
        netsight(),
        &["snapshot", "--sockets", "-o", bundle.to_str().unwrap()],
    );
    let snap: Value = serde_json::from_str(&support::run(
        netsight(),
        &["snapshot", "--from", bundle.to_str().unwrap(), "--json"],
    ))
    .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    // The iterator ran (no fallback reason recorded) and found the holder's sockets.
    assert!(
        snap["unavailable"]["derived/socket-owners-bpf"].is_null(),
        "{}",
        snap["unavailable"]
    );
    let owned = snap["sockets"]["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["process"]["pid"].as_u64() == Some(u64::from(holder.pid)))
        .count();
    // 5 open pairs, the 3 server sides left in CLOSE-WAIT, and the listener; the 3
    // clients that closed are orphans in FIN-WAIT-2 with no file, so no owner.
    assert_eq!(owned, 2 * 5 + 3 + 1);
    let progs = support::run("bpftool", &["prog", "list"]);
    assert!(
        !progs.contains("socket_owners"),
        "iterator left loaded: {progs}"
    );
}

#[test]
fn close_wait_leak_and_full_accept_queue_are_reported() {
    if !privileged(
        "close_wait_leak_and_full_accept_queue_are_reported",
        &["ip", "python3"],
    ) {
        return;
    }
    let pair = NetnsPair::new();
    let holder = ConnHolder::start(&pair.b, &["leak-and-overflow"]);
    let (port_full, port_leaky) = (holder.ports[0], holder.ports[1]);

    let summary: Value = serde_json::from_str(&pair.exec_ok(
        &pair.b,
        netsight(),
        &["sockets", "--summary", "--json"],
    ))
    .unwrap();

    let leak = &summary["close_wait_by_process"][0];
    assert_eq!(
        leak["pid"].as_u64(),
        Some(u64::from(holder.pid)),
        "{summary}"
    );
    assert_eq!(leak["comm"], "python3");
    assert_eq!(leak["count"], 5);

    let listeners = summary["listeners"].as_array().unwrap();
    let full = listeners
        .iter()
        .find(|l| l["local_port"].as_u64() == Some(u64::from(port_full)))
        .expect("the full listener");
    // Linux admits backlog + 1 connections to the accept queue before dropping SYNs.
    assert_eq!(full["backlog"], 2);
    assert_eq!(full["accept_queue"], 3);
    assert!(full["fill_percent"].as_f64().unwrap() >= 100.0);
    assert_eq!(full["pid"].as_u64(), Some(u64::from(holder.pid)));
    // It is ranked first: the fullest listener leads the list.
    assert_eq!(
        listeners[0]["local_port"].as_u64(),
        Some(u64::from(port_full))
    );
    let leaky = listeners
        .iter()
        .find(|l| l["local_port"].as_u64() == Some(u64::from(port_leaky)))
        .unwrap();
    assert_eq!(leaky["accept_queue"], 0);

    // The filters find the same sockets.
    let cw = sockets_json(
        &pair,
        &pair.b,
        &[
            "--state",
            "close-wait",
            "--process",
            &holder.pid.to_string(),
        ],
    );
    assert_eq!(cw.as_array().unwrap().len(), 5);
    let by_port = sockets_json(
        &pair,
        &pair.b,
        &["--listening", "--port", &port_full.to_string()],
    );
    assert_eq!(by_port.as_array().unwrap().len(), 1);
    assert_eq!(by_port[0]["recv_q"], 3);
    let none = sockets_json(&pair, &pair.b, &["--peer", "192.0.2.0/24"]);
    assert_eq!(none.as_array().unwrap().len(), 0);
}
