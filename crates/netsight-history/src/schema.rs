//! The history file's schema and its migrations (`PRAGMA user_version`).
//! Each step is the SQL that takes a file from version N to N+1; a file written
//! by an older netsight opens and is brought forward in one transaction.
//! Tables are described in docs/history.md.

/// 'NSHT': a file with another application_id is not a netsight history.
pub const APPLICATION_ID: i64 = 0x4e53_4854;

/// Version 1: what the first netsight record wrote. Frozen: never edit it, add a step.
pub const V1: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE samples (
    id INTEGER PRIMARY KEY,
    taken_at_ms INTEGER NOT NULL,
    monotonic_ns INTEGER NOT NULL,
    keyframe INTEGER NOT NULL
);
CREATE INDEX samples_by_time ON samples(taken_at_ms);
CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    UNIQUE (path, kind)
);
CREATE TABLE points (
    sample_id INTEGER NOT NULL,
    series_id INTEGER NOT NULL,
    value,
    PRIMARY KEY (sample_id, series_id)
) WITHOUT ROWID;
CREATE TABLE gone (
    sample_id INTEGER NOT NULL,
    series_id INTEGER NOT NULL,
    PRIMARY KEY (sample_id, series_id)
) WITHOUT ROWID;
CREATE TABLE findings (
    sample_id INTEGER NOT NULL,
    taken_at_ms INTEGER NOT NULL,
    rule_id TEXT NOT NULL,
    severity TEXT NOT NULL,
    subject TEXT,
    title TEXT NOT NULL,
    impact REAL NOT NULL,
    finding TEXT NOT NULL
);
CREATE INDEX findings_by_time ON findings(taken_at_ms);
";

/// Version 2: samples and findings per network namespace (`record --netns`), each
/// sample's interval (what a roll-up widens), and a finding's JSON stored once while
/// it stays the same (a standing finding cost a kilobyte per sample).
const V2: &str = "
ALTER TABLE samples ADD COLUMN netns TEXT NOT NULL DEFAULT 'host';
ALTER TABLE samples ADD COLUMN interval_s REAL NOT NULL DEFAULT 0;
UPDATE samples SET interval_s = COALESCE(
    (taken_at_ms - (SELECT max(p.taken_at_ms) FROM samples p WHERE p.id < samples.id)) / 1000.0, 0);
DROP INDEX samples_by_time;
CREATE INDEX samples_by_time ON samples(netns, taken_at_ms);
ALTER TABLE findings ADD COLUMN netns TEXT NOT NULL DEFAULT 'host';
ALTER TABLE findings ADD COLUMN interval_s REAL NOT NULL DEFAULT 0;
UPDATE findings SET interval_s = COALESCE(
    (SELECT s.interval_s FROM samples s WHERE s.id = findings.sample_id), 0);
CREATE TABLE finding_texts (id INTEGER PRIMARY KEY, json TEXT NOT NULL);
ALTER TABLE findings ADD COLUMN text_id INTEGER NOT NULL DEFAULT 0;
INSERT INTO finding_texts (id, json) SELECT rowid, finding FROM findings;
UPDATE findings SET text_id = rowid;
ALTER TABLE findings DROP COLUMN finding;
ALTER TABLE findings DROP COLUMN title;
";

/// Migration steps; entry i takes version i to i+1 (version 0: an empty file).
pub const STEPS: &[&str] = &[V1, V2];

pub const CURRENT: i64 = STEPS.len() as i64;
