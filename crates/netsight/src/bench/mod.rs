//! `netsight bench`: the server, and the stream, rr and crr clients
//! (netsight-bench), with text and JSON views.

use std::io::{self, Write};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use std::io::IsTerminal as _;

use netsight_bench::{
    client, server, Latency, Progress, ServerOptions, ServerStats, SocketOptions,
};
use netsight_kernel::Snapshot;

use crate::cli::{BenchArgs, BenchCommand, BenchTarget, SocketFlags};

mod topology;

fn socket_options(f: &SocketFlags) -> SocketOptions {
    SocketOptions {
        nodelay: f.nodelay,
        quickack: f.quickack,
        cork: f.cork,
        reuseport: f.reuseport,
        busy_poll_us: f.busy_poll,
        fastopen: f.fastopen,
        rcvbuf: f.rcvbuf.map(|n| n as usize),
        sndbuf: f.sndbuf.map(|n| n as usize),
        cc: f.cc.clone(),
        tos: f.tos,
        keepalive: f.keepalive,
    }
}

/// With --fastopen, says on stderr when net.ipv4.tcp_fastopen does not enable
/// this side (bit 1 client, bit 2 server): the kernel then falls back to a
/// normal handshake without an error.
fn warn_fastopen(f: &SocketFlags, server: bool) {
    if !f.fastopen {
        return;
    }
    let (bit, side) = if server { (2, "server") } else { (1, "client") };
    let value = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_fastopen")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok());
    if let Some(v) = value.filter(|v| v & bit == 0) {
        eprintln!(
            "netsight bench: --fastopen: net.ipv4.tcp_fastopen = {v} does not enable the {side} side (bit {bit}); connections use a normal handshake (sysctl -w net.ipv4.tcp_fastopen={})",
            v | bit
        );
    }
}

fn bits(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2} Gbit/s", v / 1e9)
    } else {
        format!("{:.1} Mbit/s", v / 1e6)
    }
}

fn latency_line(l: &Latency) -> String {
    format!(
        "p50 {:.1} µs  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  ({} samples)",
        l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us, l.count
    )
}

/// Runs `f` with a reporter beside it: each second, a live line on a terminal
/// (stderr) or, with --json-stream, a JSON line on stdout. `bytes` modes report
/// bits per second, the others operations per second.
fn with_progress<T>(target: &BenchTarget, bytes: bool, f: impl FnOnce(&Progress) -> T) -> T {
    use std::sync::atomic::{AtomicBool, Ordering};
    warn_fastopen(&target.socket, false);
    let progress = Progress::default();
    let done = AtomicBool::new(false);
    let live = !target.json && !target.json_stream && io::stderr().is_terminal();
    if !live && !target.json_stream {
        return f(&progress);
    }
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let start = std::time::Instant::now();
            let (mut last_bytes, mut last_ops, mut second) = (0u64, 0u64, 1u32);
            while !done.load(Ordering::Relaxed) {
                let due = start + std::time::Duration::from_secs(u64::from(second));
                while std::time::Instant::now() < due && !done.load(Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                if done.load(Ordering::Relaxed) {
                    break;
                }
                let (b, o) = (
                    progress.bytes.load(Ordering::Relaxed),
                    progress.ops.load(Ordering::Relaxed),
                );
                let (db, dops) = (b - last_bytes, o - last_ops);
                (last_bytes, last_ops) = (b, o);
                if target.json_stream {
                    let line = if bytes {
                        serde_json::json!({"interval_end_s": second, "bits_per_s": db as f64 * 8.0})
                    } else {
                        serde_json::json!({"interval_end_s": second, "operations_per_s": dops})
                    };
                    let mut out = io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                } else if bytes {
                    eprint!("\r\x1b[K{second:>4} s  {}", bits(db as f64 * 8.0));
                } else {
                    eprint!("\r\x1b[K{second:>4} s  {dops} /s");
                }
                second += 1;
            }
            if live {
                eprint!("\r\x1b[K");
            }
        });
        let result = f(&progress);
        done.store(true, Ordering::Relaxed);
        result
    })
}

/// What happened around a run on both ends: the counters that moved on this
/// host and on the server (its report), and doctor's findings on this host
/// (the cause of a low result is often one of them) with the workload.
struct Around {
    before: Snapshot,
    run: u64,
    server_before: Option<netsight_bench::protocol::ServerReport>,
}

