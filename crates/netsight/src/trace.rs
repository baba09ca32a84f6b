//! `netsight trace`: wiring from the command line to netsight-trace, and the
//! text views of its typed events and summaries. JSON is the same structs.

use std::io::{self, Write};
use std::time::Duration;

use anyhow::Result;
use netsight_report::{DeepEvidence, KernelDrops};
use netsight_trace::{across_namespaces, EndpointFilter, NsCount};
use serde::Serialize;

use crate::cli::{TraceCommand, TraceOptions};

/// An event with the wall-clock time it was read (ms since the epoch).
#[derive(Serialize)]
struct Stamped<'a, T: Serialize> {
    time_unix_ms: u64,
    #[serde(flatten)]
    event: &'a T,
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Prints events as they come: one JSON object per line, or a timestamped text
/// line; the first write error is kept and ends the command afterwards.
struct EventPrinter<'o> {
    out: &'o mut dyn Write,
    json: bool,
    quiet: bool,
    failed: Option<io::Error>,
}

impl EventPrinter<'_> {
    fn print<T: Serialize>(&mut self, event: &T, line: impl FnOnce() -> String) {
        if self.quiet || self.failed.is_some() {
            return;
        }
        let time_unix_ms = now_unix_ms();
        let result = if self.json {
            serde_json::to_writer(
                &mut *self.out,
                &Stamped {
                    time_unix_ms,
                    event,
                },
            )
            .map_err(io::Error::from)
            .and_then(|()| writeln!(self.out))
        } else {
            writeln!(
                self.out,
                "{} {}",
                crate::clock::millis(time_unix_ms),
                line()
            )
        };
        if let Err(e) = result {
            self.failed = Some(e);
        }
    }
}

/// Rows with their namespace when more than one namespace is in them.
fn rows(out: &mut String, rows: &[NsCount]) {
    let several = rows.iter().any(|r| r.netns != rows[0].netns);
    for r in rows {
        if several {
            out.push_str(&format!(
                "  {:>8}  {}  [net:{}]\n",
                r.count, r.name, r.netns
            ));
        } else {
            out.push_str(&format!("  {:>8}  {}\n", r.count, r.name));
        }
    }
}

fn filter_of(common: &TraceOptions) -> EndpointFilter {
    EndpointFilter {
        port: common.port,
        addr: common.addr,
        pid: common.pid,
    }
}

