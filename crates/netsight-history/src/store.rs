//! The SQLite file: appending samples (only the leaves that changed), replaying
//! them back into snapshots, and pruning (roll-ups, retention, the size cap).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use netsight_kernel::Snapshot;
use netsight_report::Finding;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::Value;

use crate::flat::{self, Kind, Stored};
use crate::schema;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{path}: {detail}")]
    File { path: PathBuf, detail: String },
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path}: sample {sample} cannot be rebuilt: {detail}")]
    Corrupt {
        path: PathBuf,
        sample: i64,
        detail: String,
    },
}

pub type Result<T> = std::result::Result<T, HistoryError>;

/// A full copy of every leaf every this many samples of a namespace, so a replay
/// never starts further back than this.
pub const KEYFRAME_EVERY: u32 = 360;

/// One recorded sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleInfo {
    pub id: i64,
    pub netns: String,
    pub taken_at_ms: i64,
    pub monotonic_ns: i64,
    /// Seconds since the previous sample of its namespace (wider after a roll-up).
    pub interval_s: f64,
    pub keyframe: bool,
}

/// A finding as recorded at a sample.
#[derive(Debug, Clone)]
pub struct FindingRow {
    pub sample_id: i64,
    pub netns: String,
    pub taken_at_ms: i64,
    pub interval_s: f64,
    pub finding: Finding,
}

/// How long data is kept, and at what resolution.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Samples older than this are deleted.
    pub keep_ms: i64,
    /// Samples older than this are thinned to one per `rollup_step_ms`.
    pub rollup_after_ms: i64,
    pub rollup_step_ms: i64,
    /// Oldest data goes first while the file holds more than this.
    pub max_bytes: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PruneStats {
    pub deleted: usize,
    pub rolled_up: usize,
}

#[derive(Debug, Default)]
struct WriterState {
    last: HashMap<i64, Stored>,
    /// The last JSON stored per (rule, subject), and its row in finding_texts.
    texts: HashMap<(String, Option<String>), (String, i64)>,
    since_keyframe: u32,
    last_taken_at_ms: Option<i64>,
}

/// An open history file.
#[derive(Debug)]
pub struct History {
    path: PathBuf,
    conn: Connection,
    series: HashMap<(String, Kind), i64>,
    writers: HashMap<String, WriterState>,
}

/// Trust: netsight runs as root, and a file or directory another user can write
/// could swap the database for a link to something else.
fn check_trusted(path: &Path) -> std::result::Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // No sticky-directory exception: others could plant the -wal or -shm there.
    let check = |what: &Path, m: &std::fs::Metadata| match netsight_kernel::trust::untrusted(
        what, m, false,
    ) {
        Some(why) => Err(format!(
            "{why}; keep history in a directory only its owner can write, such as /var/lib/netsight"
        )),
        None => Ok(()),
    };
    let dm = std::fs::metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    check(&dir, &dm)?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::symlink_metadata(&file) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!("{} is a symbolic link", file.display()))
            }
            Ok(m) if !m.is_file() => {
                return Err(format!("{} is not a regular file", file.display()))
            }
            Ok(m) => check(&file, &m)?,
            Err(_) => {}
        }
    }
    Ok(())
}

fn stored_to_sql(s: &Stored) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match s {
        Stored::Null => V::Null,
        Stored::Int(i) => V::Integer(*i),
        Stored::Real(f) => V::Real(*f),
        Stored::Text(t) => V::Text(t.clone()),
    }
}

fn sql_to_stored(v: rusqlite::types::ValueRef<'_>) -> Stored {
    use rusqlite::types::ValueRef as V;
    match v {
        V::Null | V::Blob(_) => Stored::Null,
        V::Integer(i) => Stored::Int(i),
        V::Real(f) => Stored::Real(f),
        V::Text(t) => Stored::Text(String::from_utf8_lossy(t).into_owned()),
    }
}

/// Top-level snapshot fields a replay may leave out (true: an array, else a map).
const SNAPSHOT_DEFAULTS: &[(&str, bool)] = &[
    ("mib", false),
    ("sockstat", false),
    ("softnet", true),
    ("links", true),
    ("qdiscs", true),
    ("sysctls", false),
    ("unavailable", false),
];

/// Series by id: the parsed path (or why it does not parse) and the kind.
type Names = HashMap<i64, (std::result::Result<flat::ParsedPath, String>, Kind)>;

