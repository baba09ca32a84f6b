//! `netsight report`: a recorded history over a window. stat's tables (the
//! same keywords and columns, built from replayed snapshots), the incident
//! windows of doctor's rules, the largest movers against a baseline window, as
//! text, JSON, CSV or one self-contained HTML file.

mod html;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{bail, Result};
use netsight_history::{History, Incident, Parts, SampleInfo};
use netsight_kernel::delta::{delta, Rates};
use netsight_kernel::Snapshot;
use serde::Serialize;

use crate::cli::ReportArgs;
use crate::record::HOST;
use crate::stat::report::{self as stat_report, Keyword, StatReport};
use crate::stat::{average_gauges, text as stat_text};
use crate::{clock, exit};

/// Rows in a window before the default step widens.
const MAX_ROWS: usize = 300;

/// The keywords shown when none are given.
const DEFAULT_KEYWORDS: &[Keyword] = &[
    Keyword::Dev,
    Keyword::Tcp,
    Keyword::Etcp,
    Keyword::Udp,
    Keyword::Sock,
];

/// One chart sample: the headline rates of an interval.
#[derive(Debug, Clone, Serialize)]
pub struct ChartPoint {
    pub at_unix_ms: i64,
    pub rx_bits_per_s: f64,
    pub tx_bits_per_s: f64,
    pub rx_packets_per_s: f64,
    pub tx_packets_per_s: f64,
    pub retransmitted_segments_per_s: f64,
    /// Drops per second by layer: link, softnet, qdisc, ip, udp, tcp.
    pub drops_per_s: BTreeMap<&'static str, f64>,
}

/// A column that moved most between the baseline and the window.
#[derive(Debug, Clone, Serialize)]
pub struct Mover {
    pub keyword: String,
    pub item: String,
    pub column: String,
    pub baseline: f64,
    pub window: f64,
    /// None when the baseline was 0.
    pub change_percent: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub since_unix_ms: i64,
    pub until_unix_ms: i64,
}

#[derive(Debug, Serialize)]
pub struct HistoryReport {
    pub db: String,
    pub netns: String,
    pub namespaces: Vec<String>,
    pub window: Window,
    /// Samples of this namespace in the window.
    pub samples: usize,
    /// Seconds between rows (0: every sample).
    pub step_s: f64,
    pub intervals: Vec<StatReport>,
    pub average: Option<StatReport>,
    pub incidents: Vec<Incident>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Window>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub movers: Vec<Mover>,
    pub charts: Vec<ChartPoint>,
}

fn chart_point(at: i64, r: &Rates) -> ChartPoint {
    let links = |f: fn(&netsight_kernel::link::LinkStatsRates) -> f64| -> f64 {
        r.links.iter().map(|l| f(&l.stats)).sum()
    };
    let mib = |g: &str, names: &[&str]| -> f64 { names.iter().map(|n| r.mib_rate(g, n)).sum() };
    let mut drops = BTreeMap::new();
    drops.insert(
        "link",
        links(|s| s.rx_dropped + s.tx_dropped + s.rx_missed_errors),
    );
    drops.insert("softnet", r.softnet.iter().map(|c| c.dropped).sum());
    drops.insert("qdisc", r.qdiscs.iter().map(|q| q.rates.drops).sum());
    drops.insert(
        "ip",
        mib(
            "Ip",
            &["InDiscards", "OutDiscards", "InHdrErrors", "InAddrErrors"],
        ) + mib("Ip6", &["InDiscards", "OutDiscards"]),
    );
    drops.insert(
        "udp",
        mib("Udp", &["RcvbufErrors", "SndbufErrors", "InErrors"])
            + mib("Udp6", &["RcvbufErrors", "SndbufErrors", "InErrors"]),
    );
    drops.insert(
        "tcp",
        mib(
            "TcpExt",
            &[
                "ListenDrops",
                "TCPBacklogDrop",
                "TCPRcvQDrop",
                "TCPZeroWindowDrop",
                "TCPMinTTLDrop",
            ],
        ),
    );
    ChartPoint {
        at_unix_ms: at,
        rx_bits_per_s: links(|s| s.rx_bytes) * 8.0,
        tx_bits_per_s: links(|s| s.tx_bytes) * 8.0,
        rx_packets_per_s: links(|s| s.rx_packets),
        tx_packets_per_s: links(|s| s.tx_packets),
        retransmitted_segments_per_s: r.mib_rate("Tcp", "RetransSegs"),
        drops_per_s: drops,
    }
}

