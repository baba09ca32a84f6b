//! `netsight stat`: sar-style rates per interval, live or from a bundle.

pub mod report;
pub mod text;

use std::io::{self, Write};
use std::time::Duration;

use anyhow::{bail, Result};
use netsight_kernel::{delta, Snapshot};

use crate::cli::StatArgs;
use crate::{clock, exit, interrupt, snapshot::read_bundle};

pub fn run(args: &StatArgs) -> Result<()> {
    let report::StatRequest {
        keywords,
        interval,
        count,
    } = report::parse_args(&args.args).map_err(exit::Usage)?;
    if args.from.is_some() && (interval.is_some() || count.is_some()) {
        return Err(exit::Usage(
            "INTERVAL and COUNT do not apply with --from: a bundle's intervals are the ones it was recorded with".into(),
        )
        .into());
    }
    let mut out = io::stdout().lock();
    let mut reports = Vec::new();
    let emit = |report: &report::StatReport, out: &mut io::StdoutLock| -> Result<()> {
        if args.json {
            serde_json::to_writer(&mut *out, report)?;
            writeln!(out)?;
        } else {
            let label = report
                .timestamp_unix_ms
                .map(clock::seconds)
                .unwrap_or_else(|| "Average:".into());
            write!(out, "{}", text::render(report, &label))?;
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
        let report = report::build(
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
        let mut average = report::build(&keywords, &rates, &prev, args.per_cpu, &args.iface, None);
        average_gauges(&mut average, &reports);
        emit(&average, &mut out)?;
    }
    Ok(())
}

/// SOCK holds gauges: the average is the mean of the intervals, like sar's.
pub(crate) fn average_gauges(average: &mut report::StatReport, reports: &[report::StatReport]) {
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