/// Which top-level parts of each snapshot a replay rebuilds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parts {
    /// Everything recorded (what doctor needs).
    All,
    /// Counters and the little stat reads: no sysctls, host layout, rules or
    /// unavailable sources. Much cheaper over a day of samples.
    Counters,
}

impl Parts {
    fn wants(self, path: &str) -> bool {
        match self {
            Parts::All => true,
            Parts::Counters => {
                let top = path.split('/').next().unwrap_or("");
                matches!(
                    top,
                    "meta" | "mib" | "sockstat" | "softnet" | "links" | "qdiscs" | "conntrack"
                )
            }
        }
    }
}

impl History {
    fn sql<T>(&self, r: rusqlite::Result<T>) -> Result<T> {
        r.map_err(|source| HistoryError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    /// Opens (creating it if absent) the file `record` writes; the file and its
    /// directory must be writable by root or this user only.
    pub fn open_for_writing(path: &Path) -> Result<History> {
        check_trusted(path).map_err(|detail| HistoryError::File {
            path: path.to_path_buf(),
            detail,
        })?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let history = Self::open_with(path, flags)?;
        // New files: only the owner may read what the host's traffic looked like.
        let _ = std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600));
        Ok(history)
    }

    /// Opens an existing file to read (`report`, `doctor --db`). A file from an
    /// older netsight is migrated, which needs the same trust as writing.
    pub fn open_for_reading(path: &Path) -> Result<History> {
        let file_error = |detail: String| HistoryError::File {
            path: path.to_path_buf(),
            detail,
        };
        let meta = std::fs::metadata(path).map_err(|e| file_error(e.to_string()))?;
        if !meta.is_file() {
            return Err(file_error("not a regular file".into()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let needs_migration = {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NOFOLLOW,
            )
            .map_err(|source| HistoryError::Sqlite {
                path: path.to_path_buf(),
                source,
            })?;
            let version: i64 = conn
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(|source| HistoryError::Sqlite {
                    path: path.to_path_buf(),
                    source,
                })?;
            version < schema::CURRENT
        };
        if needs_migration {
            check_trusted(path).map_err(|d| file_error(format!("needs migrating, but {d}")))?;
        }
        Self::open_with(path, flags)
    }

    fn open_with(path: &Path, flags: OpenFlags) -> Result<History> {
        let sqlite = |source| HistoryError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open_with_flags(path, flags).map_err(sqlite)?;
        // A file from elsewhere is data, not code: no triggers or views calling functions.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
            .map_err(sqlite)?;
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA,
            false,
        )
        .map_err(sqlite)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sqlite)?;
        let mut history = History {
            path: path.to_path_buf(),
            conn,
            series: HashMap::new(),
            writers: HashMap::new(),
        };
        history.migrate()?;
        history.load_series()?;
        Ok(history)
    }

