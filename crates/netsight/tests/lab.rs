//! Every lab scenario must be detected by doctor (issue 5): a scenario the
//! doctor misses is a failing test. One test per scenario so they run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::sync::RwLock;

use serde_json::Value;
use support::{netsight, output, privileged};

/// Scenarios that change host-wide sysctls run alone; the others share.
static HOST: RwLock<()> = RwLock::new(());

fn scenario(name: &str, changes_host: bool) {
    if !privileged(&format!("lab {name}"), &["ip", "tc", "iptables", "taskset"]) {
        return;
    }
    let _shared;
    let _exclusive;
    if changes_host {
        _exclusive = HOST.write().unwrap_or_else(|e| e.into_inner());
    } else {
        _shared = HOST.read().unwrap_or_else(|e| e.into_inner());
    }
    // Every run is also captured: scenarios with a packet signature must be diagnosed from it.
    let captures =
        std::env::temp_dir().join(format!("netsight-lab-captures-{}", std::process::id()));
    let out = output(
        netsight(),
        &[
            "lab",
            "run",
            name,
            "--json",
            "--capture",
            &captures.display().to_string(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: Value = serde_json::from_str(stdout.lines().next().unwrap_or("null"))
        .unwrap_or_else(|e| {
            panic!(
                "{name}: {e}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert_eq!(result["name"], name);
    assert_eq!(result["detected"], true, "{name} not detected: {result}");
    if !result["packets"].is_null() {
        assert_eq!(
            result["packets"]["detected"], true,
            "{name}: analyze missed {} in the capture: {}",
            result["packets"]["expected_diagnosis"], result["packets"]
        );
    }
    let _ = std::fs::remove_file(captures.join(format!("{name}.pcap")));
    // Shared by the scenarios running in parallel: the last one out removes it.
    let _ = std::fs::remove_dir(&captures);
    assert!(
        !result["evidence"].as_array().unwrap().is_empty(),
        "{result}"
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Everything of this run is gone.
    let left = support::run("ip", &["netns", "list"]);
    let tag = format!("nsl-{name}-");
    assert!(
        !left.lines().any(|l| l.starts_with(&tag)),
        "{name} left namespaces: {left}"
    );
}

macro_rules! scenarios {
    ($($test:ident => $name:literal $(, $host:ident)?;)*) => {
        $(#[test] fn $test() { scenario($name, false $(|| stringify!($host) == "host")?); })*

        #[test]
        fn every_listed_scenario_has_a_test() {
            let out = output(netsight(), &["lab", "list", "--json"]);
            let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
            let tested = [$($name),*];
            let exclusive = [$($( { let _ = stringify!($host); $name } ,)?)*];
            for s in &listed {
                let name = s["name"].as_str().unwrap();
                assert!(tested.contains(&name), "scenario {name} has no test");
                assert_eq!(s["changes_host"] == true, exclusive.contains(&name), "{name}: host-wide changes must run alone");
            }
            assert!(listed.len() >= 12, "issue 5 asks for at least 12 scenarios, {} listed", listed.len());
        }
    };
}

scenarios! {
    listen_overflow => "listen-overflow";
    udp_buffer_overflow => "udp-buffer-overflow";
    close_wait_leak => "close-wait-leak";
    random_loss => "random-loss";
    qdisc_drops => "qdisc-drops";
    bufferbloat => "bufferbloat";
    time_wait_exhaustion => "time-wait-exhaustion";
    firewall_reject => "firewall-reject";
    firewall_drop => "firewall-drop";
    pmtu_blackhole => "pmtu-blackhole";
    nagle_delayed_ack => "nagle-delayed-ack";
    syn_flood_no_cookies => "syn-flood-no-cookies";
    syn_flood_cookies => "syn-flood-cookies";
    small_window => "small-window";
    server_firewall_drop => "server-firewall-drop";
    dead_next_hop => "dead-next-hop";
    server_legacy_firewall_drop => "server-legacy-firewall-drop";
    server_xdp_drop => "server-xdp-drop";
    softnet_backlog => "softnet-backlog", host;
    conntrack_full => "conntrack-full", host;
}

#[test]
fn unknown_scenario_and_down() {
    let out = output(netsight(), &["lab", "run", "no-such-scenario"]);
    assert_eq!(out.status.code(), Some(64), "a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("netsight lab list"));
    if !privileged("lab down", &["ip"]) {
        return;
    }
    let _exclusive = HOST.write().unwrap_or_else(|e| e.into_inner());
    support::run("ip", &["netns", "add", "nsl-leftover-test-c"]);
    // A world-writable place is never read: a local user's planted journal in /tmp
    // (the old location) must not be replayed as root.
    let domainname = support::run("sysctl", &["-n", "kernel.domainname"]);
    let planted = std::env::temp_dir().join("netsight-lab-host-sysctls");
    std::fs::write(&planted, "kernel.domainname=netsight-pwned\n").unwrap();
    std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();

    // A journal left by a killed run: down restores the value it records (here the current one).
    let current = support::run("sysctl", &["-n", "net.core.netdev_max_backlog"]);
    let journal = std::path::Path::new("/run/netsight/lab-host-sysctls.json");
    let write_journal = |text: String, mode: u32| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::create_dir_all("/run/netsight").unwrap();
        std::fs::write(journal, text).unwrap();
        std::fs::set_permissions(journal, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let entry = |key: &str, value: &str| {
        format!(r#"{{"entries": [{{"key": "{key}", "original": "{value}", "holders": [1]}}]}}"#)
    };
    write_journal(entry("net.core.netdev_max_backlog", current.trim()), 0o600);
    let down = support::run(netsight(), &["lab", "down"]);
    assert!(down.contains("nsl-leftover-test-c"), "{down}");
    assert!(
        down.contains("sysctl net.core.netdev_max_backlog="),
        "{down}"
    );
    assert!(!journal.exists());
    assert!(!support::run("ip", &["netns", "list"]).contains("nsl-leftover-test-c"));
    assert_eq!(
        support::run("sysctl", &["-n", "kernel.domainname"]),
        domainname
    );
    std::fs::remove_file(&planted).unwrap();

    // A journal others could have written, or naming a knob the lab never changes, is refused.
    for (text, mode, why) in [
        (
            entry("net.core.netdev_max_backlog", current.trim()),
            0o666,
            "refusing to trust",
        ),
        (
            entry("kernel.domainname", "1"),
            0o600,
            "not one the lab makes",
        ),
        (
            entry("net.core.netdev_max_backlog", "1; id"),
            0o600,
            "not one the lab makes",
        ),
    ] {
        write_journal(text, mode);
        let out = output(netsight(), &["lab", "down"]);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(why),
            "{out:?}"
        );
    }
    assert_eq!(
        support::run("sysctl", &["-n", "kernel.domainname"]),
        domainname
    );
    std::fs::remove_file(journal).unwrap();
}

/// SIGTERM (and SIGHUP) clean up exactly as Ctrl-C does: host sysctls restored,
/// namespaces and agents gone; with --keep the namespaces stay for inspection.
#[test]
fn lab_cleans_up_on_sigterm_and_honours_keep() {
    if !privileged("lab SIGTERM", &["ip", "tc", "iptables", "taskset"]) {
        return;
    }
    let _exclusive = HOST.write().unwrap_or_else(|e| e.into_inner());
    let original = support::run("sysctl", &["-n", "net.core.netdev_max_backlog"]);
    for (signal, keep) in [("TERM", false), ("HUP", false), ("INT", true)] {
        let mut args = vec!["lab", "run", "softnet-backlog", "--json"];
        if keep {
            args.push("--keep");
        }
        let mut child = std::process::Command::new(netsight())
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let tag = format!("nsl-softnet-backlog-{}-", child.id());
        // Ready when the scenario holds the host knob: its journal names our child.
        let started = std::time::Instant::now();
        loop {
            let journal =
                std::fs::read_to_string("/run/netsight/lab-host-sysctls.json").unwrap_or_default();
            let now = support::run("sysctl", &["-n", "net.core.netdev_max_backlog"]);
            if journal.contains(&child.id().to_string()) && now != original {
                break;
            }
            assert!(
                started.elapsed().as_secs() < 60,
                "scenario never set its host sysctl"
            );
            assert!(child.try_wait().unwrap().is_none(), "lab run ended early");
            std::thread::yield_now();
        }
        support::run("kill", &[&format!("-{signal}"), &child.id().to_string()]);
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(130),
            "{signal}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            support::run("sysctl", &["-n", "net.core.netdev_max_backlog"]),
            original,
            "{signal}"
        );
        assert!(!std::path::Path::new("/run/netsight/lab-host-sysctls.json").exists());
        let left = support::run("ip", &["netns", "list"]);
        let kept = left.lines().filter(|l| l.starts_with(&tag)).count();
        if keep {
            assert_eq!(kept, 3, "--keep: {left}");
            support::run(netsight(), &["lab", "down"]);
        } else {
            assert_eq!(kept, 0, "{signal} left namespaces: {left}");
        }
    }
}

/// Issue 8: the plan `netsight tune apply` makes in the scenario's namespace removes
/// the finding and improves the scenario's metric.
fn fixed_by_tune(name: &str) {
    if !privileged(
        &format!("lab {name} --fix"),
        &["ip", "tc", "iptables", "taskset"],
    ) {
        return;
    }
    // Alone: the plain run of the same scenario checks that no namespace of its name is left.
    let _exclusive = HOST.write().unwrap_or_else(|e| e.into_inner());
    let out = output(netsight(), &["lab", "run", name, "--fix", "--json"]);
    let result: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{name}: {e}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(result["detected"], true, "{result}");
    let fix = &result["fix"];
    assert!(
        !fix["applied"]["applied"].as_array().unwrap().is_empty(),
        "{fix}"
    );
    assert_eq!(
        fix["fixed"], true,
        "{name}: finding still there after tune: {fix}"
    );
    assert_eq!(
        fix["improved"], true,
        "{name}: {} did not improve: {fix}",
        fix["metric"]
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn small_window_fixed_by_tune() {
    fixed_by_tune("small-window");
}

#[test]
fn listen_overflow_fixed_by_tune() {
    fixed_by_tune("listen-overflow");
}
