//! Test support: privilege checks that skip loudly, and network namespaces whose
//! Drop removes them (and everything inside) even when a test fails.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output, Stdio};

use serde_json::Value;
use std::sync::atomic::{AtomicU32, Ordering};

// Each test binary uses a subset.
#[allow(unused_imports)]
pub use netsight_testkit::{have, is_root, privileged, skip};

/// Runs a command and returns stdout; panics with stderr on failure.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = output(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn output(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// Two namespaces joined by a veth pair: `a` (10.231.N.1/30 on `va`) and
/// `b` (10.231.N.2 on `vb`). IPv6 is off so no background ND/MLD traffic moves counters.
#[derive(Debug)]
pub struct NetnsPair {
    pub a: String,
    pub b: String,
    pub addr_a: String,
    pub addr_b: String,
}

impl NetnsPair {
    pub fn new() -> NetnsPair {
        let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}-{id}", std::process::id());
        let subnet = (std::process::id() as u32 * 7 + id) % 250;
        let pair = NetnsPair {
            a: format!("nst-a-{tag}"),
            b: format!("nst-b-{tag}"),
            addr_a: format!("10.231.{subnet}.1"),
            addr_b: format!("10.231.{subnet}.2"),
        };
        // From here on Drop cleans up whatever was created.
        run("ip", &["netns", "add", &pair.a]);
        run("ip", &["netns", "add", &pair.b]);
        for ns in [&pair.a, &pair.b] {
            pair.exec_ok(ns, "sysctl", &["-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            pair.exec_ok(
                ns,
                "sysctl",
                &["-qw", "net.ipv6.conf.default.disable_ipv6=1"],
            );
            pair.exec_ok(ns, "ip", &["link", "set", "lo", "up"]);
        }
        run(
            "ip",
            &[
                "-n", &pair.a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns",
                &pair.b,
            ],
        );
        pair.exec_ok(
            &pair.a,
            "ip",
            &["addr", "add", &format!("{}/30", pair.addr_a), "dev", "va"],
        );
        pair.exec_ok(
            &pair.b,
            "ip",
            &["addr", "add", &format!("{}/30", pair.addr_b), "dev", "vb"],
        );
        pair.exec_ok(&pair.a, "ip", &["link", "set", "va", "up"]);
        pair.exec_ok(&pair.b, "ip", &["link", "set", "vb", "up"]);
        pair
    }

    /// Starts a program inside namespace `ns` with stdout and stderr piped (collect them
    /// with `wait_with_output`).
    pub fn spawn(&self, ns: &str, program: &str, args: &[&str]) -> std::process::Child {
        Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} in {ns}: {e}"))
    }

    /// Runs a program inside namespace `ns`, returning its output.
    pub fn exec(&self, ns: &str, program: &str, args: &[&str]) -> Output {
        let mut full = vec!["netns", "exec", ns, program];
        full.extend_from_slice(args);
        output("ip", &full)
    }

    pub fn exec_ok(&self, ns: &str, program: &str, args: &[&str]) -> String {
        let out = self.exec(ns, program, args);
        assert!(
            out.status.success(),
            "in {ns}: {program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Pings from a to b every `interval_s` for `seconds`, in the background.
    pub fn ping_in_background(&self, interval_s: &str, seconds: &str) -> std::process::Child {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.a,
                "ping",
                "-q",
                "-i",
                interval_s,
                "-w",
                seconds,
                &self.addr_b,
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("ping")
    }

    /// A bounded burst of pings from a to b.
    pub fn ping(&self, count: u32, size: u32) {
        self.exec_ok(
            &self.a,
            "ping",
            &[
                "-q",
                "-c",
                &count.to_string(),
                "-i",
                "0.002",
                "-s",
                &size.to_string(),
                "-W",
                "1",
                &self.addr_b,
            ],
        );
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        // Deleting a namespace removes its veth end, qdiscs and sysctls with it.
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// The netsight binary under test.
pub fn netsight() -> &'static str {
    env!("CARGO_BIN_EXE_netsight")
}

/// A running conn_holder.py inside a namespace; killed on drop.
#[derive(Debug)]
pub struct ConnHolder {
    child: std::process::Child,
    pub pid: u32,
    pub ports: Vec<u16>,
}

impl ConnHolder {
    pub fn start(ns: &str, args: &[&str]) -> ConnHolder {
        use std::io::BufRead;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/conn_holder.py");
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", script])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("READY line");
        let mut f = line.split_whitespace();
        assert_eq!(f.next(), Some("READY"), "conn_holder said {line:?}");
        let pid = f.next().and_then(|p| p.parse().ok()).expect("pid");
        let ports = f.filter_map(|p| p.parse().ok()).collect();
        ConnHolder { child, pid, ports }
    }
}

impl Drop for ConnHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the child's stderr until every needle has shown up (its readiness
/// lines); the rest is drained on a thread so the child never blocks.
pub fn wait_on_stderr(
    child: &mut std::process::Child,
    needles: &[&str],
) -> std::thread::JoinHandle<String> {
    wait_for_lines(child.stderr.take().expect("stderr"), needles)
}

/// The same for the child's stdout.
pub fn wait_on_stdout(
    child: &mut std::process::Child,
    needle: &str,
) -> std::thread::JoinHandle<String> {
    wait_for_lines(child.stdout.take().expect("stdout"), &[needle])
}

fn wait_for_lines(
    stream: impl std::io::Read + Send + 'static,
    needles: &[&str],
) -> std::thread::JoinHandle<String> {
    use std::io::BufRead as _;
    let mut reader = std::io::BufReader::new(stream);
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

/// Starts doctor in `ns` and waits until its interval has begun with drops being
/// counted; returns the child and its stderr's drain.
pub fn start_doctor(
    ns: &str,
    interval: &str,
) -> (std::process::Child, std::thread::JoinHandle<String>) {
    let mut child = Command::new("ip")
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
    let stderr = wait_on_stderr(
        &mut child,
        &["first snapshot taken", "attached to kfree_skb"],
    );
    (child, stderr)
}

/// The report of a doctor started by `start_doctor`, and its exit code.
pub fn finish_doctor(
    (child, stderr): (std::process::Child, std::thread::JoinHandle<String>),
) -> (i32, Value) {
    let out = child.wait_with_output().expect("doctor output");
    let _ = stderr.join();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor JSON: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), report)
}

/// Runs doctor in `ns` with `interval` seconds while `fault` runs; returns (exit code, report).
pub fn doctor_during(
    pair: &NetnsPair,
    ns: &str,
    interval: &str,
    fault: impl FnOnce(),
) -> (i32, Value) {
    let _ = pair;
    let doctor = start_doctor(ns, interval);
    fault();
    finish_doctor(doctor)
}

/// A finding of `rule`, on its own or grouped as a symptom under its cause.
pub fn finding<'a>(report: &'a Value, rule: &str) -> Option<&'a Value> {
    fn find_in<'a>(findings: &'a Value, rule: &str) -> Option<&'a Value> {
        findings.as_array()?.iter().find_map(|f| {
            if f["rule_id"] == rule {
                Some(f)
            } else {
                find_in(&f["symptoms"], rule)
            }
        })
    }
    find_in(&report["findings"], rule)
}

/// A child process killed (and reaped) when the test ends, passed or not.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