pub fn run(cmd: &TraceCommand) -> Result<()> {
    let (TraceCommand::Drops { common }
    | TraceCommand::Retrans { common }
    | TraceCommand::Life { common }
    | TraceCommand::States { common }
    | TraceCommand::Connect { common }
    | TraceCommand::Accept { common }
    | TraceCommand::Rtt { common }
    | TraceCommand::Synbl { common }) = cmd;
    let no_process = match cmd {
        TraceCommand::Drops { .. } => Some("drops happen in softirq context"),
        TraceCommand::Retrans { .. } => Some("retransmissions are sent from timers and softirq"),
        TraceCommand::Rtt { .. } => Some("RTT samples are taken in softirq"),
        TraceCommand::Synbl { .. } => Some("listen queues are sampled per listener"),
        _ => None,
    };
    if let (Some(why), Some(_)) = (no_process, common.pid) {
        return Err(crate::exit::Usage(format!(
            "--pid does not apply: {why}, with no process to match; filter with --port or --addr"
        ))
        .into());
    }
    let filter = filter_of(common);
    // Ctrl-C, SIGTERM and SIGHUP end the trace early: the summary still prints and
    // the programs are detached when their owners drop.
    let _ = ctrlc::set_handler(netsight_trace::request_stop);
    netsight_trace::on_attached(|what| eprintln!("netsight: attached to {what}; tracing"));
    // No --duration: until Ctrl-C (or SIGTERM/SIGHUP), as tcpdump and bpftrace do.
    let duration = common.duration.unwrap_or_else(|| {
        eprintln!("netsight: tracing until Ctrl-C (or --duration)");
        netsight_kernel::units::MAX_DURATION
    });
    let mut stdout = io::stdout().lock();
    let mut events = EventPrinter {
        out: &mut stdout,
        json: common.json,
        quiet: common.quiet,
        failed: None,
    };
    let (summary, text, lost): (serde_json::Value, String, u64) = match cmd {
        TraceCommand::Drops { .. } => {
            let quiet = common.quiet;
            let mut print = |e: &netsight_trace::drops::DropEvent| {
                events.print(e, || {
                    let flow = match (e.src_addr, e.dst_addr) {
                        (Some(s), Some(d)) => format!(
                            "{} {s}:{} -> {d}:{}",
                            e.ip_protocol.as_deref().unwrap_or("?"),
                            e.src_port,
                            e.dst_port
                        ),
                        _ => String::new(),
                    };
                    format!(
                        "{:<28} {:<6} {:<32} {flow}",
                        e.reason, e.protocol, e.location
                    )
                })
            };
            // --quiet prints no events: none are built.
            let on_event: Option<&mut dyn FnMut(&netsight_trace::drops::DropEvent)> =
                if quiet { None } else { Some(&mut print) };
            let s = netsight_trace::drops::trace(duration, &filter, on_event)?;
            let mut text = format!("\n{} drops in {:.1} s\n", s.total, s.duration_s);
            rows(&mut text, &s.by_reason);
            if !s.by_location.is_empty() {
                text += "dropped in:\n";
                rows(&mut text, &s.by_location);
            }
            (serde_json::to_value(&s)?, text, s.lost_events)
        }
        TraceCommand::Life { .. } => {
            let s = netsight_trace::sockstate::trace_life(duration, &filter, |l| {
                events.print(l, || {
                    format!(
                        "{:<7} {:<15} {}:{} -> {}:{}  tx {} B  rx {} B  {:.2} ms  {}",
                        l.pid,
                        l.comm,
                        l.local_addr,
                        l.local_port,
                        l.remote_addr,
                        l.remote_port,
                        l.tx_bytes,
                        l.rx_bytes,
                        l.duration_ms,
                        l.opened
                    )
                })
            })?;
            let text = format!(
                "\n{} connections ended in {:.1} s: tx {} B, rx {} B\n",
                s.connections, s.duration_s, s.tx_bytes, s.rx_bytes
            );
            (serde_json::to_value(&s)?, text, s.lost_events)
        }
        TraceCommand::States { .. } => {
            let s = netsight_trace::sockstate::trace_states(duration, &filter, |c| {
                events.print(c, || {
                    let took = c
                        .in_old_state_ms
                        .map(|ms| format!("{ms:.3} ms"))
                        .unwrap_or_else(|| "-".into());
                    format!(
                        "{}:{} -> {}:{}  {:<11} -> {:<11} after {took}  {}/{}",
                        c.local_addr,
                        c.local_port,
                        c.remote_addr,
                        c.remote_port,
                        c.old_state,
                        c.new_state,
                        c.comm,
                        c.pid
                    )
                })
            })?;
            let mut text = format!("\n{} state changes in {:.1} s\n", s.changes, s.duration_s);
            rows(&mut text, &s.transitions);
            (serde_json::to_value(&s)?, text, s.lost_events)
        }
        TraceCommand::Connect { .. } | TraceCommand::Accept { .. } => {
            use netsight_trace::sockstate::{trace_handshakes, Side};
            let side = if matches!(cmd, TraceCommand::Connect { .. }) {
                Side::Connect
            } else {
                Side::Accept
            };
            let s = trace_handshakes(side, duration, &filter, |h| {
                events.print(h, || {
                    format!(
                        "{:<7} {:<15} {}:{} -> {}:{}  {}",
                        h.pid,
                        h.comm,
                        h.local_addr,
                        h.local_port,
                        h.remote_addr,
                        h.remote_port,
                        match (h.established, h.latency_ms) {
                            (true, Some(ms)) => format!("established in {ms:.3} ms"),
                            (true, None) => "established".into(),
                            (false, _) => "FAILED".into(),
                        }
                    )
                })
            })?;
            let ms = |v: Option<f64>| {
                v.map(|v| format!("{v:.3} ms"))
                    .unwrap_or_else(|| "-".into())
            };
            let text = format!(
                "\n{} established, {} failed in {:.1} s; latency p50 {} p99 {} max {}\n",
                s.established,
                s.failed,
                s.duration_s,
                ms(s.p50_ms),
                ms(s.p99_ms),
                ms(s.max_ms)
            );
            (serde_json::to_value(&s)?, text, s.lost_events)
        }
        TraceCommand::Synbl { .. } => {
            let mut s = netsight_trace::synbl::trace(duration)?;
            let any = std::net::IpAddr::from([0, 0, 0, 0]);
            s.listeners
                .retain(|l| filter.matches((l.local_addr, l.local_port), (any, 0), None));
            let mut text = format!(
                "accept queues sampled every {} ms for {:.1} s\n",
                s.sample_interval_ms, s.duration_s
            );
            for l in &s.listeners {
                text += &format!(
                    "\n{}:{}  backlog {}  max queued {}  full in {} of {} samples  max SYN-RECV {}\n",
                    l.local_addr, l.local_port, l.backlog, l.max_queued, l.full_samples, l.samples, l.max_syn_recv
                );
                for (low, high, n) in &l.histogram {
                    text += &format!("  queued [{low:>6}, {high:>6}) {n:>7} samples\n");
                }
            }
            (serde_json::to_value(&s)?, text, 0)
        }
        TraceCommand::Rtt { .. } => {
            let s = netsight_trace::rtt::trace(duration, &filter)?;
            let mut text = format!("smoothed RTT per peer over {:.1} s\n", s.duration_s);
            for p in &s.peers {
                text += &format!(
                    "\n{}  [net:{}] ({} samples, median in [{}, {}) us)\n",
                    p.peer, p.netns, p.samples, p.p50_bucket_us.0, p.p50_bucket_us.1
                );
                let widest = p.buckets.iter().map(|b| b.count).max().unwrap_or(1).max(1);
                for b in &p.buckets {
                    let bar = "@".repeat(((b.count * 40).div_ceil(widest)) as usize);
                    text += &format!(
                        "  [{:>8}, {:>8}) us {:>9} |{bar:<40}|\n",
                        b.low_us, b.high_us, b.count
                    );
                }
            }
            (serde_json::to_value(&s)?, text, s.lost_events)
        }
        TraceCommand::Retrans { .. } => {
            let s = netsight_trace::retrans::trace(duration, &filter, |e| {
                events.print(e, || {
                    format!(
                        "{:<6} {:<11} {}:{} -> {}:{}  cwnd {} srtt {:.2} ms{}",
                        e.kind,
                        e.state,
                        e.local_addr,
                        e.local_port,
                        e.remote_addr,
                        e.remote_port,
                        e.snd_cwnd,
                        f64::from(e.srtt_us) / 1000.0,
                        if e.err != 0 {
                            format!("  (failed: errno {})", -e.err)
                        } else {
                            String::new()
                        }
                    )
                })
            })?;
            let mut text = format!(
                "\n{} retransmissions sent ({} segments), {} failed, in {:.1} s\n",
                s.sent, s.sent_segments, s.failed, s.duration_s
            );
            rows(&mut text, &s.by_kind);
            if !s.top_flows.is_empty() {
                text += "top connections:\n";
                rows(&mut text, &s.top_flows);
            }
            (serde_json::to_value(&s)?, text, s.lost_events)
        }
    };
    if let Some(e) = events.failed {
        return Err(e.into());
    }
    if lost > 0 {
        eprintln!("netsight: {lost} events lost: the ring buffer was full (the counts above are short by that much)");
    }
    if common.json {
        serde_json::to_writer(&mut stdout, &serde_json::json!({ "summary": summary }))?;
        writeln!(stdout)?;
    } else {
        write!(stdout, "{text}")?;
    }
    Ok(())
}

