//! `netsight snapshot`: take counters now, or record them into a bundle.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use netsight_kernel::{bundle, LiveSource, RawSnapshot, Snapshot};

use crate::cli::SnapshotArgs;
use crate::interrupt;

/// A bundle's snapshots; a truncated bundle is used up to its damage, with a warning.
pub fn read_bundle(path: &Path) -> Result<Vec<RawSnapshot>> {
    let read = bundle::read_bundle(path)?;
    if let Some(why) = &read.truncated {
        eprintln!("netsight: warning: {}: {why}", path.display());
    }
    if read.snapshots.is_empty() {
        bail!("bundle {} holds no snapshots", path.display());
    }
    Ok(read.snapshots)
}

pub fn run(args: &SnapshotArgs) -> Result<()> {
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
