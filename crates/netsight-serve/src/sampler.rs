//! The background sampler: each part of a collection (proc files, sysctls, sysfs,
//! netlink dumps, iptables-legacy, driver stats, sockets) runs on a thread of its
//! own within a time budget. A part over its budget keeps running; until it
//! finishes, its last value is served and marked stale, and it is not started
//! again (a hung source costs one thread, not one per sample).

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netsight_kernel::{LiveSource, RawSnapshot, Snapshot, SourcePart};

use crate::metrics::{PartStatus, Sample};

#[derive(Debug)]
struct PartState {
    /// The last value this part produced, and when its collection started.
    last: Option<(RawSnapshot, Instant)>,
    /// A collection still running: where its result will arrive, and its start.
    in_flight: Option<(mpsc::Receiver<(RawSnapshot, Duration)>, Instant)>,
    last_duration: Duration,
    overruns: u64,
}

#[derive(Debug)]
pub(crate) struct PartCollector {
    source: Arc<LiveSource>,
    budget: Duration,
    /// Indexed by SourcePart.
    parts: Vec<PartState>,
}

impl PartCollector {
    pub(crate) fn new(source: LiveSource, budget: Duration) -> Self {
        let parts = SourcePart::ALL
            .iter()
            .map(|_| PartState {
                last: None,
                in_flight: None,
                last_duration: Duration::ZERO,
                overruns: 0,
            })
            .collect();
        PartCollector {
            source: Arc::new(source),
            budget,
            parts,
        }
    }

    /// Starts `part` unless a collection of it is still running.
    fn start(&mut self, part: SourcePart, base: &RawSnapshot) {
        let state = &mut self.parts[part as usize];
        if state.in_flight.is_some() {
            return;
        }
        let (tx, rx) = mpsc::channel();
        let source = Arc::clone(&self.source);
        let base = base.clone();
        let started = Instant::now();
        let spawned = std::thread::Builder::new()
            .name(format!("sample-{}", part.name()))
            .spawn(move || {
                let raw = source.collect_part(part, &base, None);
                let _ = tx.send((raw, started.elapsed()));
            });
        if spawned.is_ok() {
            state.in_flight = Some((rx, started));
        }
    }

    /// Waits for `part` until `deadline`; a result that arrives is its new value.
    fn harvest(&mut self, part: SourcePart, deadline: Instant) {
        let state = &mut self.parts[part as usize];
        let Some((rx, started)) = &state.in_flight else {
            return;
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok((raw, took)) => {
                state.last = Some((raw, *started));
                state.last_duration = took;
                state.in_flight = None;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                state.last_duration = started.elapsed();
            }
            // The thread died (a panic in a parser): try again next sample.
            Err(mpsc::RecvTimeoutError::Disconnected) => state.in_flight = None,
        }
    }

    /// One collection: every part, each bounded by the budget (Proc first, as
    /// the others read it). Returns the merged raw snapshot and each part's status.
    pub(crate) fn collect(&mut self) -> (RawSnapshot, Vec<PartStatus>) {
        let sample_started = Instant::now();
        let mut raw = self.source.begin();
        self.start(SourcePart::Proc, &raw);
        self.harvest(SourcePart::Proc, Instant::now() + self.budget);
        if let Some((proc, _)) = &self.parts[SourcePart::Proc as usize].last {
            raw.merge(proc.clone());
        }
        let rest: Vec<SourcePart> = self
            .source
            .parts()
            .filter(|p| *p != SourcePart::Proc)
            .collect();
        for part in &rest {
            self.start(*part, &raw);
        }
        let deadline = Instant::now() + self.budget;
        for part in &rest {
            self.harvest(*part, deadline);
        }
        let mut statuses = Vec::new();
        for part in std::iter::once(SourcePart::Proc).chain(rest) {
            let state = &mut self.parts[part as usize];
            let overran = state.in_flight.is_some();
            if overran {
                state.overruns += 1;
            }
            let (age_s, errors) = match &state.last {
                Some((last, started)) => {
                    // Proc's entries are already in `raw`.
                    if part != SourcePart::Proc {
                        raw.merge(last.clone());
                    }
                    (started.elapsed().as_secs_f64(), last.missing.len())
                }
                None => {
                    raw.missing.insert(
                        format!("serve/{}", part.name()),
                        format!(
                            "over its time budget of {:.3} s, no value yet",
                            self.budget.as_secs_f64()
                        ),
                    );
                    (f64::NAN, 0)
                }
            };
            statuses.push(PartStatus {
                name: part.name(),
                duration_s: state.last_duration.as_secs_f64(),
                // Stale: what is served was not collected by this sample.
                stale: state
                    .last
                    .as_ref()
                    .is_none_or(|(_, started)| *started < sample_started),
                age_s,
                errors,
                overruns_total: state.overruns,
            });
        }
        (raw, statuses)
    }
}

/// Keeps `window` of history (older snapshots without their sockets) and
/// diagnoses from the oldest to the newest.
#[derive(Debug)]
pub(crate) struct Sampler {
    pub(crate) collector: PartCollector,
    pub(crate) history: VecDeque<Snapshot>,
    pub(crate) window: Duration,
    pub(crate) samples: u64,
}

impl Sampler {
    pub(crate) fn sample(&mut self) -> Sample {
        let started = Instant::now();
        let (raw, parts) = self.collector.collect();
        let snapshot = Snapshot::from_raw(&raw);
        let collect_s = started.elapsed().as_secs_f64();
        if let Some(last) = self.history.back_mut() {
            last.sockets = None;
        }
        self.history.push_back(snapshot);
        // Keep the oldest snapshot still within the window (or just the previous one).
        let newest_ns = self.history.back().map_or(0, |s| s.meta.monotonic_ns);
        while self.history.len() > 2 {
            let second = self.history[1].meta.monotonic_ns;
            if newest_ns.saturating_sub(second) >= self.window.as_nanos() as u64 {
                self.history.pop_front();
            } else {
                break;
            }
        }
        self.samples += 1;
        let cur = self.history.back().cloned().unwrap_or_else(Snapshot::take);
        let diagnosed = Instant::now();
        let (report, window_s) = match self.history.front() {
            Some(oldest) if self.history.len() >= 2 => (
                netsight_doctor::diagnose(oldest, &cur),
                (cur.meta
                    .monotonic_ns
                    .saturating_sub(oldest.meta.monotonic_ns)) as f64
                    / 1e9,
            ),
            // The first sample: counters only, no window yet.
            _ => (netsight_report::Report::default(), 0.0),
        };
        Sample {
            snapshot: cur,
            report,
            window_s,
            collect_s,
            diagnose_s: diagnosed.elapsed().as_secs_f64(),
            samples_total: self.samples,
            parts,
        }
    }
}