struct Observed {
    host: Option<netsight_report::Report>,
    client_counters: std::collections::BTreeMap<String, i64>,
    /// None when the server could not be asked (an older server, say).
    server_counters: Option<std::collections::BTreeMap<String, i64>>,
    /// The server's doctor over the run: its findings and workload.
    server_host: Option<serde_json::Value>,
    /// crr: the server's accept wait over the run.
    accept_wait: Option<netsight_bench::Latency>,
}

impl Around {
    fn begin(target: &BenchTarget) -> Around {
        use netsight_bench::protocol::Observe;
        let run = client::run_id();
        Around {
            server_before: client::observed_report(target.to, run, 0, Observe::Begin).ok(),
            run,
            before: Snapshot::take(),
        }
    }

    fn finish(self, target: &BenchTarget) -> Observed {
        use netsight_bench::protocol::Observe;
        use netsight_kernel::procfs::snmp::changed;
        let after = Snapshot::take();
        let server_after = self
            .server_before
            .as_ref()
            .and_then(|_| client::observed_report(target.to, self.run, 0, Observe::End).ok());
        let server_host = server_after.as_ref().and_then(|r| r.host.clone());
        let accept_wait = server_after.as_ref().and_then(|r| r.accept_wait.clone());
        Observed {
            host: netsight_doctor::cannot_diagnose(&self.before, &after)
                .is_none()
                .then(|| netsight_doctor::diagnose(&self.before, &after)),
            client_counters: changed(&self.before.mib, &after.mib),
            server_counters: self
                .server_before
                .zip(server_after)
                .map(|(b, a)| changed(&b.mib, &a.mib)),
            server_host,
            accept_wait,
        }
    }
}

/// The server's side of `Around`: a snapshot when a client's run begins, and
/// doctor over the run when it ends (at most MAX_OBSERVED runs at once).
#[derive(Debug, Default)]
struct DoctorObserver {
    runs: std::sync::Mutex<std::collections::BTreeMap<u64, Snapshot>>,
}

const MAX_OBSERVED: usize = 64;

impl netsight_bench::server::HostObserver for DoctorObserver {
    fn begin(&self, run: u64) {
        let snapshot = Snapshot::take();
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if runs.len() >= MAX_OBSERVED {
            runs.pop_first();
        }
        runs.insert(run, snapshot);
    }

    fn end(&self, run: u64) -> Option<serde_json::Value> {
        let before = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&run)?;
        let after = Snapshot::take();
        if netsight_doctor::cannot_diagnose(&before, &after).is_some() {
            return None;
        }
        let report = netsight_doctor::diagnose(&before, &after);
        Some(serde_json::json!({"findings": report.findings, "workload": report.workload}))
    }
}

/// Runs a client mode with its live line, between the observations of both ends.
fn measured<T>(
    target: &BenchTarget,
    bytes: bool,
    mode: &str,
    run: impl FnOnce(
        &SocketOptions,
        &Progress,
        u64,
    ) -> std::result::Result<T, netsight_bench::BenchError>,
) -> Result<(T, Observed)> {
    let around = Around::begin(target);
    let options = socket_options(&target.socket);
    let r = with_progress(target, bytes, |p| run(&options, p, around.run))
        .with_context(|| format!("bench {mode} to {}", target.to))?;
    Ok((r, around.finish(target)))
}

/// Counters worth a line when they moved: loss, drops and overflows, and
/// whether TCP Fast Open was used.
const NOTABLE_COUNTERS: &[&str] = &[
    "Tcp.RetransSegs",
    "Tcp.InErrs",
    "Tcp.OutRsts",
    "TcpExt.ListenOverflows",
    "TcpExt.ListenDrops",
    "TcpExt.TCPBacklogDrop",
    "TcpExt.TCPRcvQDrop",
    "TcpExt.TCPTimeWaitOverflow",
    "TcpExt.TCPFastOpenActive",
    "TcpExt.TCPFastOpenPassive",
    "TcpExt.TCPFastOpenPassiveFail",
    "Udp.RcvbufErrors",
    "Udp.SndbufErrors",
    "Udp.InErrors",
    "Udp.NoPorts",
];

fn notable(changes: &std::collections::BTreeMap<String, i64>) -> String {
    let moved: Vec<String> = NOTABLE_COUNTERS
        .iter()
        .filter_map(|k| {
            changes
                .get(*k)
                .filter(|v| **v > 0)
                .map(|v| format!("{k} +{v}"))
        })
        .collect();
    if moved.is_empty() {
        "no loss, drop or overflow counter moved".into()
    } else {
        moved.join(", ")
    }
}

