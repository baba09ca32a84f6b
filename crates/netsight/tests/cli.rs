//! Command-line behaviour that needs no privilege: help, errors, JSON shape.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use support::{netsight, output};

/// Exit statuses are the same across verbs: 64 usage, 3 could not run, 4 damaged input.
#[test]
fn bad_input_gets_a_clear_error_and_a_distinct_exit_status() {
    let out = output(netsight(), &["stat", "BOGUS"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown keyword \"BOGUS\""));

    let out = output(netsight(), &["snapshot", "--from", "/nonexistent/host.nsb"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/host.nsb"));

    let junk = std::env::temp_dir().join(format!("netsight-junk-{}.nsb", std::process::id()));
    std::fs::write(&junk, b"definitely not gzip").unwrap();
    let out = output(netsight(), &["stat", "--from", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a netsight bundle"));
    // stat --from takes its intervals from the bundle.
    let out = output(
        netsight(),
        &["stat", "--from", junk.to_str().unwrap(), "TCP", "1", "3"],
    );
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&junk).ok();
    assert_eq!(output(netsight(), &["--version"]).status.code(), Some(0));
    assert_eq!(
        output(netsight(), &["doctor", "--help"]).status.code(),
        Some(0)
    );
    assert_eq!(
        output(netsight(), &["no-such-verb"]).status.code(),
        Some(64)
    );
}

/// Absurd numbers and flags that cannot work together are refused with a clear
/// error and the usage status, never a panic or a silent fallback.
#[test]
fn hostile_numbers_and_conflicting_flags_are_refused() {
    let bundle = "/nonexistent.nsb";
    let cases: &[&[&str]] = &[
        &["doctor", "--interval", "nan"],
        &["doctor", "--interval", "-1"],
        &["doctor", "--interval", "0"],
        &["doctor", "--interval", "inf"],
        &["doctor", "--interval", "1e300"],
        &["doctor", "--deep", "1e300s"],
        &["doctor", "--from", bundle, "--interval", "2s"],
        &["doctor", "--from", bundle, "--no-sockets"],
        &["snapshot", "-o", "/tmp/x.nsb", "--interval", "NaN"],
        &["snapshot", "-o", "/tmp/x.nsb", "--count", "0"],
        &["snapshot", "-o", "/tmp/x.nsb", "--json"],
        &["stat", "DEV", "nan"],
        &["stat", "DEV", "-1"],
        &["stat", "DEV", "1e300"],
        &["stat", "DEV", "1", "0"],
        &["trace", "drops", "--duration", "inf"],
        &["trace", "rtt", "--duration", "-5"],
        &["capture", "-i", "lo", "-w", "/tmp/x.pcap", "-s", "10"],
        &["capture", "-i", "lo", "-w", "/tmp/x.pcap", "-s", "1000000"],
        &["capture", "-i", "lo", "-w", "/tmp/x.pcap", "-c", "0"],
        &[
            "capture",
            "-i",
            "lo",
            "-w",
            "/tmp/x.pcap",
            "--duration",
            "nan",
        ],
        &["analyze", "/nonexistent.pcap", "--flow", "banana"],
        &["analyze", "/nonexistent.pcap", "--flow", ":99999"],
        &["sockets", "--summary", "--sort", "rtt"],
        &["sockets", "--summary", "--limit", "3"],
        &["sockets", "--listening", "--state", "estab"],
        &["sockets", "--state", "bogus"],
        &["tune", "audit", "--set", "net.core.somaxconn=1"],
        &["tune", "bdp", "--speed", "10", "--rtt", "80ms"],
        &["tune", "bdp", "--speed", "10G", "--rtt", "80"],
        &["tune", "bdp", "--speed", "nanG", "--rtt", "80ms"],
        &["tune", "apply", "--confirm-within", "0s"],
        &["tune", "apply", "--confirm-within", "48h"],
        &["lab", "run", "no-such-scenario"],
        &["trace", "drops", "--pid", "1"],
        &["trace", "retrans", "--pid", "1"],
        &["trace", "rtt", "--pid", "1"],
        &["trace", "synbl", "--pid", "1"],
        &["trace", "drops", "--addr", "banana"],
        &["trace", "life", "--addr", "10.0.0.0/40"],
    ];
    for args in cases {
        let out = output(netsight(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.trim().is_empty(), "{args:?}: no message");
    }
}

#[test]
fn duration_flags_take_units() {
    let out = output(netsight(), &["stat", "TCP", "200ms", "2", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert!(
        (first["interval_s"].as_f64().unwrap() - 0.2).abs() < 0.1,
        "{first}"
    );
    let out = output(
        netsight(),
        &["tune", "bdp", "--speed", "10GB", "--rtt", "1s", "--json"],
    );
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(b["speed_bits_per_s"], 80_000_000_000u64, "GB is gigabytes");
}

#[test]
fn help_has_examples() {
    for verb in [
        "doctor", "snapshot", "stat", "sockets", "explain", "analyze", "capture", "serve",
        "record", "report",
    ] {
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

/// Like sar, `stat` interrupted (SIGINT, SIGTERM, SIGHUP) still prints its Average line.
#[test]
fn interrupted_stat_prints_the_average() {
    use std::io::BufRead as _;
    for signal in ["INT", "TERM", "HUP"] {
        let mut child = std::process::Command::new(netsight())
            .args(["stat", "TCP", "100ms"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        // Two interval blocks (header + row each) are the readiness signal.
        let mut seen = Vec::new();
        while seen
            .iter()
            .filter(|l: &&String| l.contains("active/s"))
            .count()
            < 2
        {
            let mut line = String::new();
            assert!(reader.read_line(&mut line).unwrap() > 0);
            seen.push(line);
        }
        output("kill", &[&format!("-{signal}"), &child.id().to_string()]);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "{signal}: {status:?}");
        assert!(
            rest.contains("Average:"),
            "{signal}: no Average line in {rest:?}"
        );
    }
}

/// Completions, the man page and --version come from the one clap definition.
#[test]
fn completions_man_page_and_version() {
    for shell in ["bash", "zsh", "fish"] {
        let out = output(netsight(), &["completions", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8_lossy(&out.stdout);
        for verb in ["doctor", "analyze", "tune", "completions"] {
            assert!(script.contains(verb), "{shell} completion lacks {verb}");
        }
    }
    let bash = output(netsight(), &["completions", "bash"]).stdout;
    let script =
        std::env::temp_dir().join(format!("netsight-completion-{}.bash", std::process::id()));
    std::fs::write(&script, &bash).unwrap();
    let syntax = output("bash", &["-n", script.to_str().unwrap()]);
    std::fs::remove_file(&script).ok();
    assert!(syntax.status.success(), "bash -n: {syntax:?}");
    assert_eq!(
        output(netsight(), &["completions", "tcsh"]).status.code(),
        Some(64)
    );

    let man = output(netsight(), &["man"]);
    assert!(man.status.success());
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(page.contains(".TH netsight 1"), "{page}");
    for section in ["NETSIGHT DOCTOR", "NETSIGHT TUNE", "\\-\\-interval"] {
        assert!(page.contains(section), "man page lacks {section}");
    }
    // Every line of the rendered help is literal text, not a roff request.
    assert!(!page
        .lines()
        .any(|l| l.starts_with(".nf.") || l.starts_with(".Examples")));

    let version = String::from_utf8_lossy(&output(netsight(), &["--version"]).stdout).into_owned();
    assert!(version.contains("(commit "), "{version}");
    assert!(version.contains("kernel BTF: "), "{version}");
    assert!(version.contains("libpcap: "), "{version}");
}

/// --color decides over the terminal test; NO_COLOR is honoured under auto.
#[test]
fn color_flag_is_obeyed() {
    let bundle = std::env::temp_dir().join(format!("netsight-color-{}.nsb", std::process::id()));
    let taken = output(
        netsight(),
        &[
            "snapshot",
            "-o",
            bundle.to_str().unwrap(),
            "--interval",
            "100ms",
            "--count",
            "2",
        ],
    );
    assert!(taken.status.success(), "{taken:?}");
    let doctor = |color: &str| {
        let out = output(
            netsight(),
            &[
                "doctor",
                "--from",
                bundle.to_str().unwrap(),
                "--color",
                color,
            ],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (always, never, auto) = (doctor("always"), doctor("never"), doctor("auto"));
    std::fs::remove_file(&bundle).ok();
    assert!(always.contains("\x1b["), "{always}");
    assert!(!never.contains("\x1b["), "{never}");
    assert!(!auto.contains("\x1b["), "auto to a pipe: {auto}");
    assert!(!never.is_empty());
}

/// `tune audit --from` audits a bundle offline: the same answer every time, and
/// no live interval to set.
#[test]
fn tune_audit_reads_a_bundle() {
    let bundle = std::env::temp_dir().join(format!("netsight-audit-{}.nsb", std::process::id()));
    let path = bundle.to_str().unwrap();
    let taken = output(
        netsight(),
        &[
            "snapshot",
            "-o",
            path,
            "--interval",
            "100ms",
            "--count",
            "2",
            "--sockets",
        ],
    );
    assert!(taken.status.success(), "{taken:?}");
    let first = output(netsight(), &["tune", "audit", "--from", path, "--json"]);
    let again = output(netsight(), &["tune", "audit", "--from", path, "--json"]);
    let with_interval = output(
        netsight(),
        &["tune", "audit", "--from", path, "--interval", "1s"],
    );
    std::fs::remove_file(&bundle).ok();
    assert!(first.status.success(), "{first:?}");
    assert_eq!(
        first.stdout, again.stdout,
        "an offline audit is deterministic"
    );
    let audit: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert!(
        audit["items"].as_array().is_some_and(|i| !i.is_empty()),
        "{audit}"
    );
    assert_eq!(with_interval.status.code(), Some(64));
}

/// Every drop reason this kernel defines is in doctor's inventory, and explain knows it.
#[test]
fn drop_reason_inventory_covers_this_kernel() {
    let btf = match netsight_kernel::kernel_image::vmlinux_btf() {
        Ok(btf) => btf,
        Err(e) => return support::skip("drop_reason_inventory_covers_this_kernel", &e),
    };
    let reasons = netsight_trace::btf_enum::enum_values(&btf, "skb_drop_reason").unwrap();
    let mut missing = Vec::new();
    for name in reasons.values() {
        let name = name.trim_start_matches("SKB_DROP_REASON_");
        // Not drops: markers and the enum's bounds.
        if matches!(
            name,
            "SKB_NOT_DROPPED_YET" | "SKB_CONSUMED" | "MAX" | "SUBSYS_MASK"
        ) {
            continue;
        }
        if netsight_doctor::drop_reasons::find(name).is_none() {
            missing.push(name.to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "reasons this kernel has and the inventory lacks: {missing:?}"
    );
    let out = output(
        netsight(),
        &["explain", "SKB_DROP_REASON_NEIGH_FAILED", "--json"],
    );
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["kind"], "drop reason");
    assert!(e["meaning"].as_str().unwrap().contains("ARP"), "{e}");
}

/// Every /proc/net/stat column and 64-bit link stats field this kernel has is in
/// the loss inventory, and explain knows it.
#[test]
fn loss_inventory_covers_this_kernels_tables_and_link_stats() {
    let mut missing = Vec::new();
    for entry in std::fs::read_dir("/proc/net/stat").unwrap().flatten() {
        let table = entry.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for column in text.lines().next().unwrap_or("").split_whitespace() {
            if netsight_doctor::inventory::find(&table, column).is_none() {
                missing.push(format!("{table}.{column}"));
            }
        }
    }
    // ip -s -s -j link: {"rx": {"over_errors"...}, "tx": {...}} → rx_over_errors.
    let out = output("ip", &["-s", "-s", "-j", "link", "show", "lo"]);
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (dir, fields) in links[0]["stats64"].as_object().unwrap() {
        for field in fields.as_object().unwrap().keys() {
            let name = match (dir.as_str(), field.as_str()) {
                (_, "multicast") => "multicast".to_string(),
                (_, "collisions") => "collisions".to_string(),
                // iproute2's name for the device's carrier transitions, not a stats64 field.
                (_, "carrier_changes") => continue,
                (d, f) => format!("{d}_{f}"),
            };
            if netsight_doctor::inventory::find("link", &name).is_none() {
                missing.push(format!("link.{name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "signals this kernel has that the inventory lacks: {missing:?}"
    );
    let out = output(
        netsight(),
        &["explain", "arp_cache.unresolved_discards", "--json"],
    );
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["kind"], "/proc/net/stat column");
    assert!(
        e["interpretation"]
            .as_str()
            .unwrap()
            .contains("NEIGH_QUEUEFULL"),
        "{e}"
    );
}

/// Every driver counter (`ethtool -S`) of this machine's interfaces, a veth pair's
/// included, has its own inventory entry (not only the by-words fallback), and
/// explain knows it with its queue number.
#[test]
fn loss_inventory_covers_this_machines_driver_counters() {
    if !support::privileged(
        "loss_inventory_covers_this_machines_driver_counters",
        &["ip", "ethtool"],
    ) {
        return;
    }
    let pair = support::NetnsPair::new();
    let mut interfaces: Vec<(Option<&str>, String)> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| (None, e.file_name().to_string_lossy().into_owned()))
        .collect();
    interfaces.push((Some(pair.a.as_str()), "va".into()));
    let mut missing = Vec::new();
    let mut seen = 0;
    for (ns, interface) in &interfaces {
        let out = match ns {
            Some(ns) => pair.exec(ns, "ethtool", &["-S", interface]),
            None => output("ethtool", &["-S", interface]),
        };
        // "NIC statistics:" then "     name: value"; interfaces without any say so and fail.
        for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
            let Some((name, _)) = line.trim().rsplit_once(':') else {
                continue;
            };
            seen += 1;
            if netsight_doctor::inventory::lookup(&format!("ethtool.{name}")).is_none() {
                missing.push(format!("{interface}: {name}"));
            }
        }
    }
    assert!(seen > 0, "no driver counters read from {interfaces:?}");
    assert!(
        missing.is_empty(),
        "driver counters this machine has that the inventory lacks: {missing:?}"
    );
    let out = output(
        netsight(),
        &["explain", "ethtool.rx_queue_3_xdp_drops", "--json"],
    );
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["related_rules"][0], "nic.xdp_drops", "{e}");
}

/// Every MIB counter of this kernel that looks like loss, errors or saturation has
/// a kind and a coverage in the inventory (`nstat -az` walks them all).
#[test]
fn loss_inventory_covers_this_kernels_mib_loss_counters() {
    if !support::have("nstat") {
        return support::skip(
            "loss_inventory_covers_this_kernels_mib_loss_counters",
            "needs nstat (iproute2)",
        );
    }
    let out = output("nstat", &["-az", "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let counters = all["kernel"].as_object().expect("nstat kernel object");
    let looks_like_loss = regex_free_loss_words();
    let groups = [
        "UdpLite6", "UdpLite", "MPTcpExt", "TcpExt", "IpExt", "Icmp6", "Icmp", "Udp6", "Ip6",
        "Tcp", "Udp", "Ip",
    ];
    let mut missing = Vec::new();
    for name in counters.keys() {
        let Some(group) = groups.iter().find(|g| name.starts_with(**g)) else {
            continue;
        };
        let counter = &name[group.len()..];
        let lower = counter.to_ascii_lowercase();
        if !looks_like_loss.iter().any(|w| lower.contains(w)) {
            continue;
        }
        let known = *group == "MPTcpExt"
            || netsight_doctor::inventory::MIB_SIGNALS
                .iter()
                .any(|(g, n, _, _)| g == group && *n == counter);
        if !known {
            missing.push(name.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "loss-looking MIB counters the inventory lacks: {missing:?}"
    );
}

fn regex_free_loss_words() -> Vec<&'static str> {
    vec![
        "drop",
        "err",
        "fail",
        "overflow",
        "prune",
        "collapse",
        "lost",
        "timeout",
        "retrans",
        "abort",
        "full",
        "reject",
        "unreach",
        "noroute",
        "noport",
        "toobig",
        "discard",
        "pressure",
        "limit",
        "paws",
        "rst",
        "reset",
        "undo",
        "challenge",
        "probe",
    ]
}
