//! netsight: the binary is wiring only: clap arguments → library call → renderer.

mod cli;
mod doctor_text;
mod exit;
mod interrupt;
mod packet_cmd;
mod sockets_view;
mod stat_report;
mod stat_text;
mod trace_cmd;
mod tune_cmd;

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Parser;
use netsight_kernel::{bundle, delta, LiveSource, RawSnapshot, Snapshot};

use cli::{Cli, Command, DoctorArgs, ExplainArgs, LabCommand, SnapshotArgs, SocketsArgs, StatArgs};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and succeed; anything else is a usage error.
            let _ = e.print();
            return exit::code(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    tune_cmd::revert_expired_apply();
    if let Command::Doctor(args) = &cli.command {
        // Exit status carries the worst severity.
        return match run_doctor(args) {
            Ok(code) => code,
            Err(e) => failure(&e),
        };
    }
    let result = match cli.command {
        Command::Doctor(_) => Ok(()),
        Command::Snapshot(args) => run_snapshot(&args),
        Command::Stat(args) => run_stat(&args),
        Command::Sockets(args) => run_sockets(&args),
        Command::Explain(args) => run_explain(&args),
        Command::Lab(cmd) => run_lab(&cmd),
        Command::Trace(cmd) => trace_cmd::run(&cmd),
        Command::Tune(cmd) => tune_cmd::run(&cmd),
        Command::Analyze(args) => packet_cmd::run_analyze(&args),
        Command::Capture(args) => packet_cmd::run_capture(&args),
    };
    match result {
        Ok(()) => exit::code(exit::OK),
        Err(e) => failure(&e),
    }
}

/// Prints the error once and picks the exit status for it.
fn failure(e: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(e) {
        return exit::code(exit::OK);
    }
    eprintln!("netsight: {}", error_text(e));
    if e.downcast_ref::<exit::DamagedInput>().is_some() {
        exit::code(exit::DAMAGED_INPUT)
    } else if e.downcast_ref::<exit::Usage>().is_some() {
        exit::code(exit::USAGE)
    } else {
        exit::code(exit::FAILED)
    }
}

/// The error and its causes, each said once: library errors often include their
/// source in their own message, and anyhow's chain would repeat it.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if text.contains(&c) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&c);
    }
    text
}

/// A closed pipe (`netsight ... | head`) is a normal way to stop reading.
/// serde_json wraps the io::Error without exposing it as a source.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .map(io::Error::kind)
            .or_else(|| c.downcast_ref::<serde_json::Error>()?.io_error_kind())
            == Some(io::ErrorKind::BrokenPipe)
    })
}

fn read_bundle(path: &Path) -> Result<Vec<RawSnapshot>> {
    let read = bundle::read_bundle(path)?;
    if let Some(why) = &read.truncated {
        eprintln!("netsight: warning: {}: {why}", path.display());
    }
    if read.snapshots.is_empty() {
        bail!("bundle {} holds no snapshots", path.display());
    }
    Ok(read.snapshots)
}

fn run_snapshot(args: &SnapshotArgs) -> Result<()> {
    if let Some(path) = &args.output {
        let count = args
            .count
            .unwrap_or(if args.interval.is_some() { 2 } else { 1 });
        let interval = args.interval.unwrap_or(Duration::from_secs(1));
        let source = LiveSource {
            include_sockets: args.sockets,
            ..LiveSource::default()
        };
        // Each snapshot is on disk as soon as it is taken; a stop ends the file cleanly.
        interrupt::install();
        let mut writer = bundle::BundleWriter::create(path)?;
        let mut missing = 0;
        // A fixed cadence: writing a snapshot does not stretch the interval.
        let started = std::time::Instant::now();
        for i in 0..count {
            let due = started + interval * i;
            if i > 0 && !interrupt::sleep(due.saturating_duration_since(std::time::Instant::now()))
            {
                break;
            }
            let raw = source.collect();
            if i == 0 {
                missing = raw.missing.len();
            }
            writer.append(&raw)?;
            if count > 1 {
                eprint!("\rnetsight: {}/{count} snapshots written", i + 1);
            }
        }
        let written = writer.written();
        writer.finish()?;
        if count > 1 {
            eprintln!();
        }
        eprintln!(
            "netsight: wrote {written} snapshot(s) to {}{} ({missing} sources unavailable; see `netsight snapshot --from {} --json`)",
            path.display(),
            if interrupt::requested() { ", stopped early" } else { "" },
            path.display()
        );
        return Ok(());
    }

    let snapshots: Vec<Snapshot> = match &args.from {
        Some(path) => read_bundle(path)?.iter().map(Snapshot::from_raw).collect(),
        None if args.sockets => vec![Snapshot::take_with_sockets(true)],
        None => vec![Snapshot::take()],
    };
    let mut out = io::stdout().lock();
    if args.json {
        // One snapshot prints as an object; several (from a bundle) as an array.
        if let [one] = snapshots.as_slice() {
            serde_json::to_writer_pretty(&mut out, one)?;
        } else {
            serde_json::to_writer_pretty(&mut out, &snapshots)?;
        }
        writeln!(out)?;
    } else {
        for s in &snapshots {
            write!(out, "{}", summary_text(s))?;
        }
    }
    Ok(())
}