fn emit<T: serde::Serialize>(
    target: &BenchTarget,
    value: &T,
    mut text: String,
    observed: Observed,
) -> Result<()> {
    let host = observed.host;
    let mut out = io::stdout().lock();
    if target.json || target.json_stream {
        let mut v = serde_json::to_value(value)?;
        if let serde_json::Value::Object(map) = &mut v {
            if let Some(report) = &host {
                map.insert("findings".into(), serde_json::to_value(&report.findings)?);
                map.insert("workload".into(), serde_json::to_value(&report.workload)?);
            }
            map.insert(
                "counters".into(),
                serde_json::json!({"client": observed.client_counters, "server": observed.server_counters}),
            );
            map.insert(
                "server".into(),
                observed.server_host.clone().unwrap_or_default(),
            );
            if let Some(wait) = &observed.accept_wait {
                map.insert("accept_wait_latency".into(), serde_json::to_value(wait)?);
            }
        }
        if target.json_stream {
            serde_json::to_writer(&mut out, &serde_json::json!({"result": v}))?;
        } else {
            serde_json::to_writer_pretty(&mut out, &v)?;
        }
        writeln!(out)?;
    } else {
        if let Some(wait) = &observed.accept_wait {
            text.push_str(&format!("accept wait (server): {}\n", latency_line(wait)));
        }
        text.push_str(&format!(
            "client counters: {}\n",
            notable(&observed.client_counters)
        ));
        match &observed.server_counters {
            Some(c) => text.push_str(&format!("server counters: {}\n", notable(c))),
            None => text.push_str("server counters: the server did not report them\n"),
        }
        let server_worth: Vec<String> = observed
            .server_host
            .as_ref()
            .and_then(|h| h["findings"].as_array())
            .into_iter()
            .flatten()
            .filter(|f| f["severity"] != "info")
            .map(|f| {
                format!(
                    "  [{}] {}  ({})\n",
                    f["severity"].as_str().unwrap_or(""),
                    f["title"].as_str().unwrap_or(""),
                    f["rule_id"].as_str().unwrap_or("")
                )
            })
            .collect();
        if !server_worth.is_empty() {
            text.push_str("doctor over the run (the server's host):\n");
            text.push_str(&server_worth.concat());
        }
        let worth: Vec<_> = host
            .iter()
            .flat_map(|r| &r.findings)
            .filter(|f| f.severity > netsight_report::Severity::Info)
            .collect();
        if !worth.is_empty() {
            text.push_str("doctor over the run (this host):\n");
            for f in worth {
                text.push_str(&format!(
                    "  [{}] {}{}  ({})\n",
                    f.severity.as_str(),
                    f.title,
                    f.subject
                        .as_ref()
                        .map(|s| format!(" [{s}]"))
                        .unwrap_or_default(),
                    f.rule_id
                ));
            }
        }
        write!(out, "{text}")?;
    }
    out.flush()?;
    Ok(())
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if let Some(kind) = &args.topology {
        return topology::run(args, kind);
    }
    match &args.command {
        BenchCommand::Server {
            listen,
            max_sessions,
            socket,
        } => {
            warn_fastopen(socket, true);
            let options = socket_options(socket);
            let listener = server::bind(*listen, &options)
                .map_err(|e| anyhow::anyhow!("listening on {listen}: {e}"))?;
            let addr = listener.local_addr()?;
            // The readiness line scripts and tests wait for.
            eprintln!("netsight bench server: listening on {addr}; Ctrl-C stops");
            let stats = Arc::new(ServerStats::default());
            server::serve(
                listener,
                ServerOptions {
                    max_sessions: *max_sessions as usize,
                    socket: options,
                    observer: Some(Arc::new(DoctorObserver::default())),
                },
                stats,
            );
            Ok(())
        }
        BenchCommand::Stream {
            target,
            parallel,
            reverse,
            bidir,
        } => {
            let direction = match (*reverse, *bidir) {
                (_, true) => client::Direction::Both,
                (true, false) => client::Direction::Receive,
                (false, false) => client::Direction::Send,
            };
            let (r, host) = measured(target, true, "stream", |options, p, _| {
                client::stream(
                    target.to,
                    *parallel as usize,
                    target.duration,
                    direction,
                    options,
                    p,
                )
            })?;
            let mut text = String::new();
            for (i, f) in r.streams.iter().enumerate() {
                text.push_str(&format!(
                    "stream {i} ({}): {} received ({} bytes in {:.2} s)\n",
                    if f.reverse {
                        "server sends"
                    } else {
                        "client sends"
                    },
                    bits(f.receiver_bits_per_s),
                    f.receiver_bytes,
                    f.seconds
                ));
                if let Some(why) = &f.why {
                    text.push_str(&format!("  why: {}\n", why.summary));
                }
            }
            text.push_str(&format!(
                "total: {} received, {} sent",
                bits(r.receiver_bits_per_s),
                bits(r.sender_bits_per_s),
            ));
            if direction == client::Direction::Both {
                text.push_str(&format!(
                    " (upload {}, download {})",
                    bits(r.upload_bits_per_s),
                    bits(r.download_bits_per_s)
                ));
            }
            text.push('\n');
            emit(target, &r, text, host)
        }
        BenchCommand::Rr {
            target,
            size,
            rate,
            writes,
        } => {
            let (r, host) = measured(target, false, "rr", |options, p, _| {
                client::rr(
                    target.to,
                    *size,
                    *writes,
                    target.duration,
                    *rate,
                    options,
                    p,
                )
            })?;
            let text = format!(
                "{} B request/response: {:.0} transactions/s\nlatency: {}\n",
                r.size_bytes,
                r.transactions_per_s,
                latency_line(&r.latency)
            );
            emit(target, &r, text, host)
        }
        BenchCommand::Ab {
            a,
            b,
            trials,
            warmup,
            json,
            mode,
        } => ab(a, b, *trials, *warmup, *json, mode),
        BenchCommand::Udp { target, size, rate } => {
            let (r, host) = measured(target, false, "udp", |options, p, _| {
                client::udp(target.to, *size, target.duration, *rate, options, p)
            })?;
            let text = format!(
                "{} B datagrams: {:.0} packets/s received ({}), {:.0}/s sent\nlost {} of {} ({:.3} %), {} reordered\n",
                r.size_bytes,
                r.packets_per_s,
                bits(r.receiver_bits_per_s),
                r.sender_packets_per_s,
                r.lost,
                r.sent,
                r.loss_percent,
                r.reordered
            );
            emit(target, &r, text, host)
        }
        BenchCommand::Rrul { target, parallel } => {
            let (r, host) = measured(target, true, "rrul", |options, p, _| {
                client::rrul(target.to, target.duration, *parallel as usize, options, p)
            })?;
            let mut text = format!(
                "latency under load ({} streams each way, a {:.0}/s probe):\n",
                r.streams, r.probe_rate_per_s
            );
            for p in &r.phases {
                text.push_str(&format!(
                    "  {:<14} p50 {:>9.1} µs  p99 {:>9.1} µs  bloat p50 +{:.1} µs  p99 +{:.1} µs  up {}  down {}\n",
                    p.phase,
                    p.latency.p50_us,
                    p.latency.p99_us,
                    p.bloat_p50_us,
                    p.bloat_p99_us,
                    bits(p.upload_bits_per_s),
                    bits(p.download_bits_per_s)
                ));
            }
            text.push_str(&format!(
                "grade: {} (worst median added latency {:.1} ms)\n",
                r.grade,
                r.worst_bloat_p50_us / 1000.0
            ));
            emit(target, &r, text, host)
        }
        BenchCommand::Crr {
            target,
            size,
            parallel,
        } => {
            let (r, host) = measured(target, false, "crr", |options, p, run| {
                client::crr(
                    target.to,
                    *size,
                    target.duration,
                    *parallel as usize,
                    run,
                    options,
                    p,
                )
            })?;
            if r.connections == 0 {
                anyhow::bail!(
                    "no connection to {} succeeded ({} errors): is `netsight bench server` running there?",
                    target.to,
                    r.errors
                );
            }
            let text = format!(
                "{:.0} connections/s ({} in {:.2} s, {} errors)\nconnect:     {}\ntransaction: {}\n",
                r.connections_per_s,
                r.connections,
                r.seconds,
                r.errors,
                latency_line(&r.connect_latency),
                latency_line(&r.transaction_latency)
            );
            emit(target, &r, text, host)
        }
    }
}