/// What doctor's tracers gathered during its interval.
pub struct DoctorTracing {
    /// Drops counted in the kernel, or why they could not be (None: not asked).
    pub drops: Option<Result<KernelDrops, String>>,
    /// `--deep`: retransmitting flows.
    pub deep: Option<DeepEvidence>,
}

/// Spends doctor's interval: counting drops in the kernel (unless `count_drops`
/// is off) and, with `deep`, tracing retransmissions. `before_interval` runs once
/// the drop counter is attached; a tracer that fails at once does not shorten
/// the interval.
pub fn for_doctor(
    duration: Duration,
    count_drops: bool,
    deep: bool,
    before_interval: impl FnOnce(),
) -> DoctorTracing {
    // The interval starts once the drop counter is attached (or could not be):
    // `before_interval` runs then, and the interval is timed from after it.
    let mut before = Some(before_interval);
    let mut started = None;
    let mut begin = || {
        if let Some(f) = before.take() {
            f();
        }
        *started.get_or_insert_with(std::time::Instant::now)
    };
    netsight_trace::on_attached(|what| eprintln!("netsight doctor: attached to {what}; tracing"));
    let retrans = deep.then(|| {
        std::thread::spawn(move || {
            netsight_trace::retrans::trace(duration, &EndpointFilter::default(), |_| {})
        })
    });
    let wait = |d: Duration| {
        begin();
        crate::term::wait(d, "netsight doctor: taking the second snapshot");
    };
    let drops = count_drops
        .then(|| netsight_trace::drops::count(duration, wait).map_err(|e| e.to_string()));
    let started = begin();
    let deep = retrans.map(|handle| {
        let mut deep = DeepEvidence {
            seconds: duration.as_secs_f64(),
            ..Default::default()
        };
        match handle.join() {
            Ok(Ok(s)) => {
                deep.retrans_flows = across_namespaces(&s.top_flows);
                deep.retrans_kinds = across_namespaces(&s.by_kind);
                deep.lost_events += s.lost_events;
            }
            Ok(Err(e)) => deep.unavailable.push(format!("trace retrans: {e}")),
            Err(_) => deep
                .unavailable
                .push("trace retrans: tracer thread panicked".into()),
        }
        deep
    });
    crate::term::wait(
        duration.saturating_sub(started.elapsed()),
        "netsight doctor: taking the second snapshot",
    );
    DoctorTracing { drops, deep }
}