fn summary_text(s: &Snapshot) -> String {
    let mut t = format!(
        "host {}  kernel {}  taken at {} ms\n",
        s.meta.hostname.as_deref().unwrap_or("?"),
        s.meta.kernel_release.as_deref().unwrap_or("?"),
        s.meta.taken_at_unix_ms
    );
    let counters: usize = s.mib.values().map(|g| g.len()).sum();
    t += &format!(
        "{} MIB counters in {} groups, {} sysctls, {} CPUs in softnet_stat, {} qdiscs\n",
        counters,
        s.mib.len(),
        s.sysctls.len(),
        s.softnet.len(),
        s.qdiscs.len()
    );
    for l in &s.links {
        let driver = match &l.driver_stats {
            netsight_kernel::Support::Available(m) => format!("{} driver stats", m.len()),
            netsight_kernel::Support::NotSupported => "no driver stats".into(),
            netsight_kernel::Support::Unavailable(_) => "driver stats unavailable".into(),
        };
        t += &format!(
            "  {:<12} {:<8} mtu {:<6} speed {:<8} rx {} B / {} pkts  tx {} B / {} pkts  {}\n",
            l.name,
            l.operstate.as_deref().unwrap_or("?"),
            l.mtu.map(|m| m.to_string()).unwrap_or_else(|| "?".into()),
            l.speed_mbps
                .map(|m| format!("{m}Mb/s"))
                .unwrap_or_else(|| "-".into()),
            l.stats.rx_bytes,
            l.stats.rx_packets,
            l.stats.tx_bytes,
            l.stats.tx_packets,
            driver
        );
    }
    if !s.unavailable.is_empty() {
        t += &format!("{} sources unavailable:\n", s.unavailable.len());
        for (k, why) in &s.unavailable {
            t += &format!("  {k}: {why}\n");
        }
    }
    t
}

fn run_stat(args: &StatArgs) -> Result<()> {
    let stat_report::StatRequest {
        keywords,
        interval,
        count,
    } = stat_report::parse_args(&args.args).map_err(exit::Usage)?;
    if args.from.is_some() && (interval.is_some() || count.is_some()) {
        return Err(exit::Usage(
            "INTERVAL and COUNT do not apply with --from: a bundle's intervals are the ones it was recorded with".into(),
        )
        .into());
    }
    let mut out = io::stdout().lock();
    let mut reports = Vec::new();
    let emit = |report: &stat_report::StatReport, out: &mut io::StdoutLock| -> Result<()> {
        if args.json {
            serde_json::to_writer(&mut *out, report)?;
            writeln!(out)?;
        } else {
            let label = report
                .timestamp_unix_ms
                .map(clock_label)
                .unwrap_or_else(|| "Average:".into());
            write!(out, "{}", stat_text::render(report, &label))?;
        }
        out.flush()?;
        Ok(())
    };

    let snapshots_from_bundle = match &args.from {
        Some(path) => {
            let snaps: Vec<Snapshot> = read_bundle(path)?.iter().map(Snapshot::from_raw).collect();
            if snaps.len() < 2 {
                bail!(
                    "bundle {} holds one snapshot; stat needs two (take it with `netsight snapshot -o FILE --interval SECONDS`)",
                    path.display()
                );
            }
            Some(snaps)
        }
        None => None,
    };

    // Snapshots come from the bundle, or live: one now, then one per interval.
    let mut snapshots: Box<dyn Iterator<Item = Snapshot>> = match snapshots_from_bundle {
        Some(snaps) => Box::new(snaps.into_iter()),
        None => {
            // Like sar: an INTERVAL without COUNT runs until interrupted; neither means one report.
            // Ctrl-C, SIGTERM or SIGHUP end it like sar: the Average line still prints.
            let count = count.or(if interval.is_some() { None } else { Some(1) });
            let interval = interval.unwrap_or(Duration::from_secs(1));
            interrupt::install();
            Box::new((0..=count.unwrap_or(u64::MAX)).map_while(move |i| {
                if i > 0 && !interrupt::sleep(interval) {
                    return None;
                }
                Some(Snapshot::take())
            }))
        }
    };
    let Some(first) = snapshots.next() else {
        bail!("no snapshot to start from");
    };
    let mut prev = first.clone();
    for cur in snapshots {
        let rates = delta(&prev, &cur);
        let timestamp = Some(cur.meta.taken_at_unix_ms);
        if let Some(missing) = args.iface.iter().find(|i| cur.link(i).is_none()) {
            return Err(exit::Usage(format!(
                "--iface {missing}: no such interface here (ip -br link lists them)"
            ))
            .into());
        }
        let report = stat_report::build(
            &keywords,
            &rates,
            &cur,
            args.per_cpu,
            &args.iface,
            timestamp,
        );
        emit(&report, &mut out)?;
        reports.push(report);
        prev = cur;
    }

    // sar prints an average when more than one interval was shown.
    if reports.len() > 1 {
        let rates = delta(&first, &prev);
        let mut average =
            stat_report::build(&keywords, &rates, &prev, args.per_cpu, &args.iface, None);
        average_gauges(&mut average, &reports);
        emit(&average, &mut out)?;
    }
    Ok(())
}