    fn migrate(&mut self) -> Result<()> {
        let file_error = |detail: String| HistoryError::File {
            path: self.path.clone(),
            detail,
        };
        let version: i64 = self.sql(
            self.conn
                .pragma_query_value(None, "user_version", |r| r.get(0)),
        )?;
        let app: i64 = self.sql(
            self.conn
                .pragma_query_value(None, "application_id", |r| r.get(0)),
        )?;
        let tables: i64 = self.sql(self.conn.query_row(
            "SELECT count(*) FROM sqlite_schema",
            [],
            |r| r.get(0),
        ))?;
        if tables > 0 && app != schema::APPLICATION_ID {
            return Err(file_error(
                "an SQLite file, but not a netsight history (its application_id is not netsight's)"
                    .into(),
            ));
        }
        if version > schema::CURRENT {
            return Err(file_error(format!(
                "written by a newer netsight (schema version {version}; this one knows up to {})",
                schema::CURRENT
            )));
        }
        if version < 0 {
            return Err(file_error(format!("schema version {version} is not valid")));
        }
        // WAL: a reader never blocks the recorder, and a killed recorder loses at
        // most the transaction in flight. NORMAL is durable across process crashes.
        let mode: String = self.sql(
            self.conn
                .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)),
        )?;
        if mode != "wal" {
            return Err(file_error(format!(
                "could not switch to WAL (journal mode {mode})"
            )));
        }
        self.sql(self.conn.execute_batch("PRAGMA synchronous=NORMAL"))?;
        if version == schema::CURRENT {
            return Ok(());
        }
        if tables == 0 {
            // Space freed by pruning goes back to the filesystem (size cap).
            self.sql(
                self.conn
                    .execute_batch("PRAGMA auto_vacuum=INCREMENTAL; VACUUM"),
            )?;
        }
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|source| HistoryError::Sqlite {
                path: path.clone(),
                source,
            })?;
        for (i, step) in schema::STEPS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(step).map_err(|e| HistoryError::File {
                path: path.clone(),
                detail: format!("migrating from schema version {i} to {}: {e}", i + 1),
            })?;
        }
        tx.execute_batch(&format!(
            "PRAGMA application_id={}; PRAGMA user_version={}",
            schema::APPLICATION_ID,
            schema::CURRENT
        ))
        .map_err(|source| HistoryError::Sqlite {
            path: path.clone(),
            source,
        })?;
        tx.commit()
            .map_err(|source| HistoryError::Sqlite { path, source })
    }

    fn load_series(&mut self) -> Result<()> {
        let mut stmt = self.sql(self.conn.prepare("SELECT id, path, kind FROM series"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|source| HistoryError::Sqlite {
                path: self.path.clone(),
                source,
            })?;
        drop(stmt);
        for (id, path, kind) in rows {
            if let Some(kind) = Kind::parse(&kind) {
                self.series.insert((path, kind), id);
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records one sample of a namespace ("host" for the host) in one
    /// transaction: the leaves that changed since its last sample, the ones that
    /// went away, and the findings active over the interval.
    pub fn append(
        &mut self,
        netns: &str,
        snapshot: &Snapshot,
        interval_s: f64,
        findings: &[Finding],
    ) -> Result<i64> {
        let mut value = serde_json::to_value(snapshot).map_err(|e| HistoryError::File {
            path: self.path.clone(),
            detail: format!("serializing a snapshot: {e}"),
        })?;
        // Sockets are not recorded (as stat does not read them): too many, too often.
        if let Value::Object(map) = &mut value {
            map.remove("sockets");
        }
        let leaves = flat::flatten(&value);
        let state = self.writers.entry(netns.to_string()).or_default();
        let keyframe = state.since_keyframe == 0 || state.since_keyframe >= KEYFRAME_EVERY;
        let taken_at_ms = snapshot.meta.taken_at_unix_ms as i64;
        let interval_s = if interval_s > 0.0 {
            interval_s
        } else {
            state
                .last_taken_at_ms
                .map(|t| (taken_at_ms - t) as f64 / 1e3)
                .unwrap_or(0.0)
        };
        let path = self.path.clone();
        let sqlite = |source| HistoryError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sqlite)?;
        tx.execute(
            "INSERT INTO samples (taken_at_ms, monotonic_ns, keyframe, netns, interval_s) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![taken_at_ms, snapshot.meta.monotonic_ns as i64, keyframe, netns, interval_s],
        )
        .map_err(sqlite)?;
        let sample = tx.last_insert_rowid();
        let mut now: HashMap<i64, Stored> = HashMap::with_capacity(leaves.len());
        {
            let mut new_series = tx
                .prepare_cached("INSERT INTO series (path, kind) VALUES (?1, ?2)")
                .map_err(sqlite)?;
            let mut point = tx
                .prepare_cached(
                    "INSERT INTO points (sample_id, series_id, value) VALUES (?1, ?2, ?3)",
                )
                .map_err(sqlite)?;
            for ((leaf_path, kind), stored) in leaves {
                let key = (leaf_path, kind);
                let id = match self.series.get(&key) {
                    Some(id) => *id,
                    None => {
                        new_series
                            .execute(params![key.0, kind.name()])
                            .map_err(sqlite)?;
                        let id = tx.last_insert_rowid();
                        self.series.insert(key, id);
                        id
                    }
                };
                if keyframe || state.last.get(&id) != Some(&stored) {
                    point
                        .execute(params![sample, id, stored_to_sql(&stored)])
                        .map_err(sqlite)?;
                }
                now.insert(id, stored);
            }
            if !keyframe {
                let mut gone = tx
                    .prepare_cached("INSERT INTO gone (sample_id, series_id) VALUES (?1, ?2)")
                    .map_err(sqlite)?;
                for id in state.last.keys().filter(|id| !now.contains_key(id)) {
                    gone.execute(params![sample, id]).map_err(sqlite)?;
                }
            }
            let mut finding_row = tx
                .prepare_cached(
                    "INSERT INTO findings (sample_id, taken_at_ms, rule_id, severity, subject, impact, text_id, netns, interval_s)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(sqlite)?;
            let mut text_row = tx
                .prepare_cached("INSERT INTO finding_texts (json) VALUES (?1)")
                .map_err(sqlite)?;
            for f in findings {
                let json = serde_json::to_string(f).unwrap_or_default();
                let key = (f.rule_id.clone(), f.subject.clone());
                let text_id = match state.texts.get(&key) {
                    Some((same, id)) if *same == json => *id,
                    _ => {
                        text_row.execute([&json]).map_err(sqlite)?;
                        let id = tx.last_insert_rowid();
                        state.texts.insert(key, (json, id));
                        id
                    }
                };
                finding_row
                    .execute(params![
                        sample,
                        taken_at_ms,
                        f.rule_id,
                        f.severity.as_str(),
                        f.subject,
                        if f.impact.is_finite() { f.impact } else { 0.0 },
                        text_id,
                        netns,
                        interval_s
                    ])
                    .map_err(sqlite)?;
            }
        }
        tx.commit().map_err(sqlite)?;
        state.last = now;
        state.since_keyframe = if keyframe {
            1
        } else {
            state.since_keyframe + 1
        };
        state.last_taken_at_ms = Some(taken_at_ms);
        Ok(sample)
    }

    /// The namespaces recorded, "host" first.
    pub fn namespaces(&self) -> Result<Vec<String>> {
        let mut stmt = self.sql(
            self.conn
                .prepare("SELECT DISTINCT netns FROM samples ORDER BY netns != 'host', netns"),
        )?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>());
        self.sql(rows)
    }

    fn sample_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SampleInfo> {
        Ok(SampleInfo {
            id: r.get(0)?,
            netns: r.get(1)?,
            taken_at_ms: r.get(2)?,
            monotonic_ns: r.get(3)?,
            interval_s: r.get(4)?,
            keyframe: r.get(5)?,
        })
    }

    const SAMPLE_COLUMNS: &'static str =
        "id, netns, taken_at_ms, monotonic_ns, interval_s, keyframe";

    /// A namespace's samples taken in [since, until] (ms since the epoch), oldest first.
    pub fn samples(&self, netns: &str, since_ms: i64, until_ms: i64) -> Result<Vec<SampleInfo>> {
        let mut stmt = self.sql(self.conn.prepare(&format!(
            "SELECT {} FROM samples WHERE netns = ?1 AND taken_at_ms BETWEEN ?2 AND ?3 ORDER BY id",
            Self::SAMPLE_COLUMNS
        )))?;
        let rows = stmt
            .query_map(params![netns, since_ms, until_ms], Self::sample_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        self.sql(rows)
    }

    /// The first and last sample times of the whole file, if any.
    pub fn time_range(&self) -> Result<Option<(i64, i64)>> {
        let r: (Option<i64>, Option<i64>) = self.sql(self.conn.query_row(
            "SELECT min(taken_at_ms), max(taken_at_ms) FROM samples",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        ))?;
        Ok(r.0.zip(r.1))
    }

    /// Rebuilds the snapshot of every sample in `wanted` (one namespace's, oldest
    /// first), replaying from the keyframe before the first; `each` gets them in order.
    pub fn replay(
        &self,
        wanted: &[SampleInfo],
        parts: Parts,
        mut each: impl FnMut(&SampleInfo, Snapshot) -> Result<()>,
    ) -> Result<()> {
        let (Some(first), Some(last)) = (wanted.first(), wanted.last()) else {
            return Ok(());
        };
        let netns = &first.netns;
        let start: i64 = self
            .sql(
                self.conn
                    .query_row(
                        "SELECT max(id) FROM samples WHERE netns = ?1 AND keyframe AND id <= ?2",
                        params![netns, first.id],
                        |r| r.get::<_, Option<i64>>(0),
                    )
                    .optional(),
            )?
            .flatten()
            .unwrap_or(first.id);
        // Paths parsed once; one that does not parse is an error only if a sample uses it.
        let names: Names = self
            .series
            .iter()
            .filter(|((path, _), _)| parts.wants(path))
            .map(|((path, kind), id)| (*id, (flat::parse_path(path, *kind), *kind)))
            .collect();
        let chain: Vec<SampleInfo> = {
            let mut stmt = self.sql(self.conn.prepare(&format!(
                "SELECT {} FROM samples WHERE netns = ?1 AND id BETWEEN ?2 AND ?3 ORDER BY id",
                Self::SAMPLE_COLUMNS
            )))?;
            let rows = stmt
                .query_map(params![netns, start, last.id], Self::sample_row)
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
            self.sql(rows)?
        };
        let mut gone: HashMap<i64, Vec<i64>> = HashMap::new();
        {
            let mut stmt = self.sql(self.conn.prepare(
                "SELECT sample_id, series_id FROM gone WHERE sample_id BETWEEN ?1 AND ?2",
            ))?;
            let rows = stmt
                .query_map(params![start, last.id], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<(i64, i64)>>>());
            for (s, id) in self.sql(rows)? {
                gone.entry(s).or_default().push(id);
            }
        }
        let mut stmt = self.sql(
            self.conn
                .prepare("SELECT series_id, value FROM points WHERE sample_id = ?1"),
        )?;
        let wanted_ids: std::collections::HashSet<i64> = wanted.iter().map(|s| s.id).collect();
        let mut state: BTreeMap<i64, Stored> = BTreeMap::new();
        for sample in &chain {
            if sample.keyframe {
                state.clear();
            }
            for id in gone.get(&sample.id).into_iter().flatten() {
                state.remove(id);
            }
            let mut rows = self.sql(stmt.query(params![sample.id]))?;
            while let Some(row) = self.sql(rows.next())? {
                let id: i64 = self.sql(row.get(0))?;
                if names.contains_key(&id) {
                    let v = self.sql(row.get_ref(1))?;
                    state.insert(id, sql_to_stored(v));
                }
            }
            if wanted_ids.contains(&sample.id) {
                let snapshot = self.rebuild(sample.id, &state, &names)?;
                each(sample, snapshot)?;
            }
        }
        Ok(())
    }

    fn rebuild(
        &self,
        sample: i64,
        state: &BTreeMap<i64, Stored>,
        names: &Names,
    ) -> Result<Snapshot> {
        let corrupt = |detail: String| HistoryError::Corrupt {
            path: self.path.clone(),
            sample,
            detail,
        };
        let mut leaves = Vec::with_capacity(state.len());
        for (id, v) in state {
            if let Some((parsed, kind)) = names.get(id) {
                leaves.push((parsed.as_ref().map_err(|e| corrupt(e.clone()))?, *kind, v));
            }
        }
        let mut value = flat::unflatten_parsed(leaves).map_err(corrupt)?;
        if let Value::Object(map) = &mut value {
            for (key, is_array) in SNAPSHOT_DEFAULTS {
                map.entry(key.to_string()).or_insert_with(|| {
                    if *is_array {
                        Value::Array(Vec::new())
                    } else {
                        Value::Object(Default::default())
                    }
                });
            }
        }
        serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))
    }

    /// The last sample of a namespace at or before `t_ms`.
    pub fn sample_at(&self, netns: &str, t_ms: i64) -> Result<Option<SampleInfo>> {
        let r = self.conn.query_row(
            &format!(
                "SELECT {} FROM samples WHERE netns = ?1 AND taken_at_ms <= ?2 ORDER BY taken_at_ms DESC, id DESC LIMIT 1",
                Self::SAMPLE_COLUMNS
            ),
            params![netns, t_ms],
            Self::sample_row,
        );
        self.sql(r.optional())
    }

    /// Findings recorded in [since, until], oldest first (every namespace when None).
    pub fn findings(
        &self,
        netns: Option<&str>,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<FindingRow>> {
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT f.sample_id, f.netns, f.taken_at_ms, f.interval_s, t.json
             FROM findings f JOIN finding_texts t ON t.id = f.text_id
             WHERE f.taken_at_ms BETWEEN ?1 AND ?2 AND (?3 IS NULL OR f.netns = ?3)
             ORDER BY f.taken_at_ms, f.rowid",
        ))?;
        let rows = stmt
            .query_map(params![since_ms, until_ms, netns], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, f64>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        let mut out = Vec::new();
        for (sample_id, netns, taken_at_ms, interval_s, json) in self.sql(rows)? {
            let finding: Finding =
                serde_json::from_str(&json).map_err(|e| HistoryError::Corrupt {
                    path: self.path.clone(),
                    sample: sample_id,
                    detail: format!("a recorded finding does not parse: {e}"),
                })?;
            out.push(FindingRow {
                sample_id,
                netns,
                taken_at_ms,
                interval_s,
                finding,
            });
        }
        Ok(out)
    }

    /// Bytes the file's live pages take (what the size cap counts).
    pub fn used_bytes(&self) -> Result<u64> {
        let q = |p: &str| {
            self.sql(
                self.conn
                    .pragma_query_value(None, p, |r| r.get::<_, i64>(0)),
            )
        };
        let (count, free, size) = (q("page_count")?, q("freelist_count")?, q("page_size")?);
        Ok(((count - free).max(0) * size) as u64)
    }

    /// Folds `dropped` (older samples of one namespace, ascending) into `target`,
    /// so the state replayed at `target` is unchanged and the dropped rows go.
    fn merge_into(
        tx: &rusqlite::Transaction<'_>,
        dropped: &[SampleInfo],
        target: &SampleInfo,
    ) -> rusqlite::Result<()> {
        let ids: Vec<i64> = dropped.iter().map(|s| s.id).collect();
        let delete = |ids: &[i64]| -> rusqlite::Result<()> {
            let mut p = tx.prepare_cached("DELETE FROM points WHERE sample_id = ?1")?;
            let mut g = tx.prepare_cached("DELETE FROM gone WHERE sample_id = ?1")?;
            let mut s = tx.prepare_cached("DELETE FROM samples WHERE id = ?1")?;
            for id in ids {
                p.execute([id])?;
                g.execute([id])?;
                s.execute([id])?;
            }
            Ok(())
        };
        if !target.keyframe {
            let mut all: Vec<&SampleInfo> = dropped.iter().collect();
            all.push(target);
            let from = all.iter().rposition(|s| s.keyframe).unwrap_or(0);
            let keyframe = all[from].keyframe;
            // None: the series went away.
            let mut merged: BTreeMap<i64, Option<rusqlite::types::Value>> = BTreeMap::new();
            let mut points =
                tx.prepare_cached("SELECT series_id, value FROM points WHERE sample_id = ?1")?;
            let mut gone = tx.prepare_cached("SELECT series_id FROM gone WHERE sample_id = ?1")?;
            for s in &all[from..] {
                for id in gone.query_map([s.id], |r| r.get::<_, i64>(0))? {
                    let id = id?;
                    if keyframe {
                        merged.remove(&id);
                    } else {
                        merged.insert(id, None);
                    }
                }
                for row in points.query_map([s.id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, rusqlite::types::Value>(1)?))
                })? {
                    let (id, v) = row?;
                    merged.insert(id, Some(v));
                }
            }
            tx.execute("DELETE FROM points WHERE sample_id = ?1", [target.id])?;
            tx.execute("DELETE FROM gone WHERE sample_id = ?1", [target.id])?;
            let mut put = tx.prepare_cached(
                "INSERT INTO points (sample_id, series_id, value) VALUES (?1, ?2, ?3)",
            )?;
            let mut put_gone =
                tx.prepare_cached("INSERT INTO gone (sample_id, series_id) VALUES (?1, ?2)")?;
            for (id, v) in merged {
                match v {
                    Some(v) => put.execute(params![target.id, id, v])?,
                    None => put_gone.execute(params![target.id, id])?,
                };
            }
            tx.execute(
                "UPDATE samples SET keyframe = ?2 WHERE id = ?1",
                params![target.id, keyframe],
            )?;
        }
        delete(&ids)
    }

    /// Applies the retention: deletes what is older than `keep`, thins what is
    /// older than `rollup_after`, then drops the oldest while over `max_bytes`.
    pub fn prune(&mut self, policy: &Retention, now_ms: i64) -> Result<PruneStats> {
        let mut stats = PruneStats::default();
        let path = self.path.clone();
        let sqlite = |source| HistoryError::Sqlite {
            path: path.clone(),
            source,
        };
        for netns in self.namespaces()? {
            let all = self.samples(&netns, i64::MIN, i64::MAX)?;
            let tx = self.conn.transaction().map_err(sqlite)?;
            // Retention: everything before the cutoff folds into the first sample after it.
            let cutoff = now_ms - policy.keep_ms;
            let split = all.partition_point(|s| s.taken_at_ms < cutoff);
            let (old, kept) = all.split_at(split);
            if !old.is_empty() {
                match kept.first() {
                    Some(target) => Self::merge_into(&tx, old, target).map_err(sqlite)?,
                    None => {
                        for s in old {
                            for table in ["points", "gone"] {
                                tx.execute(
                                    &format!("DELETE FROM {table} WHERE sample_id = ?1"),
                                    [s.id],
                                )
                                .map_err(sqlite)?;
                            }
                            tx.execute("DELETE FROM samples WHERE id = ?1", [s.id])
                                .map_err(sqlite)?;
                        }
                    }
                }
                tx.execute(
                    "DELETE FROM findings WHERE netns = ?1 AND taken_at_ms < ?2",
                    params![netns, cutoff],
                )
                .map_err(sqlite)?;
                tx.execute(
                    "DELETE FROM finding_texts WHERE id NOT IN (SELECT text_id FROM findings)",
                    [],
                )
                .map_err(sqlite)?;
                stats.deleted += old.len();
            }
            // Roll-ups: in each whole step older than rollup_after, the last sample stays.
            let step = policy.rollup_step_ms.max(1);
            let horizon = (now_ms - policy.rollup_after_ms).div_euclid(step) * step;
            let mut kept: Vec<SampleInfo> = kept.to_vec();
            if let Some(first) = kept.first_mut() {
                // merge_into may have made the first a keyframe: re-read it.
                first.keyframe = tx
                    .query_row(
                        "SELECT keyframe FROM samples WHERE id = ?1",
                        [first.id],
                        |r| r.get(0),
                    )
                    .map_err(sqlite)?;
            }
            let mut i = 0;
            let mut previous_kept: Option<i64> = None;
            while i < kept.len() && kept[i].taken_at_ms < horizon {
                let bucket = kept[i].taken_at_ms.div_euclid(step);
                let mut j = i;
                while j + 1 < kept.len()
                    && kept[j + 1].taken_at_ms < horizon
                    && kept[j + 1].taken_at_ms.div_euclid(step) == bucket
                {
                    j += 1;
                }
                if j > i {
                    Self::merge_into(&tx, &kept[i..j], &kept[j]).map_err(sqlite)?;
                    stats.rolled_up += j - i;
                }
                if let Some(prev) = previous_kept {
                    let interval = (kept[j].taken_at_ms - prev) as f64 / 1e3;
                    tx.execute(
                        "UPDATE samples SET interval_s = ?2 WHERE id = ?1 AND interval_s != ?2",
                        params![kept[j].id, interval],
                    )
                    .map_err(sqlite)?;
                }
                previous_kept = Some(kept[j].taken_at_ms);
                i = j + 1;
            }
            tx.commit().map_err(sqlite)?;
            if let Some(w) = self.writers.get_mut(&netns) {
                if stats.deleted > 0 || stats.rolled_up > 0 {
                    // The writer's next sample must not be a change against rows that moved.
                    w.since_keyframe = 0;
                    // Texts only old findings used may be gone.
                    w.texts.clear();
                }
            }
        }
        // The size cap: drop the oldest tenth of the span until under it.
        let mut guard = 0;
        while policy.max_bytes > 0 && self.used_bytes()? > policy.max_bytes && guard < 60 {
            guard += 1;
            let Some((oldest, newest)) = self.time_range()? else {
                break;
            };
            let span = newest - oldest;
            if span <= 0 {
                break;
            }
            let tighter = Retention {
                keep_ms: now_ms - (oldest + span / 10 + 1),
                max_bytes: 0,
                ..*policy
            };
            let more = self.prune(&tighter, now_ms)?;
            stats.deleted += more.deleted;
            stats.rolled_up += more.rolled_up;
        }
        self.sql(self.conn.execute_batch("PRAGMA incremental_vacuum"))?;
        Ok(stats)
    }

    /// `PRAGMA integrity_check`'s verdict ("ok" when sound).
    pub fn integrity_check(&self) -> Result<String> {
        self.sql(
            self.conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0)),
        )
    }
}
