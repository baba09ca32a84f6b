//! `netsight record` / `report` / `doctor --db` for real: a fault injected in a
//! namespace shows as an incident window at the right times, kill -9 leaves a
//! sound file, every namespace is labelled, and the HTML report renders in a
//! headless Chromium with its charts drawn.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{have, netsight, output, privileged, skip, NetnsPair};

/// A directory only root (this user) can write, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("netsight-history-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `netsight record --json`, killed on drop; its sample lines are read as they come.
struct Recorder {
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Recorder {
    fn start(prefix: &[&str], args: &[&str]) -> Recorder {
        let (program, mut all): (&str, Vec<&str>) = match prefix.split_first() {
            Some((p, rest)) => (p, rest.to_vec()),
            None => (netsight(), Vec::new()),
        };
        if !prefix.is_empty() {
            all.push(netsight());
        }
        all.extend(["record", "--json"]);
        all.extend_from_slice(args);
        let mut child = Command::new(program)
            .args(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("netsight record");
        let lines = BufReader::new(child.stdout.take().unwrap());
        Recorder { child, lines }
    }

    /// The next sample line; None once record has exited.
    fn next(&mut self) -> Option<Value> {
        let mut line = String::new();
        if self.lines.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn report_json(db: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["report", "--db", db.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = output(netsight(), &args);
    assert!(
        out.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A UDP receiver with a 4 KiB buffer that never reads, flooded for `seconds`:
/// prints START and STOP with the wall-clock ms.
const UDP_FLOOD: &str = r#"
import socket, sys, time
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
r.bind(("127.0.0.1", 0))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print("START", int(time.time() * 1000), flush=True)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    for _ in range(20):
        s.sendto(b"x" * 1000, r.getsockname())
    time.sleep(0.01)
print("STOP", int(time.time() * 1000), flush=True)
"#;

fn sqlite(db: &Path, sql: &str) -> String {
    let out = output("sqlite3", &[db.to_str().unwrap(), sql]);
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn an_injected_fault_is_an_incident_window_in_the_report_and_the_html_renders() {
    let test = "an_injected_fault_is_an_incident_window_in_the_report_and_the_html_renders";
    if !privileged(test, &["ip", "python3", "sqlite3"]) {
        return;
    }
    let pair = NetnsPair::new();
    let dir = TempDir::new("incident");
    let db = dir.0.join("h.db");
    let db_s = db.to_str().unwrap().to_string();
    let mut rec = Recorder::start(
        &["ip", "netns", "exec", &pair.a],
        &["--db", &db_s, "--interval", "1s", "--count", "31"],
    );
    // Ten samples in, the fault starts, and lasts ten seconds.
    for _ in 0..10 {
        rec.next().expect("a sample");
    }
    let flood = Command::new("ip")
        .args(["netns", "exec", &pair.a, "python3", "-c", UDP_FLOOD, "10"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let fault = flood.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&fault.stdout).to_string();
    let time_of = |word: &str| -> i64 {
        said.lines()
            .find_map(|l| l.strip_prefix(word)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{word} in {said:?}"))
    };
    let (started, stopped) = (time_of("START"), time_of("STOP"));
    while rec.next().is_some() {}
    let report = report_json(&db, &[]);
    let incidents: Vec<&Value> = report["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["rule_id"] == "udp.receive_buffer_errors")
        .collect();
    assert_eq!(
        incidents.len(),
        1,
        "one UDP incident: {:#}",
        report["incidents"]
    );
    let i = incidents[0];
    let (from, to) = (
        i["started_at_ms"].as_i64().unwrap(),
        i["ended_at_ms"].as_i64().unwrap(),
    );
    assert!(
        (from - started).abs() <= 2000,
        "incident starts at {from}, the fault at {started}"
    );
    assert!(
        (to - stopped).abs() <= 2000,
        "incident ends at {to}, the fault at {stopped}"
    );
    assert!(
        i["peak"]["evidence"][0]["value"].as_f64().unwrap() > 0.0,
        "{i:#}"
    );
    assert_eq!(report["samples"], 30, "31 samples, 30 intervals");
    // The UDP table shows the errors over the window.
    let udp_errors: f64 = report["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["UDP"]["idgmerr"].as_f64().unwrap_or(0.0))
        .sum();
    assert!(udp_errors > 0.0, "UDP idgmerr/s over the window");
    // Against the quiet seconds before it, the fault's window moved UDP's errors most.
    let at = |ms: i64| format!("@{:.3}", ms as f64 / 1e3);
    let first_sample = report["window"]["since_unix_ms"].as_i64().unwrap();
    let moved = report_json(
        &db,
        &[
            "UDP",
            "--since",
            &at(started + 1000),
            "--until",
            &at(stopped),
            "--baseline",
            &format!("{}..{}", at(first_sample), at(started - 1000)),
        ],
    );
    let top = &moved["movers"][0];
    assert_eq!(top["keyword"], "UDP", "{:#}", moved["movers"]);
    assert!(
        top["window"].as_f64().unwrap() > 100.0 && top["baseline"].as_f64().unwrap() < 1.0,
        "{top:#}"
    );
    // The same history read by sqlite3, as docs/history.md says.
    let findings = sqlite(
        &db,
        "SELECT count(*) FROM findings WHERE rule_id = 'udp.receive_buffer_errors'",
    );
    assert!(findings.parse::<u32>().unwrap() >= 9, "{findings}");
    assert_eq!(sqlite(&db, "PRAGMA integrity_check"), "ok");

    // doctor over the past: in the middle of the fault, and before it.
    let doctor_at = |at_ms: i64| -> Value {
        let at = format!("@{}", at_ms as f64 / 1e3);
        let out = output(
            netsight(),
            &[
                "doctor", "--db", &db_s, "--at", &at, "--window", "3s", "--json",
            ],
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    let has_udp = |r: &Value| {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule_id"] == "udp.receive_buffer_errors")
    };
    assert!(
        has_udp(&doctor_at((started + stopped) / 2)),
        "doctor --at mid-fault"
    );
    assert!(
        !has_udp(&doctor_at(started - 3000)),
        "doctor --at before the fault"
    );

    // The HTML report in a headless Chromium: charts drawn, no console errors.
    if !have("chromium") {
        skip(
            test,
            "chromium is not installed (scripts/setup installs it): HTML not rendered",
        );
        return;
    }
    let html = dir.0.join("report.html");
    let out = output(
        netsight(),
        &["report", "--db", &db_s, "--html", html.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    // Self-contained: no reference to anything outside the file (the SVG namespace is a name).
    let without_ns = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for external in ["http://", "https://", "src=", "href=", "@import", "url("] {
        assert!(
            !without_ns.contains(external),
            "an external reference {external:?}"
        );
    }
    let shot = dir.0.join("shot.png");
    let profile = dir.0.join("chromium-profile");
    let browser = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1000,1500",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&browser.stderr);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console
            .iter()
            .any(|l| l.contains("netsight report rendered: 5 charts")),
        "the page's own console line (proves console capture works): {log}"
    );
    for l in &console {
        assert!(
            l.contains("netsight report rendered"),
            "a console message: {l}"
        );
    }
    for bad in [
        "Uncaught",
        "Refused to",
        "Failed to load",
        "Not allowed to load",
    ] {
        assert!(!log.contains(bad), "{bad} in Chromium's log: {log}");
    }
    let pixels = decode_png(&shot);
    let count = |hex: &str| -> usize {
        let want = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
        let rgb = [(want >> 16) as u8, (want >> 8) as u8, want as u8];
        pixels
            .iter()
            .filter(|p| p.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 6))
            .count()
    };
    // The plot areas are there (by their fill) and each chart shows a series' stroke.
    assert!(
        count("#f4f6fa") > 100_000,
        "plot backgrounds in the screenshot"
    );
    for (chart, colours) in [
        ("throughput", &["#1f77b4", "#ff7f0e"][..]),
        ("packet rate", &["#2ca02c", "#d62728"][..]),
        ("retransmissions", &["#9467bd"][..]),
        (
            "drops",
            &[
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79",
            ][..],
        ),
        ("findings timeline", &["#ef8f00", "#c62828"][..]),
    ] {
        let drawn: usize = colours.iter().map(|c| count(c)).sum();
        assert!(
            drawn > 50,
            "the {chart} chart drew {drawn} pixels of its colours"
        );
    }
}

/// RGB pixels of a PNG screenshot.
fn decode_png(path: &Path) -> Vec<[u8; 3]> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("screenshot colour type {other:?}"),
    };
    buf[..info.buffer_size()]
        .chunks(step)
        .map(|p| [p[0], p[1], p[2]])
        .collect()
}

#[test]
fn kill_9_mid_recording_leaves_a_sound_file_that_recording_continues() {
    let test = "kill_9_mid_recording_leaves_a_sound_file_that_recording_continues";
    if !have("sqlite3") {
        skip(test, "sqlite3 is not installed (scripts/setup installs it)");
        return;
    }
    let dir = TempDir::new("kill9");
    let db = dir.0.join("h.db");
    let db_s = db.to_str().unwrap();
    let mut last_id = 0i64;
    // Killed at different points: after 3, 4 and 5 samples, and at different
    // moments within the interval.
    for (round, (samples, offset_ms)) in [(3, 0u64), (4, 37), (5, 71)].into_iter().enumerate() {
        let mut rec = Recorder::start(&[], &["--db", db_s, "--interval", "100ms"]);
        let mut seen = Vec::new();
        for _ in 0..samples {
            seen.push(rec.next().expect("a sample")["sample"].as_i64().unwrap());
        }
        std::thread::sleep(Duration::from_millis(offset_ms));
        let _ = Command::new("kill")
            .args(["-9", &rec.child.id().to_string()])
            .status();
        let _ = rec.child.wait();
        assert_eq!(sqlite(&db, "PRAGMA integrity_check"), "ok", "round {round}");
        let max: i64 = sqlite(&db, "SELECT max(id) FROM samples").parse().unwrap();
        // Every sample it reported is there; at most the one in flight is lost.
        assert!(
            max >= *seen.last().unwrap(),
            "reported {seen:?}, stored up to {max}"
        );
        assert!(max > last_id);
        last_id = max;
        let report = report_json(&db, &["TCP"]);
        assert!(report["samples"].as_u64().unwrap() >= 2);
    }
}

#[test]
fn every_namespace_is_recorded_under_its_label() {
    let test = "every_namespace_is_recorded_under_its_label";
    if !privileged(test, &["ip", "sqlite3"]) {
        return;
    }
    let pair = NetnsPair::new();
    let dir = TempDir::new("netns");
    let db = dir.0.join("h.db");
    let db_s = db.to_str().unwrap();
    let mut rec = Recorder::start(
        &[],
        &[
            "--db",
            db_s,
            "--interval",
            "300ms",
            "--count",
            "4",
            "--netns",
            "all",
        ],
    );
    let mut labels = std::collections::BTreeSet::new();
    // Once sampling, record keeps only what sampling and entering namespaces use.
    let first = rec.next().expect("a sample");
    labels.insert(first["netns"].as_str().unwrap().to_string());
    let status = std::fs::read_to_string(format!("/proc/{}/status", rec.child.id())).unwrap();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    let want: u64 = [2, 12, 13, 19, 21, 38, 39].iter().map(|b| 1u64 << b).sum();
    assert_eq!(
        cap_eff, want,
        "record's effective capabilities: {cap_eff:x}"
    );
    while let Some(line) = rec.next() {
        labels.insert(line["netns"].as_str().unwrap().to_string());
    }
    for want in ["host", pair.a.as_str(), pair.b.as_str()] {
        assert!(labels.contains(want), "{want} not among {labels:?}");
    }
    let stored = sqlite(&db, "SELECT group_concat(DISTINCT netns) FROM samples");
    assert!(
        stored.contains(&pair.a) && stored.contains(&pair.b),
        "{stored}"
    );
    // A namespace's own tables: its veth, not the host's interfaces.
    let report = report_json(&db, &["--netns", &pair.a, "DEV"]);
    let ifaces: Vec<&str> = report["intervals"][0]["DEV"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["IFACE"].as_str().or(r["iface"].as_str()).unwrap_or(""))
        .collect();
    assert!(ifaces.contains(&"va"), "{ifaces:?}");
    let started = Instant::now();
    let out = output(netsight(), &["report", "--db", db_s, "--netns", "nope"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&pair.a));
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn hostile_files_and_odd_flags_get_clear_errors() {
    let dir = TempDir::new("hostile");
    let junk = dir.0.join("junk.db");
    std::fs::write(&junk, vec![0x55u8; 8192]).unwrap();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec!["report".into(), "--db".into(), junk.display().to_string()],
            3,
            "junk.db",
        ),
        (
            vec!["report".into(), "--db".into(), "/nonexistent/h.db".into()],
            3,
            "/nonexistent/h.db",
        ),
        (
            vec![
                "report".into(),
                "--db".into(),
                junk.display().to_string(),
                "--since".into(),
                "yesterday".into(),
            ],
            64,
            "not a time",
        ),
        (
            vec![
                "report".into(),
                "--db".into(),
                junk.display().to_string(),
                "--baseline".into(),
                "-1h..-2h".into(),
            ],
            64,
            "START must be before END",
        ),
        (
            vec![
                "record".into(),
                "--db".into(),
                "/tmp/x.db".into(),
                "--max-size".into(),
                "0".into(),
            ],
            64,
            "between 1M",
        ),
        (
            vec![
                "record".into(),
                "--db".into(),
                "/tmp/netsight-history-test.db".into(),
                "--count".into(),
                "1".into(),
            ],
            3,
            "writable by group or others",
        ),
        (
            vec![
                "record".into(),
                "--db".into(),
                dir.0.join("a.db").display().to_string(),
                "--rollup-after".into(),
                "8d".into(),
            ],
            64,
            "--rollup-after",
        ),
        (
            vec!["doctor".into(), "--db".into(), junk.display().to_string()],
            64,
            "--at",
        ),
        (
            vec!["doctor".into(), "--at".into(), "03:00".into()],
            64,
            "--db",
        ),
    ];
    for (args, code, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = output(netsight(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
