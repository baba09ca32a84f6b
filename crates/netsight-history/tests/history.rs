//! The history file against real snapshots of this machine: what is replayed
//! is what was recorded, after roll-ups and retention too; old files migrate;
//! hostile files are errors, not panics.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
use std::path::{Path, PathBuf};

use netsight_history::{schema, History, Parts, Retention, SampleInfo};
use netsight_kernel::Snapshot;

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Live snapshots, re-timed `step_ms` apart from `start_ms`, with one counter
/// moved each time so every sample differs.
fn snapshots(n: usize, start_ms: u64, step_ms: u64) -> Vec<Snapshot> {
    let base = Snapshot::take();
    (0..n)
        .map(|i| {
            let mut s = if i % 3 == 0 {
                Snapshot::take()
            } else {
                base.clone()
            };
            s.meta.taken_at_unix_ms = start_ms + i as u64 * step_ms;
            s.meta.monotonic_ns = 1_000_000_000 + i as u64 * step_ms * 1_000_000;
            s.mib
                .entry("TcpExt".into())
                .or_default()
                .insert("ListenOverflows".into(), 7 * i as i64);
            // A link that comes and goes: its series are dropped and come back.
            if i % 4 == 1 {
                s.links.retain(|l| l.name != "lo");
            }
            s.sockets = None;
            s
        })
        .collect()
}

fn replay_all(h: &History, netns: &str) -> Vec<(SampleInfo, Snapshot)> {
    let samples = h.samples(netns, i64::MIN, i64::MAX).expect("samples");
    let mut out = Vec::new();
    h.replay(&samples, Parts::All, |info, snap| {
        out.push((info.clone(), snap));
        Ok(())
    })
    .expect("replay");
    out
}

#[test]
fn every_sample_replays_to_the_snapshot_recorded() {
    let d = dir();
    let path = d.path().join("h.db");
    let snaps = snapshots(12, 1_700_000_000_000, 1000);
    let mut h = History::open_for_writing(&path).expect("open");
    for s in &snaps {
        h.append("host", s, 0.0, &[]).expect("append");
    }
    let back = replay_all(&h, "host");
    assert_eq!(back.len(), snaps.len());
    for ((info, got), want) in back.iter().zip(&snaps) {
        assert_eq!(&got, &want, "sample {} differs", info.id);
    }
    // Counters only: the same counters, without sysctls.
    let samples = h.samples("host", i64::MIN, i64::MAX).expect("samples");
    h.replay(&samples[5..6], Parts::Counters, |_, snap| {
        assert_eq!(snap.mib, snaps[5].mib);
        assert_eq!(snap.links, snaps[5].links);
        assert!(snap.sysctls.is_empty());
        Ok(())
    })
    .expect("replay counters");
    // Reopened (a new writer), appending goes on from a keyframe.
    drop(h);
    let mut h = History::open_for_writing(&path).expect("reopen");
    h.append("host", &snaps[0], 0.0, &[])
        .expect("append after reopen");
    let back = replay_all(&h, "host");
    assert_eq!(back.last().map(|(_, s)| s), Some(&snaps[0]));
    assert_eq!(h.integrity_check().expect("check"), "ok");
}

