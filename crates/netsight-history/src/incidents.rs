//! Incident windows: when each rule started and stopped firing, from the
//! findings recorded at each sample.

use serde::Serialize;

use crate::store::FindingRow;
use netsight_report::{Finding, Severity};

/// One stretch of samples over which a rule kept firing for the same subject.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    pub rule_id: String,
    pub netns: String,
    pub subject: Option<String>,
    pub title: String,
    /// The worst severity seen in the stretch.
    pub severity: Severity,
    /// The start of the first interval it fired over (the fault began in it).
    pub started_at_ms: i64,
    /// The end of the last interval it fired over.
    pub ended_at_ms: i64,
    pub duration_s: f64,
    /// Samples it fired at.
    pub samples: usize,
    /// When the finding was furthest past its threshold, and that finding.
    pub peak_at_ms: i64,
    pub peak: Finding,
}

/// Groups findings by (namespace, rule, subject) into stretches: one continues
/// while the next firing sample follows within 1.5 of its interval (a sample
/// without the finding in between ends it).
pub fn incidents(rows: &[FindingRow]) -> Vec<Incident> {
    let mut sorted: Vec<&FindingRow> = rows.iter().collect();
    sorted.sort_by(|a, b| {
        (
            &a.netns,
            &a.finding.rule_id,
            &a.finding.subject,
            a.taken_at_ms,
        )
            .cmp(&(
                &b.netns,
                &b.finding.rule_id,
                &b.finding.subject,
                b.taken_at_ms,
            ))
    });
    let mut out: Vec<Incident> = Vec::new();
    let mut last_at: Option<i64> = None;
    for row in sorted {
        let f = &row.finding;
        let interval_ms = (row.interval_s.max(0.0) * 1e3) as i64;
        let continues = match (out.last(), last_at) {
            (Some(open), Some(prev)) => {
                open.netns == row.netns
                    && open.rule_id == f.rule_id
                    && open.subject == f.subject
                    && row.taken_at_ms - prev <= interval_ms * 3 / 2 + 50
            }
            _ => false,
        };
        if continues {
            if let Some(open) = out.last_mut() {
                open.ended_at_ms = row.taken_at_ms;
                open.samples += 1;
                open.severity = open.severity.max(f.severity);
                if f.impact > open.peak.impact {
                    open.peak = f.clone();
                    open.peak_at_ms = row.taken_at_ms;
                }
            }
        } else {
            out.push(Incident {
                rule_id: f.rule_id.clone(),
                netns: row.netns.clone(),
                subject: f.subject.clone(),
                title: f.title.clone(),
                severity: f.severity,
                started_at_ms: row.taken_at_ms - interval_ms,
                ended_at_ms: row.taken_at_ms,
                duration_s: 0.0,
                samples: 1,
                peak_at_ms: row.taken_at_ms,
                peak: f.clone(),
            });
        }
        last_at = Some(row.taken_at_ms);
    }
    for i in &mut out {
        i.duration_s = (i.ended_at_ms - i.started_at_ms) as f64 / 1e3;
    }
    out.sort_by_key(|i| (i.started_at_ms, i.rule_id.clone()));
    out
}
