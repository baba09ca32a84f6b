//! `netsight bench`: the server, and the stream, rr and crr clients
//! (netsight-bench), with text and JSON views.

use std::io::{self, Write};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use netsight_bench::{client, server, Latency, ServerOptions, ServerStats, SocketOptions};
use netsight_kernel::Snapshot;

use crate::cli::{BenchCommand, BenchTarget, SocketFlags};

fn socket_options(f: &SocketFlags) -> SocketOptions {
    SocketOptions {
        nodelay: f.nodelay,
        rcvbuf: f.rcvbuf.map(|n| n as usize),
        sndbuf: f.sndbuf.map(|n| n as usize),
        cc: f.cc.clone(),
        tos: f.tos,
        keepalive: f.keepalive,
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

/// What doctor saw on this host over the run: its findings (the cause of a low
/// result is often one of them) and the workload.
fn diagnosed(before: &Snapshot, after: &Snapshot) -> Option<netsight_report::Report> {
    netsight_doctor::cannot_diagnose(before, after)
        .is_none()
        .then(|| netsight_doctor::diagnose(before, after))
}

fn emit<T: serde::Serialize>(
    target: &BenchTarget,
    value: &T,
    mut text: String,
    host: Option<netsight_report::Report>,
) -> Result<()> {
    let mut out = io::stdout().lock();
    if target.json {
        let mut v = serde_json::to_value(value)?;
        if let (serde_json::Value::Object(map), Some(report)) = (&mut v, &host) {
            map.insert("findings".into(), serde_json::to_value(&report.findings)?);
            map.insert("workload".into(), serde_json::to_value(&report.workload)?);
        }
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
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

pub fn run(cmd: &BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Server {
            listen,
            max_sessions,
            socket,
        } => {
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
                },
                stats,
            );
            Ok(())
        }
        BenchCommand::Stream {
            target,
            parallel,
            reverse,
        } => {
            let before = Snapshot::take();
            let r = client::stream(
                target.to,
                *parallel as usize,
                target.duration,
                *reverse,
                &socket_options(&target.socket),
            )
            .with_context(|| format!("bench stream to {}", target.to))?;
            let host = diagnosed(&before, &Snapshot::take());
            let mut text = String::new();
            for (i, f) in r.streams.iter().enumerate() {
                text.push_str(&format!(
                    "stream {i}: {} received ({} bytes in {:.2} s)\n",
                    bits(f.receiver_bits_per_s),
                    f.receiver_bytes,
                    f.seconds
                ));
                if let Some(why) = &f.why {
                    text.push_str(&format!("  why: {}\n", why.summary));
                }
            }
            text.push_str(&format!(
                "total: {} received, {} sent{}\n",
                bits(r.receiver_bits_per_s),
                bits(r.sender_bits_per_s),
                if r.reverse { " (server sending)" } else { "" }
            ));
            emit(target, &r, text, host)
        }
        BenchCommand::Rr { target, size, rate } => {
            let before = Snapshot::take();
            let r = client::rr(
                target.to,
                *size,
                target.duration,
                *rate,
                &socket_options(&target.socket),
            )
            .with_context(|| format!("bench rr to {}", target.to))?;
            let host = diagnosed(&before, &Snapshot::take());
            let text = format!(
                "{} B request/response: {:.0} transactions/s\nlatency: {}\n",
                r.size_bytes,
                r.transactions_per_s,
                latency_line(&r.latency)
            );
            emit(target, &r, text, host)
        }
        BenchCommand::Udp { target, size, rate } => {
            let before = Snapshot::take();
            let r = client::udp(
                target.to,
                *size,
                target.duration,
                *rate,
                &socket_options(&target.socket),
            )
            .with_context(|| format!("bench udp to {}", target.to))?;
            let host = diagnosed(&before, &Snapshot::take());
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
        BenchCommand::Crr {
            target,
            size,
            parallel,
        } => {
            let before = Snapshot::take();
            let r = client::crr(
                target.to,
                *size,
                target.duration,
                *parallel as usize,
                &socket_options(&target.socket),
            )
            .with_context(|| format!("bench crr to {}", target.to))?;
            let host = diagnosed(&before, &Snapshot::take());
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