/// SOCK holds gauges: the average is the mean of the intervals, like sar's.
fn average_gauges(average: &mut stat_report::StatReport, reports: &[stat_report::StatReport]) {
    let socks: Vec<_> = reports.iter().filter_map(|r| r.sock.as_ref()).collect();
    if let (Some(avg), false) = (average.sock.as_mut(), socks.is_empty()) {
        let n = socks.len() as f64;
        avg.totsck = socks.iter().map(|s| s.totsck).sum::<f64>() / n;
        avg.tcpsck = socks.iter().map(|s| s.tcpsck).sum::<f64>() / n;
        avg.udpsck = socks.iter().map(|s| s.udpsck).sum::<f64>() / n;
        avg.rawsck = socks.iter().map(|s| s.rawsck).sum::<f64>() / n;
        avg.ip_frag = socks.iter().map(|s| s.ip_frag).sum::<f64>() / n;
        avg.tcp_tw = socks.iter().map(|s| s.tcp_tw).sum::<f64>() / n;
    }
    // SOCK6 holds gauges too.
    for row in average.counters.iter_mut().filter(|r| r.gauges) {
        let rows: Vec<_> = reports
            .iter()
            .filter_map(|r| r.counters.iter().find(|c| c.keyword == row.keyword))
            .collect();
        let n = rows.len().max(1) as f64;
        for (i, (_, value)) in row.values.iter_mut().enumerate() {
            *value = rows.iter().map(|r| r.values[i].1).sum::<f64>() / n;
        }
    }
}

fn clock_label(unix_ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms as i64)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "?".into())
}

fn run_sockets(args: &SocketsArgs) -> Result<()> {
    let filter = sockets_view::SocketFilter::from_args(args).map_err(exit::Usage)?;
    let (table, snapshot) = match &args.from {
        // The bundle's last snapshot: the most recent view of the sockets.
        Some(path) => {
            let Some(raw) = read_bundle(path)?.pop() else {
                bail!("bundle {} holds no snapshots", path.display());
            };
            let mut snapshot = Snapshot::from_raw(&raw);
            let Some(table) = snapshot.sockets.take() else {
                let reason = snapshot
                    .unavailable
                    .iter()
                    .find(|(k, _)| k.starts_with("netlink/sock_diag"))
                    .map(|(_, why)| why.clone())
                    .unwrap_or_else(|| "the bundle was taken without --sockets".into());
                bail!("no socket data: {reason}");
            };
            (table, Some(snapshot))
        }
        // Live: sockets decoded while the kernel dumps them; the counters a
        // summary needs are read only for a summary.
        None => {
            let (table, _) =
                netsight_kernel::sockets::live_table(Path::new("/proc"), !args.no_process)?;
            (table, None)
        }
    };
    let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    if args.summary {
        // The summary covers the filtered sockets (all of them without filters).
        let filtered = netsight_kernel::sockets::SocketTable {
            sockets: table
                .sockets
                .iter()
                .filter(|s| filter.matches(s))
                .cloned()
                .collect(),
            ..table.clone()
        };
        let snapshot = snapshot.unwrap_or_else(Snapshot::take);
        let summary = netsight_kernel::sockets::summary::summarize(
            &filtered,
            &snapshot.sockstat,
            &snapshot.sysctls,
        );
        if args.json {
            serde_json::to_writer_pretty(&mut out, &summary)?;
            writeln!(out)?;
        } else {
            sockets_view::write_summary(&mut out, &summary)?;
        }
    } else {
        let mut selected: Vec<_> = table.sockets.iter().filter(|s| filter.matches(s)).collect();
        if let Some(by) = args.sort {
            sockets_view::sort(&mut selected, by);
        }
        if let Some(n) = args.limit {
            selected.truncate(n);
        }
        if args.json {
            serde_json::to_writer(&mut out, &selected)?;
            writeln!(out)?;
        } else {
            sockets_view::write_table(&mut out, &selected)?;
        }
    }
    if !table.owners_complete && !args.no_process {
        eprintln!("netsight: some processes could not be read; owners are partial (run as root)");
    }
    out.flush()?;
    Ok(())
}

