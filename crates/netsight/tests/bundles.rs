//! Bundles from other machines are hostile input, and a recording must survive
//! being interrupted (issue 14, items 5, 6 and 9).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::io::Read as _;
use std::path::{Path, PathBuf};

use netsight_kernel::{bundle, LiveSource, RawSnapshot};
use serde_json::Value;
use support::{netsight, output};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("netsight-bundles-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Sets one field of a paired /proc/net/snmp-style text ("Tcp: A B\nTcp: 1 2").
fn set_counter(text: &str, group: &str, name: &str, value: u64) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    for i in 0..lines.len().saturating_sub(1) {
        let prefix = format!("{group}:");
        if lines[i].starts_with(&prefix) && lines[i + 1].starts_with(&prefix) {
            let names: Vec<&str> = lines[i].split_whitespace().collect();
            if let Some(col) = names.iter().position(|n| *n == name) {
                let mut values: Vec<String> = lines[i + 1]
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                values[col] = value.to_string();
                out[i + 1] = values.join(" ");
            }
        }
    }
    out.join("\n") + "\n"
}

fn live_pair() -> (RawSnapshot, RawSnapshot) {
    let first = LiveSource::default().collect();
    let mut second = LiveSource::default().collect();
    second.meta.monotonic_ns = first.meta.monotonic_ns + 5_000_000_000;
    (first, second)
}

