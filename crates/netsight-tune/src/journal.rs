//! Applying sysctl changes all-or-nothing, with a journal of the previous values
//! written before the first change, a confirmation deadline (`--confirm-within`)
//! and an exact rollback.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::TuneError;

/// The sysctl tree of the running kernel as seen from this network namespace
/// (`/proc/sys`), or any directory laid out like it (tests).
#[derive(Debug, Clone)]
pub struct SysctlTree {
    root: PathBuf,
}

impl SysctlTree {
    pub fn live() -> SysctlTree {
        SysctlTree::at("/proc/sys")
    }

    pub fn at(root: impl Into<PathBuf>) -> SysctlTree {
        SysctlTree { root: root.into() }
    }

    /// `net.ipv4.tcp_rmem` -> /proc/sys/net/ipv4/tcp_rmem (`/` also accepted, as sysctl does).
    pub fn path(&self, key: &str) -> PathBuf {
        self.root.join(key.replace('.', "/"))
    }

    /// The file's exact content (with the kernel's tabs and trailing newline).
    pub fn read_raw(&self, key: &str) -> Result<String, TuneError> {
        let path = self.path(key);
        std::fs::read_to_string(&path).map_err(|source| TuneError::Sysctl {
            key: key.to_string(),
            operation: "read",
            path,
            source,
        })
    }

    pub fn write(&self, key: &str, value: &str) -> Result<(), TuneError> {
        let path = self.path(key);
        // One write(2) of the whole line, as `echo value >` does: the kernel parses
        // each write separately and accepts the newline (and tabs between words).
        let line = format!("{}\n", value.trim_end_matches('\n'));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        written.map_err(|source| TuneError::Sysctl {
            key: key.to_string(),
            operation: "write",
            path,
            source,
        })
    }

    /// Writes `value` and reads it back; the kernel may refuse or clamp a value.
    fn write_verified(&self, key: &str, value: &str) -> Result<(), TuneError> {
        self.write(key, value)?;
        let read = self.read_raw(key)?;
        if same_value(&read, value) {
            Ok(())
        } else {
            Err(TuneError::NotTaken {
                key: key.to_string(),
                wrote: value.to_string(),
                read: read.trim_end().to_string(),
            })
        }
    }

    /// Puts back a journaled value and checks the file reads exactly as before.
    fn restore(&self, entry: &JournalEntry) -> Result<(), TuneError> {
        self.write(&entry.key, &entry.previous)?;
        let read = self.read_raw(&entry.key)?;
        if read == entry.previous {
            Ok(())
        } else {
            Err(TuneError::NotTaken {
                key: entry.key.clone(),
                wrote: entry.previous.trim_end().to_string(),
                read: read.trim_end().to_string(),
            })
        }
    }
}

/// Values compare by their whitespace-separated words ("4096\t131072" == "4096 131072").
pub fn same_value(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub key: String,
    /// The file's exact content before netsight first changed it.
    pub previous: String,
    pub applied: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingConfirm {
    pub deadline_unix_ms: u64,
    /// Identifies the watchdog that may revert this apply.
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub version: u32,
    /// The network namespace the values belong to (`net:[4026531840]`).
    pub netns: String,
    pub created_unix_ms: u64,
    pub confirm: Option<PendingConfirm>,
    pub changes: Vec<JournalEntry>,
}

impl Journal {
    pub fn load(path: &Path) -> Result<Option<Journal>, TuneError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(TuneError::State {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| TuneError::CorruptJournal {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })
    }

    /// Written to a temporary file, synced and renamed: a crash leaves the old or the new journal.
    pub fn save(&self, path: &Path) -> Result<(), TuneError> {
        let state_err = |source| TuneError::State {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(state_err)?;
        }
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        let mut file = std::fs::File::create(&tmp).map_err(state_err)?;
        file.write_all(text.as_bytes()).map_err(state_err)?;
        file.sync_all().map_err(state_err)?;
        std::fs::rename(&tmp, path).map_err(state_err)
    }
}

/// The current network namespace: `net:[inode]` as `readlink /proc/self/ns/net`
/// prints it, plus `#cookie` (SO_NETNS_COOKIE, 5.14+). Inode numbers are reused
/// once a namespace is gone; the cookie never is within a boot, so a journal left
/// by a deleted namespace is recognised as stale instead of being rolled back here.
pub fn current_netns() -> String {
    let inode = std::fs::read_link("/proc/self/ns/net")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "net:[unknown]".into());
    match netns_cookie() {
        Some(cookie) => format!("{inode}#{cookie}"),
        None => inode,
    }
}