/// The number a mode is judged by: (JSON pointer, name, higher is better).
fn headline(mode: &str) -> Option<&'static [(&'static str, &'static str, bool)]> {
    Some(match mode {
        "stream" => &[("/receiver_bits_per_s", "receiver_bits_per_s", true)],
        "rr" => &[
            ("/latency/p50_us", "p50_us", false),
            ("/latency/p99_us", "p99_us", false),
        ],
        "crr" => &[("/connections_per_s", "connections_per_s", true)],
        "udp" => &[("/packets_per_s", "packets_per_s", true)],
        "rrul" => &[("/worst_bloat_p50_us", "worst_bloat_p50_us", false)],
        _ => return None,
    })
}

/// One trial: this binary, the mode with its flags and the side's, as JSON.
fn trial(mode: &[String], extra: &str) -> Result<serde_json::Value> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let out = std::process::Command::new(exe)
        .arg("bench")
        .args(mode)
        .args(extra.split_whitespace())
        .arg("--json")
        .output()
        .context("running a trial")?;
    if !out.status.success() {
        anyhow::bail!(
            "trial `bench {} {extra}` failed: {}",
            mode.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn ab(a: &str, b: &str, trials: u32, warmup: u32, json: bool, mode: &[String]) -> Result<()> {
    let name = mode.first().map(String::as_str).unwrap_or("");
    let Some(metrics) = headline(name) else {
        return Err(exit_usage(format!(
            "bench ab: the mode must be stream, rr, crr, udp or rrul, not {name:?}"
        )));
    };
    for flags in [a, b] {
        if flags.split_whitespace().any(|f| f == "--json" || f == "ab") {
            return Err(exit_usage(format!(
                "bench ab: {flags:?} cannot be a side's flags"
            )));
        }
    }
    let progress = std::io::IsTerminal::is_terminal(&io::stderr());
    for i in 0..warmup {
        if progress {
            eprint!("\r\x1b[Kwarm-up {}/{warmup}", i + 1);
        }
        trial(mode, a)?;
        trial(mode, b)?;
    }
    let mut values: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); metrics.len()];
    for i in 0..trials {
        if progress {
            eprint!("\r\x1b[Ktrial {}/{trials}", i + 1);
        }
        // Alternating, so a drift in the host affects both sides alike.
        let (ra, rb) = if i % 2 == 0 {
            let ra = trial(mode, a)?;
            (ra, trial(mode, b)?)
        } else {
            let rb = trial(mode, b)?;
            (trial(mode, a)?, rb)
        };
        for (k, (pointer, name, _)) in metrics.iter().enumerate() {
            let get = |r: &serde_json::Value| {
                r.pointer(pointer)
                    .and_then(serde_json::Value::as_f64)
                    .ok_or_else(|| anyhow::anyhow!("a trial's result has no {name}"))
            };
            values[k].0.push(get(&ra)?);
            values[k].1.push(get(&rb)?);
        }
    }
    if progress {
        eprintln!();
    }
    let compared: Vec<serde_json::Value> = metrics
        .iter()
        .zip(&values)
        .filter_map(|((_, name, higher_better), (va, vb))| {
            let c = netsight_bench::ab::compare(va, vb)?;
            let better = match (c.significant, (c.difference > 0.0) == *higher_better) {
                (false, _) => "neither (not significant)",
                (true, true) => "b",
                (true, false) => "a",
            };
            Some(serde_json::json!({
                "metric": name, "a": va, "b": vb, "comparison": c, "better": better,
            }))
        })
        .collect();
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({"mode": mode, "a_flags": a, "b_flags": b, "trials": trials, "warmup": warmup, "metrics": compared}),
        )?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "bench ab: {} — A {a:?} vs B {b:?}, {trials} trials each",
            mode.join(" ")
        )?;
        for m in &compared {
            let c = &m["comparison"];
            let f = |k: &str| c[k].as_f64().unwrap_or(0.0);
            writeln!(
                out,
                "  {:<20} A {:.2}  B {:.2}  B−A {:+.2} (95 % CI {:+.2} .. {:+.2}, {:+.1} %)  better: {}",
                m["metric"].as_str().unwrap_or(""),
                f("a_mean"),
                f("b_mean"),
                f("difference"),
                f("ci95_low"),
                f("ci95_high"),
                f("difference_percent"),
                m["better"].as_str().unwrap_or("")
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

fn exit_usage(message: String) -> anyhow::Error {
    crate::exit::Usage(message).into()
}