fn run_doctor(args: &DoctorArgs) -> Result<ExitCode> {
    let mut out = io::stdout().lock();
    if args.list_rules {
        let rules = netsight_doctor::rules::all();
        if args.json {
            let infos: Vec<_> = rules.iter().map(|r| r.info()).collect();
            serde_json::to_writer_pretty(&mut out, &infos)?;
            writeln!(out)?;
        } else {
            write!(out, "{}", doctor_text::render_rules(&rules))?;
        }
        return Ok(exit::code(exit::OK));
    }
    let mut deep_evidence = None;
    let (prev, cur) = match &args.from {
        Some(path) => {
            let raws = read_bundle(path)?;
            let (Some(first), Some(last)) = (raws.first(), raws.last()) else {
                bail!("bundle {} holds no snapshots", path.display());
            };
            if raws.len() < 2 {
                bail!(
                    "bundle {} holds one snapshot; doctor needs two (`netsight snapshot -o FILE --interval 5 --sockets`)",
                    path.display()
                );
            }
            (Snapshot::from_raw(first), Snapshot::from_raw(last))
        }
        None => {
            let interval = args.deep.unwrap_or(args.interval);
            let prev = Snapshot::take();
            // The readiness signal scripts and tests wait for (stderr, never stdout).
            eprintln!(
                "netsight doctor: first snapshot taken; the second follows in {:.1} s",
                interval.as_secs_f64()
            );
            match args.deep {
                Some(_) => deep_evidence = Some(trace_cmd::for_doctor(interval)),
                None => std::thread::sleep(interval),
            }
            // Only the second snapshot needs sockets: their state at the end is what counts.
            let cur = if args.no_sockets {
                Snapshot::take()
            } else {
                Snapshot::take_with_sockets(true)
            };
            (prev, cur)
        }
    };
    if let Some(why) = netsight_doctor::cannot_diagnose(&prev, &cur) {
        bail!("{why}");
    }
    let mut report = netsight_doctor::diagnose(&prev, &cur);
    if let Some(deep) = deep_evidence {
        for why in &deep.unavailable {
            report.skipped.push(netsight_doctor::Skipped {
                source: "--deep tracing".into(),
                reason: why.clone(),
            });
        }
        netsight_doctor::deep::attach(&mut report, deep);
    }
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        use std::io::IsTerminal;
        let style = doctor_text::Style {
            color: io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        };
        let header = format!(
            "netsight doctor: host {}, kernel {}, {:.1} s interval, {} rules",
            cur.meta.hostname.as_deref().unwrap_or("?"),
            cur.meta.kernel_release.as_deref().unwrap_or("?"),
            report.workload.interval_s,
            report.rules_run
        );
        write!(out, "{}", doctor_text::render(&report, &header, style))?;
    }
    out.flush()?;
    Ok(exit::code(match report.worst() {
        Some(netsight_doctor::Severity::Critical) => exit::CRITICAL,
        Some(netsight_doctor::Severity::Warning) => exit::WARNING,
        _ => exit::OK,
    }))
}

fn run_explain(args: &ExplainArgs) -> Result<()> {
    let e = netsight_doctor::explain::explain(&args.name)?;
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &e)?;
        writeln!(out)?;
        return Ok(());
    }
    let layer = format!("{:?}", e.layer).to_lowercase();
    writeln!(out, "{}  ({}, layer {layer})", e.name, e.kind)?;
    writeln!(out, "  meaning:  {}", e.meaning)?;
    let label = if e.kind == "sysctl" {
        "change:"
    } else {
        "rising:"
    };
    writeln!(out, "  {label:<9} {}", e.interpretation)?;
    if !e.related_rules.is_empty() {
        writeln!(
            out,
            "  rules:    {}   (netsight doctor --list-rules)",
            e.related_rules.join(", ")
        )?;
    }
    for fix in &e.fixes {
        writeln!(out, "  fix:      {fix}")?;
    }
    Ok(())
}