/// A report's numbers as (keyword, item, column) → value: DEV's rows by interface,
/// single-row keywords with an empty item.
fn cells(report: &StatReport) -> Vec<(String, String, String, f64)> {
    let mut out = Vec::new();
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(report) else {
        return out;
    };
    let mut row = |keyword: &str, value: &serde_json::Value| {
        let serde_json::Value::Object(fields) = value else {
            return;
        };
        let item: Vec<String> = fields
            .values()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let item = item.join(" ");
        for (column, v) in fields {
            if let Some(x) = v.as_f64() {
                out.push((keyword.to_string(), item.clone(), column.clone(), x));
            }
        }
    };
    for (keyword, value) in &map {
        match value {
            serde_json::Value::Array(rows) => rows.iter().for_each(|r| row(keyword, r)),
            serde_json::Value::Object(_) => row(keyword, value),
            _ => {}
        }
    }
    out
}

fn movers(baseline: &StatReport, window: &StatReport) -> Vec<Mover> {
    let before: BTreeMap<(String, String, String), f64> = cells(baseline)
        .into_iter()
        .map(|(k, i, c, v)| ((k, i, c), v))
        .collect();
    let mut out: Vec<(f64, Mover)> = cells(window)
        .into_iter()
        .filter_map(|(keyword, item, column, now)| {
            let was = *before.get(&(keyword.clone(), item.clone(), column.clone()))?;
            let change = (now - was).abs();
            if change < 0.01 {
                return None;
            }
            // Relative change, damped near zero so 0 → 0.1 does not top the list.
            let score = change / (was.abs() + 1.0);
            Some((
                score,
                Mover {
                    keyword,
                    item,
                    column,
                    baseline: was,
                    window: now,
                    change_percent: (was != 0.0).then(|| (now - was) / was.abs() * 100.0),
                },
            ))
        })
        .collect();
    out.sort_by(|a, b| b.0.total_cmp(&a.0));
    out.into_iter().take(15).map(|(_, m)| m).collect()
}

/// The samples a window shows: the one before it (the first interval's start),
/// then one per `step_ms` (every sample at 0), always the last.
fn pick(samples: Vec<SampleInfo>, step_ms: i64) -> Vec<SampleInfo> {
    let mut out: Vec<SampleInfo> = Vec::new();
    let n = samples.len();
    for (i, s) in samples.into_iter().enumerate() {
        let due = match out.last() {
            None => true,
            Some(last) => s.taken_at_ms - last.taken_at_ms >= step_ms || i + 1 == n,
        };
        if due {
            out.push(s);
        }
    }
    out
}

fn replay(history: &History, samples: &[SampleInfo]) -> Result<Vec<(SampleInfo, Snapshot)>> {
    let mut out = Vec::with_capacity(samples.len());
    history.replay(samples, Parts::Counters, |info, snap| {
        out.push((info.clone(), snap));
        Ok(())
    })?;
    Ok(out)
}

