//! `netsight doctor`: two snapshots (and, with --deep, the tracers between them)
//! → findings ranked by severity; the exit status carries the worst.

mod netns;
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
    if let Some(which) = &args.netns {
        return netns::run(args, which);
    }
    let mut deep_evidence = None;
    let mut kernel_drops = None;
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
