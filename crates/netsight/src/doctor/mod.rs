//! `netsight doctor`: two snapshots (and, with --deep, the tracers between them)
//! → findings ranked by severity; the exit status carries the worst.

pub(crate) mod netns;
pub mod text;

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{bail, Result};
use netsight_kernel::Snapshot;
use netsight_report::{KernelDrops, Report, Severity, Skipped};

use crate::cli::DoctorArgs;
use crate::{exit, snapshot::read_bundle, trace};

pub fn run(args: &DoctorArgs) -> Result<ExitCode> {
    let mut out = io::stdout().lock();
    if args.list_rules {
        let rules = netsight_doctor::rules::all();
        if args.json {
            let infos: Vec<_> = rules.iter().map(|r| r.info()).collect();
            serde_json::to_writer_pretty(&mut out, &infos)?;
            writeln!(out)?;
        } else {
            write!(out, "{}", text::render_rules(&rules))?;
        }
        return Ok(exit::code(exit::OK));
    }
    if let (Some(which), None) = (&args.netns, &args.db) {
        return netns::run(args, which);
    }
    let mut deep_evidence = None;
    let mut kernel_drops = None;
    let (prev, cur) = match (&args.from, &args.db) {
        (_, Some(db)) => from_history(db, args)?,
        (Some(path), None) => {
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
        (None, None) => {
            let interval = args.deep.unwrap_or(args.interval);
            let prev = Snapshot::take();
            // The readiness signal scripts and tests wait for (stderr, never stdout).
            eprintln!(
                "netsight doctor: first snapshot taken; the second follows in {:.1} s",
                interval.as_secs_f64()
            );
            let traced = trace::for_doctor(interval, !args.no_trace, args.deep.is_some(), || {});
            kernel_drops = traced.drops;
            deep_evidence = traced.deep;
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
    if let Some(drops) = counted_drops(kernel_drops, &mut report.skipped) {
        netsight_doctor::drop_reasons::attach(
            &mut report,
            drops,
            netsight_kernel::netns::self_inode(),
        );
    }
    if let Some(deep) = deep_evidence {
        for why in &deep.unavailable {
            report.skipped.push(Skipped {
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
        let style = text::Style {
            color: crate::term::color_stdout(),
        };
        write!(
            out,
            "{}",
            text::render(&report, &header(&cur, &report), style)
        )?;
    }
    out.flush()?;
    Ok(exit_status(report.worst()))
}

/// The recorded samples `--window` before `--at` and at it (`doctor --db`).
fn from_history(db: &std::path::Path, args: &DoctorArgs) -> Result<(Snapshot, Snapshot)> {
    let history = netsight_history::History::open_for_reading(db)?;
    let netns = args.netns.as_deref().unwrap_or(crate::record::HOST);
    let at = args.at.unwrap_or(i64::MAX);
    let window = args.window.as_millis() as i64;
    let range = history.time_range()?;
    let describe = |t: i64| crate::clock::date_seconds(t.max(0) as u64);
    let recorded = range
        .map(|(a, b)| format!("recorded: {} .. {}", describe(a), describe(b)))
        .unwrap_or_else(|| "nothing recorded yet".into());
    let Some(cur) = history.sample_at(netns, at)? else {
        bail!(
            "{}: no sample of {netns} at or before {} ({recorded})",
            db.display(),
            describe(at)
        );
    };
    // The window's start: the last sample at or before it, else the first after it.
    let start = match history.sample_at(netns, at - window)? {
        Some(s) if s.id != cur.id => Some(s),
        _ => history
            .samples(netns, at - window, cur.taken_at_ms - 1)?
            .into_iter()
            .next(),
    };
    let Some(start) = start else {
        bail!(
            "{}: one sample of {netns} in the {:?} before {}; doctor needs two ({recorded})",
            db.display(),
            args.window,
            describe(at)
        );
    };
    eprintln!(
        "netsight doctor: from {}, {netns} {} .. {}",
        db.display(),
        describe(start.taken_at_ms),
        describe(cur.taken_at_ms)
    );
    let mut pair = Vec::with_capacity(2);
    history.replay(&[start, cur], netsight_history::Parts::All, |_, snap| {
        pair.push(snap);
        Ok(())
    })?;
    let (Some(cur), Some(prev)) = (pair.pop(), pair.pop()) else {
        bail!("{}: the samples could not be replayed", db.display());
    };
    Ok((prev, cur))
}

/// The kernel's drop counts; when they could not be taken, why goes to `skipped`.
fn counted_drops(
    counted: Option<std::result::Result<KernelDrops, String>>,
    skipped: &mut Vec<Skipped>,
) -> Option<KernelDrops> {
    match counted? {
        Ok(drops) => Some(drops),
        Err(why) => {
            skipped.push(Skipped {
                source: "drop reasons (kfree_skb, counted in the kernel)".into(),
                reason: format!("{why}; --no-trace skips this"),
            });
            None
        }
    }
}

/// The first line of a text report.
fn header(cur: &Snapshot, report: &Report) -> String {
    format!(
        "netsight doctor: host {}, kernel {}, {:.1} s interval, {} rules",
        cur.meta.hostname.as_deref().unwrap_or("?"),
        cur.meta.kernel_release.as_deref().unwrap_or("?"),
        report.workload.interval_s,
        report.rules_run
    )
}

/// The exit status carries the worst severity.
fn exit_status(worst: Option<Severity>) -> ExitCode {
    exit::code(match worst {
        Some(Severity::Critical) => exit::CRITICAL,
        Some(Severity::Warning) => exit::WARNING,
        _ => exit::OK,
    })
}