fn doctor_json(path: &Path) -> (Option<i32>, Value, String) {
    let out = output(
        netsight(),
        &["doctor", "--from", path.to_str().unwrap(), "--json"],
    );
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code(),
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_counter_that_goes_down_is_a_reported_reset_not_a_huge_rate() {
    let dir = scratch("reset");
    let (mut first, mut second) = live_pair();
    let snmp = first.text("proc/net/snmp").unwrap().into_owned();
    // Below 2^32, so the old 32-bit wrap guess made it 2.2e9/s.
    first.entries.insert(
        "proc/net/snmp".into(),
        set_counter(&snmp, "Tcp", "EstabResets", 2_078_619_661).into_bytes(),
    );
    second.entries.insert(
        "proc/net/snmp".into(),
        set_counter(&snmp, "Tcp", "EstabResets", 100).into_bytes(),
    );
    let path = dir.join("reset.nsb");
    bundle::write(&path, &[first, second]).unwrap();
    let (code, report, stderr) = doctor_json(&path);
    assert!(matches!(code, Some(0..=2)), "{stderr}");
    let findings = report["findings"].as_array().unwrap();
    for f in findings {
        for e in f["evidence"].as_array().unwrap() {
            assert!(
                e["value"].as_f64().unwrap_or(0.0) < 1e9,
                "a reset became a rate: {f}"
            );
        }
    }
    let skipped = report["skipped"].to_string();
    assert!(
        skipped.contains("Tcp.EstabResets") && skipped.contains("reset"),
        "{skipped}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_bundle_with_nothing_readable_cannot_run_and_garbage_is_named() {
    let dir = scratch("empty");
    let (mut first, mut second) = live_pair();
    for raw in [&mut first, &mut second] {
        raw.entries.clear();
        raw.missing.clear();
        raw.entries
            .insert("proc/net/snmp".into(), b"\x00\x01 not snmp".to_vec());
    }
    let path = dir.join("empty.nsb");
    bundle::write(&path, &[first, second]).unwrap();
    let out = output(netsight(), &["doctor", "--from", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("nothing to diagnose"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("No problems"));

    // Netlink dumps that do not parse are reported, not read as "0 qdiscs".
    let (mut first, mut second) = live_pair();
    for raw in [&mut first, &mut second] {
        raw.entries.insert(
            "netlink/route/qdisc".into(),
            b"garbage that is no netlink dump".to_vec(),
        );
    }
    let path = dir.join("garbage.nsb");
    bundle::write(&path, &[first, second]).unwrap();
    let (code, report, stderr) = doctor_json(&path);
    assert!(matches!(code, Some(0..=2)), "{stderr}");
    assert!(
        report["skipped"]
            .to_string()
            .contains("netlink/route/qdisc"),
        "{}",
        report["skipped"]
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The peak RSS (KiB) of a command, through python's RUSAGE_CHILDREN.
fn max_rss_kib(args: &[&str]) -> (i32, u64, String) {
    let script = "import resource,subprocess,sys\n\
        p = subprocess.run(sys.argv[1:], capture_output=True)\n\
        sys.stderr.write(p.stderr.decode(errors='replace'))\n\
        print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)";
    let mut full = vec!["-c", script];
    full.extend_from_slice(args);
    let out = output("python3", &full);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    let code = words.next().and_then(|w| w.parse().ok()).unwrap_or(-1);
    let rss = words
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or(u64::MAX);
    (code, rss, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_bundle_bomb_ends_with_a_clear_error_in_bounded_memory() {
    if !support::have("python3") {
        support::skip(
            "a_bundle_bomb_ends_with_a_clear_error_in_bounded_memory",
            "needs python3",
        );
        return;
    }
    let dir = scratch("bomb");
    let path = dir.join("bomb.nsb");
    // 40 members of 8 MiB under a key netsight reads: 320 MiB if all were kept.
    let file = std::fs::File::create(&path).unwrap();
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    ));
    let meta = br#"{"format_version": 1, "created_by": "bomb"}"#;
    let mut add = |name: &str, data: &mut dyn std::io::Read, size: u64| {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, data).unwrap();
    };
    add("meta.json", &mut &meta[..], meta.len() as u64);
    for i in 0..40 {
        let size = 8u64 << 20;
        add(
            &format!("snapshots/0/proc/net/x{i}"),
            &mut std::io::repeat(0).take(size),
            size,
        );
    }
    builder.into_inner().unwrap().finish().unwrap();
    let (code, rss_kib, stderr) =
        max_rss_kib(&[netsight(), "doctor", "--from", path.to_str().unwrap()]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("bytes of snapshot data"), "{stderr}");
    assert!(rss_kib <= 256 * 1024, "peak RSS {rss_kib} KiB");
    std::fs::remove_dir_all(&dir).ok();
}

/// Reads stderr until `needle` shows up (the progress line is the readiness signal).
fn wait_for(stderr: &mut impl std::io::Read, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        assert_eq!(
            stderr.read(&mut byte).unwrap(),
            1,
            "ended before {needle:?}: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.push(byte[0]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn an_interrupted_recording_is_a_valid_bundle_of_what_was_taken() {
    let dir = scratch("interrupted");
    for signal in ["TERM", "HUP", "INT", "KILL"] {
        let path = dir.join(format!("rec-{signal}.nsb"));
        let mut child = std::process::Command::new(netsight())
            .args([
                "snapshot",
                "-o",
                path.to_str().unwrap(),
                "--interval",
                "0.1",
                "--count",
                "1000",
            ])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        wait_for(&mut stderr, "3/1000 snapshots written");
        support::run("kill", &[&format!("-{signal}"), &child.id().to_string()]);
        let status = child.wait().unwrap();
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        let read = bundle::read_bundle(&path).unwrap();
        assert!(
            read.snapshots.len() >= 3,
            "{signal}: {} snapshots",
            read.snapshots.len()
        );
        if signal == "KILL" {
            assert!(
                read.truncated.is_some(),
                "a killed recording is cut short, and says so"
            );
        } else {
            assert!(status.success(), "{signal}: {status:?} {rest}");
            assert!(read.truncated.is_none(), "{signal}: {:?}", read.truncated);
            assert!(rest.contains("stopped early"), "{rest}");
        }
        // doctor and stat use what was recorded.
        let out = output(
            netsight(),
            &["stat", "--from", path.to_str().unwrap(), "TCP"],
        );
        assert!(
            out.status.success(),
            "{signal}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn outputs_are_never_written_through_a_symlink() {
    let dir = scratch("symlink");
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let link = dir.join("out.nsb");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let out = output(netsight(), &["snapshot", "-o", link.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("symbolic link"),
        "{out:?}"
    );
    let out = output(
        netsight(),
        &[
            "capture",
            "-i",
            "lo",
            "-w",
            link.to_str().unwrap(),
            "-c",
            "1",
        ],
    );
    assert!(!out.status.success());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn absurd_sysctl_values_in_a_bundle_never_panic() {
    let dir = scratch("absurd");
    for value in [
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551615",
        "9223372036854775807 1",
        "x y z",
    ] {
        let (mut first, mut second) = live_pair();
        for raw in [&mut first, &mut second] {
            let keys: Vec<String> = raw
                .entries
                .keys()
                .filter(|k| k.starts_with("proc/sys/"))
                .cloned()
                .collect();
            for k in keys {
                raw.entries.insert(k, format!("{value}\n").into_bytes());
            }
        }
        let path = dir.join("absurd.nsb");
        bundle::write(&path, &[first, second]).unwrap();
        let (code, report, stderr) = doctor_json(&path);
        assert!(matches!(code, Some(0..=2)), "{value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{value}: {stderr}");
        assert!(report["findings"].is_array());
    }
    std::fs::remove_dir_all(&dir).ok();
}