#[test]
fn only_changes_are_stored() {
    let d = dir();
    let path = d.path().join("h.db");
    let mut h = History::open_for_writing(&path).expect("open");
    let snaps = snapshots(2, 1_700_000_000_000, 1000);
    let mut same = snaps[0].clone();
    h.append("host", &same, 0.0, &[]).expect("append");
    let after_first = h.used_bytes().expect("bytes");
    for i in 1..50i64 {
        same.meta.taken_at_unix_ms += 1000;
        same.meta.monotonic_ns += 1_000_000_000;
        same.mib
            .entry("Tcp".into())
            .or_default()
            .insert("InSegs".into(), i);
        h.append("host", &same, 0.0, &[]).expect("append");
    }
    let per_sample = (h.used_bytes().expect("bytes") - after_first) / 49;
    assert!(
        per_sample < 400,
        "49 samples changing 3 leaves each took {per_sample} bytes per sample"
    );
    // A standing finding: its text is stored once, and read back at every sample.
    let finding: netsight_report::Finding = serde_json::from_value(serde_json::json!({
        "rule_id": "config.keepalive_default", "layer": "tcp", "use_kind": "errors",
        "severity": "info", "title": "TCP keepalive waits two hours", "subject": null,
        "evidence": [{"metric": "net.ipv4.tcp_keepalive_time", "value": 7200.0, "unit": "s", "threshold": null}],
        "why": "", "confirm": [], "fix": [], "impact": 1.0
    }))
    .expect("a finding");
    let before = h.used_bytes().expect("bytes");
    for _ in 0..50 {
        same.meta.taken_at_unix_ms += 1000;
        h.append("host", &same, 0.0, std::slice::from_ref(&finding))
            .expect("append");
    }
    let per_sample = (h.used_bytes().expect("bytes") - before) / 50;
    assert!(
        per_sample < 400,
        "a standing finding took {per_sample} bytes per sample"
    );
    let back = h
        .findings(Some("host"), i64::MIN, i64::MAX)
        .expect("findings");
    assert_eq!(back.len(), 50);
    assert!(back.iter().all(|r| r.finding == finding));
}

#[test]
fn roll_ups_and_retention_keep_the_kept_samples_exact() {
    let d = dir();
    let path = d.path().join("h.db");
    // On a minute boundary, so roll-up steps hold six samples each.
    let start = 1_700_000_040_000u64;
    // 60 samples 10 s apart: 10 minutes.
    let snaps = snapshots(60, start, 10_000);
    let mut h = History::open_for_writing(&path).expect("open");
    for s in &snaps {
        h.append("host", s, 0.0, &[]).expect("append");
        h.append("blue", s, 0.0, &[]).expect("append");
    }
    let now = (start + 600_000) as i64;
    // Keep 8 minutes; roll up what is older than 4 minutes into one per minute.
    let policy = Retention {
        keep_ms: 480_000,
        rollup_after_ms: 240_000,
        rollup_step_ms: 60_000,
        max_bytes: 0,
    };
    let stats = h.prune(&policy, now).expect("prune");
    assert!(stats.deleted > 0 && stats.rolled_up > 0, "{stats:?}");
    for netns in ["host", "blue"] {
        let back = replay_all(&h, netns);
        let cutoff = now - 480_000;
        let horizon = now - 240_000;
        assert!(back.iter().all(|(i, _)| i.taken_at_ms >= cutoff));
        // Recent samples all there; older ones one per minute.
        let recent = back
            .iter()
            .filter(|(i, _)| i.taken_at_ms >= horizon)
            .count();
        let older = back.iter().filter(|(i, _)| i.taken_at_ms < horizon).count();
        assert_eq!(
            recent,
            snaps
                .iter()
                .filter(|s| s.meta.taken_at_unix_ms as i64 >= horizon)
                .count()
        );
        assert_eq!(older, 4, "four minutes, one roll-up each");
        for (info, got) in &back {
            let want = snaps
                .iter()
                .find(|s| s.meta.taken_at_unix_ms as i64 == info.taken_at_ms)
                .expect("a recorded time");
            assert_eq!(
                got, want,
                "{netns} sample at {} differs after pruning",
                info.taken_at_ms
            );
        }
        // A roll-up's interval spans the samples folded into it.
        assert!(
            back.iter().any(|(i, _)| i.interval_s >= 59.0),
            "{:?}",
            back.iter().map(|(i, _)| i.interval_s).collect::<Vec<_>>()
        );
    }
    // Pruning twice changes nothing more; appending still replays right.
    let again = h.prune(&policy, now).expect("prune again");
    assert_eq!((again.deleted, again.rolled_up), (0, 0));
    let mut next = snaps[59].clone();
    next.meta.taken_at_unix_ms += 10_000;
    h.append("host", &next, 0.0, &[]).expect("append");
    assert_eq!(replay_all(&h, "host").last().map(|(_, s)| s), Some(&next));
    assert_eq!(h.integrity_check().expect("check"), "ok");
}

