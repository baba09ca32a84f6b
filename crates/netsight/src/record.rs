//! `netsight record`: a snapshot of the host (and, with --netns, of each
//! namespace) every interval, with the findings doctor's rules give over that
//! interval, appended to an SQLite history (netsight-history).

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use netsight_history::{History, Retention};
use netsight_kernel::netns::NetnsInfo;
use netsight_kernel::{LiveSource, Snapshot};
use netsight_report::Finding;

use crate::cli::RecordArgs;
use crate::doctor::netns::{namespace_label, select, HOST_WIDE_RULES};
use crate::interrupt;

/// Pruning (roll-ups, retention, the size cap) runs this often.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The label of the host's own namespace in the history.
pub const HOST: &str = "host";

/// One namespace's snapshot, taken by a thread inside it.
fn take_in(info: &NetnsInfo) -> std::result::Result<Snapshot, String> {
    netsight_kernel::netns::enter_for_this_thread(&info.handle).map_err(|e| {
        if e.kind() == io::ErrorKind::PermissionDenied {
            format!("entering it needs CAP_SYS_ADMIN (run as root): {e}")
        } else {
            format!("entering it: {e}")
        }
    })?;
    let source = LiveSource {
        owner_pids: Some(info.pids.clone()),
        ..LiveSource::for_this_thread()
    };
    Ok(Snapshot::from_raw(&source.collect()))
}

/// The host's snapshot and each selected namespace's, taken side by side.
fn take_all(which: Option<&str>) -> Vec<(String, Snapshot)> {
    let targets = match which {
        None => Vec::new(),
        // A named namespace deleted while recording: the host goes on being recorded.
        Some(which) => select(
            which,
            netsight_kernel::netns::list(),
            netsight_kernel::netns::self_inode(),
        )
        .unwrap_or_else(|e| {
            eprintln!("netsight record: {e}; recording the host only this sample");
            Vec::new()
        }),
    };
    let mut out = vec![(HOST.to_string(), Snapshot::take())];
    std::thread::scope(|scope| {
        let workers: Vec<_> = targets
            .iter()
            .map(|info| (info, scope.spawn(|| take_in(info))))
            .collect();
        for (info, worker) in workers {
            match worker.join() {
                Ok(Ok(snapshot)) => out.push((namespace_label(info), snapshot)),
                Ok(Err(why)) => eprintln!(
                    "netsight record: namespace {} skipped this sample: {why}",
                    namespace_label(info)
                ),
                Err(_) => eprintln!(
                    "netsight record: namespace {} skipped this sample: its reader failed",
                    namespace_label(info)
                ),
            }
        }
    });
    out
}

/// What doctor's rules find over the interval; host-wide rules only for the host.
fn findings(label: &str, prev: &Snapshot, cur: &Snapshot) -> Vec<Finding> {
    if netsight_doctor::cannot_diagnose(prev, cur).is_some() {
        return Vec::new();
    }
    let mut found = netsight_doctor::diagnose(prev, cur).findings;
    if label != HOST {
        found.retain(|f| !HOST_WIDE_RULES.iter().any(|p| f.rule_id.starts_with(p)));
    }
    found
}

/// CPU this process has used, every thread (the namespace readers too).
fn process_cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

pub fn run(args: &RecordArgs) -> Result<()> {
    if args.rollup_after >= args.retention {
        return Err(crate::exit::Usage(format!(
            "--rollup-after ({:?}) must be shorter than --retention ({:?})",
            args.rollup_after, args.retention
        ))
        .into());
    }
    if args.rollup_step < args.interval {
        return Err(crate::exit::Usage(format!(
            "--rollup-step ({:?}) must be at least --interval ({:?})",
            args.rollup_step, args.interval
        ))
        .into());
    }
    if let Some(which) = &args.netns {
        // An unknown name is a usage error before anything is written.
        select(
            which,
            netsight_kernel::netns::list(),
            netsight_kernel::netns::self_inode(),
        )?;
    }
    let mut history = History::open_for_writing(&args.db)?;
    // The file is open: from here on, only what sampling uses (entering namespaces
    // too, with --netns), still as root so the file and its journal stay writable.
    let mut keep = netsight_kernel::privilege::SAMPLING_CAPABILITIES.to_vec();
    if args.netns.is_some() {
        keep.push((21, "CAP_SYS_ADMIN"));
    }
    let kept = netsight_kernel::privilege::keep_only(&keep, Some("root"))
        .map_err(|e| anyhow::anyhow!("giving up privilege: {e}"))?;
    let policy = Retention {
        keep_ms: millis(args.retention),
        rollup_after_ms: millis(args.rollup_after),
        rollup_step_ms: millis(args.rollup_step),
        max_bytes: args.max_size,
    };
    interrupt::install();
    let tty = io::stderr().is_terminal();
    eprintln!(
        "netsight record: writing {} every {:.1} s (retention {:.1} d, max {} MiB; {kept}); Ctrl-C stops",
        args.db.display(),
        args.interval.as_secs_f64(),
        args.retention.as_secs_f64() / 86_400.0,
        args.max_size / (1024 * 1024)
    );
    let mut out = io::stdout().lock();
    let mut previous: HashMap<String, Snapshot> = HashMap::new();
    let start = Instant::now();
    let mut last_prune = Instant::now();
    let mut taken: u64 = 0;
    loop {
        let cpu_before = process_cpu_seconds();
        for (label, cur) in take_all(args.netns.as_deref()) {
            let found = previous
                .get(&label)
                .map(|prev| findings(&label, prev, &cur))
                .unwrap_or_default();
            let sample = history
                .append(&label, &cur, 0.0, &found)
                .with_context(|| format!("recording a sample of {label}"))?;
            if args.json {
                serde_json::to_writer(
                    &mut out,
                    &serde_json::json!({
                        "sample": sample,
                        "netns": label,
                        "taken_at_unix_ms": cur.meta.taken_at_unix_ms,
                        "findings": found.iter().map(|f| &f.rule_id).collect::<Vec<_>>(),
                        "used_bytes": history.used_bytes().unwrap_or(0),
                    }),
                )?;
                writeln!(out)?;
                out.flush()?;
            }
            previous.insert(label, cur);
        }
        taken += 1;
        if last_prune.elapsed() >= PRUNE_EVERY {
            let now = chrono::Utc::now().timestamp_millis();
            history.prune(&policy, now).context("pruning the history")?;
            last_prune = Instant::now();
        }
        if tty {
            let cpu = process_cpu_seconds() - cpu_before;
            eprint!(
                "\r\x1b[Ksample {taken}: {} namespace(s), {:.1} MiB, {:.1} ms CPU",
                previous.len(),
                history.used_bytes().unwrap_or(0) as f64 / 1048576.0,
                cpu * 1e3
            );
        }
        if args.count.is_some_and(|n| taken >= n) {
            break;
        }
        // On a fixed grid from the start: a slow sample does not shift the next ones.
        let next = start + args.interval.mul_f64(taken as f64);
        let wait = next.saturating_duration_since(Instant::now());
        if !interrupt::sleep(wait) {
            break;
        }
    }
    if tty {
        eprintln!();
    }
    let now = chrono::Utc::now().timestamp_millis();
    history.prune(&policy, now).context("pruning the history")?;
    eprintln!(
        "netsight record: {taken} sample(s) written to {}",
        args.db.display()
    );
    Ok(())
}