#[allow(unsafe_code)]
fn netns_cookie() -> Option<u64> {
    const SO_NETNS_COOKIE: libc::c_int = 71;
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")
        .or_else(|_| std::net::UdpSocket::bind("[::1]:0"))
        .ok()?;
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cookie`, a live u64, on a socket we own.
    let rc = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(cookie)
}

/// The journal at `state` if it belongs to this namespace; None if there is none
/// or it belongs to a deleted namespace whose inode this one reuses.
fn load_for(state: &Path, netns: &str) -> Result<Option<Journal>, TuneError> {
    let Some(journal) = Journal::load(state)? else {
        return Ok(None);
    };
    let inode = |id: &str| id.split('#').next().unwrap_or_default().to_string();
    if journal.netns == netns {
        Ok(Some(journal))
    } else if inode(&journal.netns) == inode(netns)
        && journal.netns.contains('#')
        && netns.contains('#')
    {
        Ok(None)
    } else {
        Err(TuneError::OtherNamespace {
            journal: journal.netns,
            current: netns.to_string(),
        })
    }
}

/// /run/netsight/tune-<namespace inode>.json: one journal per network namespace, on
/// tmpfs because sysctl values do not survive a reboot either.
pub fn default_state_path(netns: &str) -> PathBuf {
    let inode: String = netns
        .split('#')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    PathBuf::from(format!("/run/netsight/tune-{inode}.json"))
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SysctlChange {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppliedChange {
    pub key: String,
    pub from: String,
    pub to: String,
}

/// Writes every change or none: each write is read back, and on the first failure
/// everything already changed is restored. The journal (previous values) is on
/// disk before the first write; keys journaled by an earlier apply keep their
/// original previous value, so one rollback undoes every apply.
pub fn apply(
    tree: &SysctlTree,
    state: &Path,
    netns: &str,
    changes: &[SysctlChange],
) -> Result<Vec<AppliedChange>, TuneError> {
    let existing = load_for(state, netns)?;
    let mut todo = Vec::new();
    for c in changes {
        let previous = tree.read_raw(&c.key)?;
        if !same_value(&previous, &c.value) {
            todo.push((c, previous));
        }
    }
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    let mut journal = existing.clone().unwrap_or_else(|| Journal {
        version: 1,
        netns: netns.to_string(),
        created_unix_ms: now_unix_ms(),
        confirm: None,
        changes: Vec::new(),
    });
    for (c, previous) in &todo {
        match journal.changes.iter_mut().find(|e| e.key == c.key) {
            Some(e) => e.applied = c.value.clone(),
            None => journal.changes.push(JournalEntry {
                key: c.key.clone(),
                previous: previous.clone(),
                applied: c.value.clone(),
            }),
        }
    }
    journal.save(state)?;

    let mut done: Vec<JournalEntry> = Vec::new();
    for (c, previous) in &todo {
        let entry = JournalEntry {
            key: c.key.clone(),
            previous: previous.clone(),
            applied: c.value.clone(),
        };
        if let Err(cause) = tree.write_verified(&c.key, &c.value) {
            // Restore this key too if the refused write still changed it.
            if tree.read_raw(&c.key).ok().as_ref() != Some(previous) {
                done.push(entry);
            }
            let restore_failures: Vec<String> = done
                .iter()
                .rev()
                .filter_map(|e| tree.restore(e).err().map(|err| err.to_string()))
                .collect();
            if restore_failures.is_empty() {
                match &existing {
                    Some(j) => j.save(state)?,
                    None => remove_journal(state)?,
                }
            }
            return Err(TuneError::ApplyFailed {
                cause: Box::new(cause),
                restored: done.len() - restore_failures.len(),
                restore_failures,
            });
        }
        done.push(entry);
    }
    Ok(todo
        .into_iter()
        .map(|(c, previous)| AppliedChange {
            key: c.key.clone(),
            from: previous.trim_end().to_string(),
            to: c.value.clone(),
        })
        .collect())
}

fn remove_journal(state: &Path) -> Result<(), TuneError> {
    match std::fs::remove_file(state) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(TuneError::State {
            path: state.to_path_buf(),
            source,
        }),
    }
}

fn load_existing(state: &Path, netns: &str) -> Result<Journal, TuneError> {
    load_for(state, netns)?.ok_or_else(|| TuneError::NoJournal(state.to_path_buf()))
}

/// Restores every journaled value exactly (newest first) and removes the journal.
/// Values that cannot be restored stay journaled and are reported.
pub fn rollback(
    tree: &SysctlTree,
    state: &Path,
    netns: &str,
) -> Result<Vec<JournalEntry>, TuneError> {
    let journal = load_existing(state, netns)?;
    let mut failed = Vec::new();
    let mut failures = Vec::new();
    for entry in journal.changes.iter().rev() {
        if let Err(e) = tree.restore(entry) {
            failures.push(e.to_string());
            failed.push(entry.clone());
        }
    }
    if failed.is_empty() {
        remove_journal(state)?;
        Ok(journal.changes)
    } else {
        failed.reverse();
        Journal {
            changes: failed,
            confirm: None,
            ..journal
        }
        .save(state)?;
        Err(TuneError::RollbackIncomplete(failures))
    }
}

/// Starts the confirmation clock: unless `confirm` runs within `within`, a
/// watchdog holding the returned token rolls everything back.
pub fn arm_confirm(
    state: &Path,
    netns: &str,
    within: Duration,
) -> Result<PendingConfirm, TuneError> {
    let mut journal = load_existing(state, netns)?;
    let now = now_unix_ms();
    let pending = PendingConfirm {
        deadline_unix_ms: now + within.as_millis() as u64,
        token: format!("{}-{now}", std::process::id()),
    };
    journal.confirm = Some(pending.clone());
    journal.save(state)?;
    Ok(pending)
}

/// Keeps the applied values: the watchdog finds its token gone and exits.
pub fn confirm(state: &Path, netns: &str) -> Result<Vec<JournalEntry>, TuneError> {
    let mut journal = match load_existing(state, netns) {
        Err(TuneError::NoJournal(_)) => return Err(TuneError::NothingToConfirm),
        other => other?,
    };
    match &journal.confirm {
        None => Err(TuneError::NothingToConfirm),
        Some(p) if now_unix_ms() >= p.deadline_unix_ms => Err(TuneError::TooLate),
        Some(_) => {
            journal.confirm = None;
            journal.save(state)?;
            Ok(journal.changes)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WatchdogOutcome {
    Confirmed,
    Reverted,
}

/// Waits for the deadline of `token`; reverts unless the apply was confirmed
/// (or rolled back) in the meantime.
pub fn watchdog(
    tree: &SysctlTree,
    state: &Path,
    netns: &str,
    token: &str,
) -> Result<WatchdogOutcome, TuneError> {
    loop {
        let pending = Journal::load(state)?.and_then(|j| j.confirm);
        let Some(p) = pending.filter(|p| p.token == token) else {
            return Ok(WatchdogOutcome::Confirmed);
        };
        let now = now_unix_ms();
        if now >= p.deadline_unix_ms {
            rollback(tree, state, netns)?;
            return Ok(WatchdogOutcome::Reverted);
        }
        std::thread::sleep(Duration::from_millis((p.deadline_unix_ms - now).min(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        dir: PathBuf,
        tree: SysctlTree,
        state: PathBuf,
    }

    impl Fixture {
        fn new(name: &str) -> Fixture {
            let dir =
                std::env::temp_dir().join(format!("netsight-tune-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let tree = SysctlTree::at(dir.join("sys"));
            for (key, value) in [
                ("net.ipv4.tcp_rmem", "4096\t131072\t6291456\n"),
                ("net.core.somaxconn", "128\n"),
                ("net.ipv4.tcp_fin_timeout", "60\n"),
            ] {
                let path = tree.path(key);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, value).unwrap();
            }
            Fixture {
                state: dir.join("state.json"),
                dir,
                tree,
            }
        }

        fn contents(&self) -> Vec<String> {
            [
                "net.ipv4.tcp_rmem",
                "net.core.somaxconn",
                "net.ipv4.tcp_fin_timeout",
            ]
            .iter()
            .map(|k| self.tree.read_raw(k).unwrap())
            .collect()
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn change(key: &str, value: &str) -> SysctlChange {
        SysctlChange {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn apply_then_rollback_restores_bytes() {
        let f = Fixture::new("roundtrip");
        let before = f.contents();
        let applied = apply(
            &f.tree,
            &f.state,
            "net:[1]",
            &[
                change("net.ipv4.tcp_rmem", "4096 131072 33554432"),
                change("net.core.somaxconn", "4096"),
                change("net.ipv4.tcp_fin_timeout", "60"),
            ],
        )
        .unwrap();
        assert_eq!(applied.len(), 2, "unchanged values are skipped");
        assert_eq!(f.tree.read_raw("net.core.somaxconn").unwrap(), "4096\n");
        // A second apply keeps the first previous value.
        apply(
            &f.tree,
            &f.state,
            "net:[1]",
            &[change("net.core.somaxconn", "8192")],
        )
        .unwrap();
        let journal = Journal::load(&f.state).unwrap().unwrap();
        assert_eq!(journal.changes.len(), 2);
        assert_eq!(journal.changes[1].previous, "128\n");
        assert!(matches!(
            rollback(&f.tree, &f.state, "net:[2]"),
            Err(TuneError::OtherNamespace { .. })
        ));
        rollback(&f.tree, &f.state, "net:[1]").unwrap();
        assert_eq!(f.contents(), before);
        assert!(!f.state.exists());
        assert!(matches!(
            rollback(&f.tree, &f.state, "net:[1]"),
            Err(TuneError::NoJournal(_))
        ));
    }

    #[test]
    fn failing_write_midway_changes_nothing() {
        let f = Fixture::new("midway");
        let before = f.contents();
        let err = apply(
            &f.tree,
            &f.state,
            "net:[1]",
            &[
                change("net.ipv4.tcp_rmem", "4096 131072 33554432"),
                change("net.core.somaxconn", "4096"),
                change("net.ipv4.no_such_knob", "1"),
            ],
        )
        .unwrap_err();
        assert!(err.to_string().contains("no_such_knob"), "{err}");
        assert_eq!(f.contents(), before);
        assert!(!f.state.exists());

        // Readable but refusing writes, after two good writes: both restored.
        std::os::unix::fs::symlink("/proc/version", f.tree.path("net.core.refuses")).unwrap();
        let err = apply(
            &f.tree,
            &f.state,
            "net:[1]",
            &[
                change("net.ipv4.tcp_rmem", "4096 131072 33554432"),
                change("net.core.somaxconn", "4096"),
                change("net.core.refuses", "1"),
            ],
        )
        .unwrap_err();
        assert!(
            matches!(&err, TuneError::ApplyFailed { restored: 2, restore_failures, .. } if restore_failures.is_empty()),
            "{err}"
        );
        assert_eq!(f.contents(), before);
        assert!(!f.state.exists());
    }

    #[test]
    fn unconfirmed_apply_reverts() {
        let f = Fixture::new("confirm");
        let before = f.contents();
        apply(
            &f.tree,
            &f.state,
            "net:[1]",
            &[change("net.core.somaxconn", "4096")],
        )
        .unwrap();
        let pending = arm_confirm(&f.state, "net:[1]", Duration::from_millis(300)).unwrap();
        let outcome = watchdog(&f.tree, &f.state, "net:[1]", &pending.token).unwrap();
        assert_eq!(outcome, WatchdogOutcome::Reverted);
        assert_eq!(f.contents(), before);
        assert!(matches!(
            confirm(&f.state, "net:[1]"),
            Err(TuneError::NothingToConfirm)
        ));

        apply(
            &f.tree,
            &f.state,
            "net:[1]",
            &[change("net.core.somaxconn", "4096")],
        )
        .unwrap();
        let pending = arm_confirm(&f.state, "net:[1]", Duration::from_secs(5)).unwrap();
        confirm(&f.state, "net:[1]").unwrap();
        let outcome = watchdog(&f.tree, &f.state, "net:[1]", &pending.token).unwrap();
        assert_eq!(outcome, WatchdogOutcome::Confirmed);
        assert_eq!(f.tree.read_raw("net.core.somaxconn").unwrap(), "4096\n");
    }

    #[test]
    fn journal_of_a_deleted_namespace_is_stale() {
        let f = Fixture::new("stale");
        apply(
            &f.tree,
            &f.state,
            "net:[7]#100",
            &[change("net.core.somaxconn", "4096")],
        )
        .unwrap();
        // Same inode, another cookie: the first namespace is gone; its journal must not be replayed here.
        assert!(matches!(
            rollback(&f.tree, &f.state, "net:[7]#200"),
            Err(TuneError::NoJournal(_))
        ));
        apply(
            &f.tree,
            &f.state,
            "net:[7]#200",
            &[change("net.core.somaxconn", "8192")],
        )
        .unwrap();
        let journal = Journal::load(&f.state).unwrap().unwrap();
        assert_eq!(journal.netns, "net:[7]#200");
        assert_eq!(journal.changes[0].previous, "4096\n");
        assert!(matches!(
            rollback(&f.tree, &f.state, "net:[8]#300"),
            Err(TuneError::OtherNamespace { .. })
        ));
        assert!(default_state_path("net:[4026531840]#1").ends_with("tune-4026531840.json"));
    }

    #[test]
    fn corrupt_journal_is_an_error_not_a_loss() {
        let f = Fixture::new("corrupt");
        std::fs::write(&f.state, "{not json").unwrap();
        let err = rollback(&f.tree, &f.state, "net:[1]").unwrap_err();
        assert!(matches!(err, TuneError::CorruptJournal { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&f.state).unwrap(), "{not json");
    }
}