fn build(history: &History, args: &ReportArgs) -> Result<HistoryReport> {
    let keywords = if args.keywords.is_empty() {
        DEFAULT_KEYWORDS.to_vec()
    } else {
        let request = stat_report::parse_args(&args.keywords).map_err(exit::Usage)?;
        if request.interval.is_some() {
            return Err(exit::Usage(
                "report takes keywords only; the window is --since/--until and rows are --step"
                    .into(),
            )
            .into());
        }
        request.keywords
    };
    let namespaces = history.namespaces()?;
    let netns = args.netns.clone().unwrap_or_else(|| HOST.to_string());
    if !namespaces.contains(&netns) {
        return Err(exit::Usage(format!(
            "--netns {netns}: not in this history (recorded: {})",
            if namespaces.is_empty() {
                "none".to_string()
            } else {
                namespaces.join(", ")
            }
        ))
        .into());
    }
    let Some((first, last)) = history.time_range()? else {
        bail!("{}: no samples recorded yet", args.db.display());
    };
    let since = args.since.unwrap_or(first);
    let until = args.until.unwrap_or(last);
    if since > until {
        return Err(exit::Usage("--since is after --until".into()).into());
    }
    let mut samples = history.samples(&netns, since, until)?;
    // The sample before the window starts its first interval.
    if let Some(before) = history.sample_at(&netns, since - 1)? {
        samples.insert(0, before);
    }
    if samples.len() < 2 {
        bail!(
            "{}: the window {} .. {} holds {} sample(s) of {netns}; a report needs two (recorded: {} .. {})",
            args.db.display(),
            clock::date_seconds(since.max(0) as u64),
            clock::date_seconds(until.max(0) as u64),
            samples.len(),
            clock::date_seconds(first.max(0) as u64),
            clock::date_seconds(last.max(0) as u64),
        );
    }
    let span = samples.last().map(|s| s.taken_at_ms).unwrap_or(0)
        - samples.first().map(|s| s.taken_at_ms).unwrap_or(0);
    let step_ms = match args.step {
        Some(d) => d.as_millis() as i64,
        None if samples.len() > MAX_ROWS => span / MAX_ROWS as i64,
        None => 0,
    };
    let n_in_window = samples.len() - 1;
    // Streamed: only the first and the previous snapshot are kept, whatever the window.
    let mut first_shown: Option<Snapshot> = None;
    let mut previous: Option<(SampleInfo, Snapshot)> = None;
    let mut intervals = Vec::new();
    let mut charts = Vec::new();
    history.replay(&pick(samples, step_ms), Parts::Counters, |info, cur| {
        if let Some((_, prev)) = &previous {
            let rates = delta(prev, &cur);
            charts.push(chart_point(info.taken_at_ms, &rates));
            intervals.push(stat_report::build(
                &keywords,
                &rates,
                &cur,
                false,
                &args.iface,
                Some(info.taken_at_ms as u64),
            ));
        } else {
            first_shown = Some(cur.clone());
        }
        previous = Some((info.clone(), cur));
        Ok(())
    })?;
    let (Some(first_snapshot), Some((_, last_snapshot))) = (first_shown, previous) else {
        bail!(
            "{}: the window's samples could not be replayed",
            args.db.display()
        );
    };
    if let Some(missing) = args.iface.iter().find(|i| last_snapshot.link(i).is_none()) {
        return Err(exit::Usage(format!(
            "--iface {missing}: not among the interfaces recorded at the end of the window"
        ))
        .into());
    }
    let mut avg = stat_report::build(
        &keywords,
        &delta(&first_snapshot, &last_snapshot),
        &last_snapshot,
        false,
        &args.iface,
        None,
    );
    average_gauges(&mut avg, &intervals);
    let average = Some(avg);
    let mut baseline_window = None;
    let mut moved = Vec::new();
    if let (Some((b0, b1)), Some(avg)) = (args.baseline, &average) {
        let mut base = history.samples(&netns, b0, b1)?;
        if base.len() < 2 {
            bail!(
                "--baseline {} .. {}: {} sample(s) of {netns} recorded then; it needs two",
                clock::date_seconds(b0.max(0) as u64),
                clock::date_seconds(b1.max(0) as u64),
                base.len()
            );
        }
        let ends = vec![base.remove(0), base.pop().unwrap_or_else(|| unreachable!())];
        let snaps = replay(history, &ends)?;
        if let [(_, a), (_, b)] = snaps.as_slice() {
            let base_report =
                stat_report::build(&keywords, &delta(a, b), b, false, &args.iface, None);
            moved = movers(&base_report, avg);
        }
        baseline_window = Some(Window {
            since_unix_ms: b0,
            until_unix_ms: b1,
        });
    }
    let window_start = first_snapshot.meta.taken_at_unix_ms as i64;
    let findings = history.findings(None, window_start + 1, until)?;
    Ok(HistoryReport {
        db: args.db.display().to_string(),
        netns,
        namespaces,
        window: Window {
            since_unix_ms: since,
            until_unix_ms: until,
        },
        samples: n_in_window,
        step_s: step_ms as f64 / 1e3,
        intervals,
        average,
        incidents: netsight_history::incidents(&findings),
        baseline: baseline_window,
        movers: moved,
        charts,
    })
}

fn label(at_ms: i64, multi_day: bool) -> String {
    if multi_day {
        clock::date_seconds(at_ms.max(0) as u64)
    } else {
        clock::seconds(at_ms.max(0) as u64)
    }
}