#[test]
fn the_size_cap_drops_the_oldest_first() {
    let d = dir();
    let path = d.path().join("h.db");
    let start = 1_700_000_000_000u64;
    let mut snaps = snapshots(150, start, 1000);
    // A busy host: hundreds of counters move every sample.
    for (i, s) in snaps.iter_mut().enumerate() {
        for group in s.mib.values_mut() {
            for (j, v) in group.values_mut().enumerate() {
                *v += (i * (j + 1)) as i64;
            }
        }
    }
    let mut h = History::open_for_writing(&path).expect("open");
    for s in &snaps {
        h.append("host", s, 0.0, &[]).expect("append");
    }
    let full = h.used_bytes().expect("bytes");
    let cap = full / 2;
    let policy = Retention {
        keep_ms: i64::MAX / 4,
        rollup_after_ms: i64::MAX / 4,
        rollup_step_ms: 60_000,
        max_bytes: cap,
    };
    let stats = h.prune(&policy, (start + 150_000) as i64).expect("prune");
    assert!(stats.deleted > 0);
    let used = h.used_bytes().expect("bytes");
    assert!(used <= cap, "{used} bytes used, cap {cap} (was {full})");
    let back = replay_all(&h, "host");
    assert!(back.len() < 150 && back.len() > 10, "{} left", back.len());
    assert_eq!(back.last().map(|(_, s)| s), snaps.last());
    assert_eq!(back.first().map(|(i, _)| i.keyframe), Some(true));
    let first_kept = back[0].0.taken_at_ms;
    let want = snaps
        .iter()
        .find(|s| s.meta.taken_at_unix_ms as i64 == first_kept);
    assert_eq!(
        Some(&back[0].1),
        want,
        "the oldest kept sample replays exactly"
    );
}

fn write_v1(path: &Path) {
    // What the first netsight record wrote: schema V1, one sample of two leaves.
    rusqlite_free::open(path);
}

/// The v1 file is written with the sqlite3 CLI, so the test does not share the
/// code under test's connection setup.
mod rusqlite_free {
    use std::path::Path;
    use std::process::Command;

    pub fn open(path: &Path) {
        let sql = format!(
            "{}
             PRAGMA application_id={};
             PRAGMA user_version=1;
             INSERT INTO samples VALUES (1, 1700000000000, 5000000000, 1);
             INSERT INTO samples VALUES (2, 1700000010000, 15000000000, 0);
             INSERT INTO series VALUES (1, 'meta/taken_at_unix_ms', 'int'), (2, 'meta/monotonic_ns', 'int'),
               (3, 'meta/netsight_version', 'text'), (4, 'mib/Tcp/InSegs', 'int'), (5, 'meta/kernel_release', 'null'),
               (6, 'meta/hostname', 'null');
             INSERT INTO points VALUES (1, 1, 1700000000000), (1, 2, 5000000000), (1, 3, '0.0.1'), (1, 4, 100),
               (1, 5, NULL), (1, 6, NULL), (2, 1, 1700000010000), (2, 2, 15000000000), (2, 4, 250);
             INSERT INTO findings VALUES (2, 1700000010000, 'tcp.retrans', 'warning', NULL, 'Retransmissions', 2.0,
               '{{\"rule_id\":\"tcp.retrans\",\"layer\":\"tcp\",\"use_kind\":\"errors\",\"severity\":\"warning\",\"title\":\"Retransmissions\",\"subject\":null,\"evidence\":[],\"why\":\"\",\"confirm\":[],\"fix\":[],\"impact\":2.0}}');",
            netsight_history::schema::V1,
            netsight_history::schema::APPLICATION_ID
        );
        let out = Command::new("sqlite3")
            .arg(path)
            .arg(sql)
            .output()
            .expect("sqlite3 runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_version_1_file_is_migrated_and_reads() {
    if !netsight_testkit::have("sqlite3") {
        netsight_testkit::skip(
            "a_version_1_file_is_migrated_and_reads",
            "sqlite3 is not installed (scripts/setup installs it)",
        );
        return;
    }
    let d = dir();
    let path = d.path().join("v1.db");
    write_v1(&path);
    let h = History::open_for_reading(&path).expect("a v1 file opens");
    let version = std::process::Command::new("sqlite3")
        .arg(&path)
        .arg("PRAGMA user_version")
        .output()
        .expect("sqlite3");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        schema::CURRENT.to_string()
    );
    let samples = h.samples("host", i64::MIN, i64::MAX).expect("samples");
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[1].interval_s, 10.0);
    let mut seen = Vec::new();
    h.replay(&samples, Parts::All, |_, s| {
        seen.push(s.mib["Tcp"]["InSegs"]);
        Ok(())
    })
    .expect("replay");
    assert_eq!(seen, [100, 250]);
    let findings = h.findings(None, i64::MIN, i64::MAX).expect("findings");
    assert_eq!(findings.len(), 1);
    assert_eq!(
        (findings[0].netns.as_str(), findings[0].interval_s),
        ("host", 10.0)
    );
}