fn run_lab(cmd: &LabCommand) -> Result<()> {
    use netsight_lab::{run_scenario, topology, SCENARIOS};
    let mut out = io::stdout().lock();
    match cmd {
        LabCommand::Agent { args } => netsight_lab::agent::run(args)?,
        LabCommand::Down => {
            let removed = topology::down()?;
            writeln!(
                out,
                "cleaned up {} lab leftover(s){}",
                removed.len(),
                if removed.is_empty() {
                    String::new()
                } else {
                    format!(": {}", removed.join(" "))
                }
            )?;
        }
        LabCommand::List { json } => {
            if *json {
                serde_json::to_writer_pretty(&mut out, SCENARIOS)?;
                writeln!(out)?;
            } else {
                for s in SCENARIOS {
                    writeln!(
                        out,
                        "{:<22} expects {:<28} {}",
                        s.name, s.expected_rule, s.summary
                    )?;
                }
            }
        }
        LabCommand::Run {
            name,
            json,
            keep,
            fix,
            capture,
        } => {
            let scenarios: Vec<&netsight_lab::Scenario> = if name == "all" {
                SCENARIOS
                    .iter()
                    .filter(|s| !*fix || s.fix.is_some())
                    .collect()
            } else {
                vec![netsight_lab::find(name).map_err(|e| exit::Usage(e.to_string()))?]
            };
            // Ctrl-C, SIGTERM and SIGHUP leave no host sysctl changed and, unless
            // --keep, no namespace behind.
            let keep_namespaces = *keep;
            let _ = ctrlc::set_handler(move || {
                topology::restore_host_sysctls();
                topology::stop_background();
                if keep_namespaces {
                    eprintln!("netsight: interrupted; namespaces kept (--keep): `netsight lab down` removes them");
                } else {
                    topology::cleanup_live();
                }
                std::process::exit(130);
            });
            let exe = std::env::current_exe()?;
            let mut missed = 0;
            for s in scenarios {
                let tag = format!("{}-{}", s.name, std::process::id());
                if let Some(dir) = capture {
                    std::fs::create_dir_all(dir)?;
                }
                let result = run_scenario(s, &exe, &tag, *keep, *fix, capture.as_deref())?;
                missed += usize::from(!result.detected);
                missed += usize::from(result.packets.as_ref().is_some_and(|p| !p.detected));
                let unfixed = result
                    .fix
                    .as_ref()
                    .is_some_and(|f| !(f.fixed && f.improved));
                missed += usize::from(unfixed);
                if *json {
                    serde_json::to_writer(&mut out, &result)?;
                    writeln!(out)?;
                } else {
                    writeln!(
                        out,
                        "{:<22} {:<9} expected {:<28} top finding {:<28} ({:.1} s)",
                        result.name,
                        if result.detected {
                            "DETECTED"
                        } else {
                            "MISSED"
                        },
                        result.expected_rule,
                        result.top_finding.as_deref().unwrap_or("-"),
                        result.duration_s
                    )?;
                    if let Some(p) = &result.packets {
                        writeln!(
                            out,
                            "{:<22} {:<9} packets ({}): expected {:<19} diagnoses {}",
                            "",
                            if p.detected { "DIAGNOSED" } else { "MISSED" },
                            p.file.display(),
                            p.expected_diagnosis,
                            if p.diagnoses.is_empty() {
                                "-".to_string()
                            } else {
                                p.diagnoses.join(", ")
                            }
                        )?;
                    }
                    if let Some(f) = &result.fix {
                        writeln!(
                            out,
                            "{:<22} {:<9} after tune --profile {} in {:?}: {} {:.1} -> {:.1}",
                            "",
                            if f.fixed { "FIXED" } else { "NOT FIXED" },
                            f.profile,
                            f.applied_in,
                            f.metric,
                            f.before.unwrap_or(f64::NAN),
                            f.after.unwrap_or(f64::NAN)
                        )?;
                    }
                }
            }
            if missed > 0 {
                bail!("{missed} scenario(s) not detected (or, with --fix, not fixed)");
            }
        }
    }
    Ok(())
}