fn text(r: &HistoryReport) -> String {
    let multi_day = r.window.until_unix_ms - r.window.since_unix_ms > 86_400_000;
    let mut s = format!(
        "netsight report: {} — {} from {} to {} ({} samples{})\n\n",
        r.db,
        r.netns,
        clock::date_seconds(r.window.since_unix_ms.max(0) as u64),
        clock::date_seconds(r.window.until_unix_ms.max(0) as u64),
        r.samples,
        if r.step_s > 0.0 {
            format!(", a row per {:.0} s", r.step_s)
        } else {
            String::new()
        }
    );
    let mut rows: Vec<(String, &StatReport)> = r
        .intervals
        .iter()
        .map(|i| (label(i.timestamp_unix_ms.unwrap_or(0) as i64, multi_day), i))
        .collect();
    if let Some(avg) = &r.average {
        rows.push(("Average:".to_string(), avg));
    }
    s.push_str(&stat_text::render_series(&rows));
    s.push_str(&incidents_text(&r.incidents, multi_day));
    if let Some(b) = &r.baseline {
        s.push_str(&format!(
            "Largest movers against {} .. {}:\n",
            clock::date_seconds(b.since_unix_ms.max(0) as u64),
            clock::date_seconds(b.until_unix_ms.max(0) as u64)
        ));
        if r.movers.is_empty() {
            s.push_str("  nothing moved\n");
        }
        for m in &r.movers {
            let what = [m.keyword.as_str(), m.item.as_str(), m.column.as_str()]
                .iter()
                .filter(|p| !p.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(" ");
            let change = m
                .change_percent
                .map(|p| format!("{p:+.0}%"))
                .unwrap_or_else(|| "new".into());
            s.push_str(&format!(
                "  {what:<40} {:>12.2} → {:>12.2}  ({change})\n",
                m.baseline, m.window
            ));
        }
    }
    s
}

/// The first `n` pieces of an incident's peak evidence, on one line.
fn peak_evidence(i: &Incident, n: usize) -> String {
    i.peak
        .evidence
        .iter()
        .take(n)
        .map(|e| format!("{} {:.2} {}", e.metric, e.value, e.unit))
        .collect::<Vec<_>>()
        .join("; ")
}

fn incidents_text(incidents: &[Incident], multi_day: bool) -> String {
    let mut s = String::from("Incidents:\n");
    if incidents.is_empty() {
        s.push_str("  none: no rule fired in this window\n\n");
        return s;
    }
    for i in incidents {
        let evidence = peak_evidence(i, 2);
        s.push_str(&format!(
            "  {} .. {} ({:.0} s)  {:<8} {}{}  {}{}\n      peak at {}: {}\n",
            label(i.started_at_ms, multi_day),
            label(i.ended_at_ms, multi_day),
            i.duration_s,
            i.severity.as_str(),
            i.rule_id,
            i.subject
                .as_ref()
                .map(|x| format!(" [{x}]"))
                .unwrap_or_default(),
            i.title,
            if i.netns == HOST {
                String::new()
            } else {
                format!(" (netns {})", i.netns)
            },
            label(i.peak_at_ms, multi_day),
            evidence
        ));
    }
    s.push('\n');
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv(r: &HistoryReport) -> String {
    let mut s = String::from("timestamp_unix_ms,netns,keyword,item,column,value\n");
    for i in &r.intervals {
        for (keyword, item, column, value) in cells(i) {
            if column == "interval_s" {
                continue;
            }
            s.push_str(&format!(
                "{},{},{},{},{},{}\n",
                i.timestamp_unix_ms.unwrap_or(0),
                csv_field(&r.netns),
                csv_field(&keyword),
                csv_field(&item),
                csv_field(&column),
                value
            ));
        }
    }
    s
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    // Through a new temporary name (never an existing file or link someone left
    // there), so a reader never sees half a file.
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        bail!("writing {}: {e}", path.display());
    }
    Ok(())
}

pub fn run(args: &ReportArgs) -> Result<()> {
    let history = History::open_for_reading(&args.db)?;
    let report = build(&history, args)?;
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else if args.csv {
        write!(out, "{}", csv(&report))?;
    } else if let Some(path) = &args.html {
        write_file(path, html::render(&report).as_bytes())?;
        eprintln!(
            "netsight report: wrote {} ({} intervals, {} incidents)",
            path.display(),
            report.intervals.len(),
            report.incidents.len()
        );
    } else {
        write!(out, "{}", text(&report))?;
    }
    out.flush()?;
    Ok(())
}