#[test]
fn files_that_are_not_ours_or_not_trusted_are_refused() {
    let d = dir();
    // Not SQLite at all.
    let junk = d.path().join("junk.db");
    std::fs::write(&junk, b"this is not a database, just bytes and more bytes").expect("write");
    let e = History::open_for_reading(&junk).expect_err("junk");
    assert!(e.to_string().contains("junk.db"), "{e}");
    // SQLite, but someone else's.
    let other = d.path().join("other.db");
    let status = std::process::Command::new("sqlite3")
        .arg(&other)
        .arg("CREATE TABLE t (x); PRAGMA user_version=1;")
        .status();
    if status.map(|s| s.success()).unwrap_or(false) {
        let e = History::open_for_reading(&other).expect_err("other");
        assert!(e.to_string().contains("not a netsight history"), "{e}");
    }
    // From a newer netsight.
    let newer = d.path().join("newer.db");
    {
        let mut h = History::open_for_writing(&newer).expect("open");
        h.append("host", &snapshots(1, 1, 1)[0], 0.0, &[])
            .expect("append");
    }
    let bump = std::process::Command::new("sqlite3")
        .arg(&newer)
        .arg(format!("PRAGMA user_version={}", schema::CURRENT + 1))
        .status();
    if bump.map(|s| s.success()).unwrap_or(false) {
        let e = History::open_for_reading(&newer).expect_err("newer");
        assert!(e.to_string().contains("newer netsight"), "{e}");
    }
    // A directory others can write, and a symbolic link.
    let open_dir = d.path().join("open");
    std::fs::create_dir(&open_dir).expect("mkdir");
    std::fs::set_permissions(
        &open_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let e = History::open_for_writing(&open_dir.join("h.db")).expect_err("world-writable dir");
    assert!(e.to_string().contains("writable by group or others"), "{e}");
    let link = d.path().join("link.db");
    std::os::unix::fs::symlink(&newer, &link).expect("symlink");
    let e = History::open_for_writing(&link).expect_err("symlink");
    assert!(e.to_string().contains("symbolic link"), "{e}");
}

#[test]
fn corrupted_bytes_are_errors_not_panics() {
    let d = dir();
    let path: PathBuf = d.path().join("h.db");
    {
        let mut h = History::open_for_writing(&path).expect("open");
        for s in snapshots(6, 1_700_000_000_000, 1000) {
            h.append("host", &s, 0.0, &[]).expect("append");
        }
        let _ = h.integrity_check();
    }
    // Checkpointed into the main file by closing; now flip bytes all over it.
    let clean = std::fs::read(&path).expect("read");
    let mut rng = 0x2545F4914F6CDD1Du64;
    for round in 0..40 {
        let mut bytes = clean.clone();
        for _ in 0..(1 + round % 8) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let at = 100 + (rng as usize) % (bytes.len() - 100);
            bytes[at] ^= (rng >> 32) as u8 | 1;
        }
        let file = d.path().join(format!("bad{round}.db"));
        std::fs::write(&file, &bytes).expect("write");
        // Any outcome but a panic: an error, or data that replays or fails cleanly.
        if let Ok(h) = History::open_for_reading(&file) {
            if let Ok(samples) = h.samples("host", i64::MIN, i64::MAX) {
                let _ = h.replay(&samples, Parts::All, |_, _| Ok(()));
            }
            let _ = h.findings(None, i64::MIN, i64::MAX);
        }
    }
}
