//! Applying sysctl changes all-or-nothing, with a journal of the previous values
//! written before the first change, a confirmation deadline (`--confirm-within`)
//! and an exact rollback. The journal lives in a root-owned state directory, is
//! locked for every change, and the watchdog that may revert it holds a lock of
//! its own while it lives, so anyone can tell whether it is still there.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netsight_kernel::state_dir::{StateDir, StateLock};
pub use netsight_kernel::sysctl_tree::{same_value, SysctlKey, SysctlTree};
use serde::{Deserialize, Serialize};

use crate::TuneError;

fn key_of(name: &str) -> Result<SysctlKey, TuneError> {
    Ok(SysctlKey::parse(name)?)
}

/// Writes `value` and reads it back; the kernel may refuse or clamp a value.
fn write_verified(tree: &SysctlTree, key: &str, value: &str) -> Result<(), TuneError> {
    let k = key_of(key)?;
    tree.write(&k, value)?;
    let read = tree.read_raw(&k)?;
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

fn read_raw(tree: &SysctlTree, key: &str) -> Result<String, TuneError> {
    Ok(tree.read_raw(&key_of(key)?)?)
}

/// Puts back a journaled value and checks the file reads exactly as before.
fn restore(tree: &SysctlTree, entry: &JournalEntry) -> Result<(), TuneError> {
    let k = key_of(&entry.key)?;
    tree.write(&k, &entry.previous)?;
    let read = tree.read_raw(&k)?;
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

/// The journal of one network namespace in a trusted state directory:
/// `tune-<namespace inode>.json`, its lock, and the watchdog's lock.
#[derive(Debug, Clone)]
pub struct JournalStore {
    dir: StateDir,
    name: String,
}

impl JournalStore {
    /// The store for `netns` under `dir` (default /run/netsight), which must be
    /// root's and writable by nobody else.
    pub fn open(dir: Option<&Path>, netns: &str) -> Result<JournalStore, TuneError> {
        let dir = match dir {
            Some(d) => StateDir::open(d)?,
            None => StateDir::open_default()?,
        };
        let inode: String = netns
            .split('#')
            .next()
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        Ok(JournalStore {
            dir,
            name: format!("tune-{inode}"),
        })
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join(format!("{}.json", self.name))
    }

    pub fn load(&self) -> Result<Option<Journal>, TuneError> {
        let Some(bytes) = self.dir.read(&format!("{}.json", self.name))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| TuneError::CorruptJournal {
                path: self.path(),
                detail: e.to_string(),
            })
    }

    /// Written to a temporary file, synced and renamed: a crash leaves the old or the new journal.
    pub fn save(&self, journal: &Journal) -> Result<(), TuneError> {
        let text = serde_json::to_vec_pretty(journal).unwrap_or_default();
        Ok(self.dir.write(&format!("{}.json", self.name), &text)?)
    }

    fn remove(&self) -> Result<(), TuneError> {
        Ok(self.dir.remove(&format!("{}.json", self.name))?)
    }

    /// Serialises applies, rollbacks, confirmations and the watchdog's revert.
    pub fn lock(&self) -> Result<StateLock, TuneError> {
        Ok(self.dir.lock(&self.name)?)
    }

    fn watchdog_lock_name(&self) -> String {
        format!("{}-watchdog", self.name)
    }

    /// Held by the watchdog for as long as it runs.
    pub fn hold_watchdog(&self) -> Result<StateLock, TuneError> {
        Ok(self.dir.lock(&self.watchdog_lock_name())?)
    }

    /// Whether a watchdog process holds its lock now (a killed one's file is removed).
    pub fn watchdog_alive(&self) -> bool {
        self.dir.lock_held(&self.watchdog_lock_name())
    }
}

/// The current network namespace: `net:[inode]` as `readlink /proc/self/ns/net`
/// prints it, plus `#cookie` (SO_NETNS_COOKIE, 5.14+). Inode numbers are reused
/// once a namespace is gone; the cookie never is within a boot, so a journal left
/// by a deleted namespace is recognised as stale instead of being rolled back here.
pub fn current_netns() -> String {
    let inode = netsight_kernel::netns::self_link().unwrap_or_else(|| "net:[unknown]".into());
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

/// The journal if it belongs to this namespace; None if there is none or it
/// belongs to a deleted namespace whose inode this one reuses.
fn load_for(store: &JournalStore, netns: &str) -> Result<Option<Journal>, TuneError> {
    let Some(journal) = store.load()? else {
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
    store: &JournalStore,
    netns: &str,
    changes: &[SysctlChange],
) -> Result<Vec<AppliedChange>, TuneError> {
    let _lock = store.lock()?;
    let existing = load_for(store, netns)?;
    let mut todo = Vec::new();
    for c in changes {
        let previous = read_raw(tree, &c.key)?;
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
    store.save(&journal)?;

    let mut done: Vec<JournalEntry> = Vec::new();
    for (c, previous) in &todo {
        let entry = JournalEntry {
            key: c.key.clone(),
            previous: previous.clone(),
            applied: c.value.clone(),
        };
        if let Err(cause) = write_verified(tree, &c.key, &c.value) {
            // Restore this key too if the refused write still changed it.
            if read_raw(tree, &c.key).ok().as_ref() != Some(previous) {
                done.push(entry);
            }
            let restore_failures: Vec<String> = done
                .iter()
                .rev()
                .filter_map(|e| restore(tree, e).err().map(|err| err.to_string()))
                .collect();
            if restore_failures.is_empty() {
                match &existing {
                    Some(j) => store.save(j)?,
                    None => store.remove()?,
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

fn load_existing(store: &JournalStore, netns: &str) -> Result<Journal, TuneError> {
    load_for(store, netns)?.ok_or_else(|| TuneError::NoJournal(store.path()))
}

/// Restores every journaled value exactly (newest first) and removes the journal.
/// Values that cannot be restored stay journaled and are reported.
pub fn rollback(
    tree: &SysctlTree,
    store: &JournalStore,
    netns: &str,
) -> Result<Vec<JournalEntry>, TuneError> {
    let _lock = store.lock()?;
    rollback_locked(tree, store, netns)
}

fn rollback_locked(
    tree: &SysctlTree,
    store: &JournalStore,
    netns: &str,
) -> Result<Vec<JournalEntry>, TuneError> {
    let journal = load_existing(store, netns)?;
    let mut failed = Vec::new();
    let mut failures = Vec::new();
    for entry in journal.changes.iter().rev() {
        if let Err(e) = restore(tree, entry) {
            failures.push(e.to_string());
            failed.push(entry.clone());
        }
    }
    if failed.is_empty() {
        store.remove()?;
        Ok(journal.changes)
    } else {
        failed.reverse();
        store.save(&Journal {
            changes: failed,
            confirm: None,
            ..journal
        })?;
        Err(TuneError::RollbackIncomplete(failures))
    }
}

/// Starts the confirmation clock: unless `confirm` runs within `within`, a
/// watchdog holding the returned token rolls everything back.
pub fn arm_confirm(
    store: &JournalStore,
    netns: &str,
    within: Duration,
) -> Result<PendingConfirm, TuneError> {
    let _lock = store.lock()?;
    let mut journal = load_existing(store, netns)?;
    let now = now_unix_ms();
    let pending = PendingConfirm {
        deadline_unix_ms: now.saturating_add(within.as_millis() as u64),
        token: format!("{}-{now}", std::process::id()),
    };
    journal.confirm = Some(pending.clone());
    store.save(&journal)?;
    Ok(pending)
}

/// What `confirm` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ConfirmOutcome {
    /// Kept in time; `watchdog_was_alive` false means nothing would have reverted them.
    Kept {
        changes: Vec<JournalEntry>,
        watchdog_was_alive: bool,
    },
    /// Too late, and the watchdog is reverting them.
    BeingReverted,
    /// Too late, the watchdog was gone: reverted now, by this call.
    RevertedNow(Vec<JournalEntry>),
}

/// Keeps the applied values if the deadline has not passed: the watchdog finds
/// its token gone and exits. Past the deadline it says what really happens.
pub fn confirm(
    tree: &SysctlTree,
    store: &JournalStore,
    netns: &str,
) -> Result<ConfirmOutcome, TuneError> {
    let lock = store.lock()?;
    let mut journal = match load_existing(store, netns) {
        Err(TuneError::NoJournal(_)) => return Err(TuneError::NothingToConfirm),
        other => other?,
    };
    let watchdog_was_alive = store.watchdog_alive();
    match &journal.confirm {
        None => Err(TuneError::NothingToConfirm),
        Some(p) if now_unix_ms() >= p.deadline_unix_ms => {
            if watchdog_was_alive {
                Ok(ConfirmOutcome::BeingReverted)
            } else {
                let reverted = rollback_locked(tree, store, netns)?;
                drop(lock);
                Ok(ConfirmOutcome::RevertedNow(reverted))
            }
        }
        Some(_) => {
            journal.confirm = None;
            store.save(&journal)?;
            Ok(ConfirmOutcome::Kept {
                changes: journal.changes,
                watchdog_was_alive,
            })
        }
    }
}

/// Reverts an apply whose confirmation deadline passed with no watchdog left to
/// do it (it was killed, or the machine was short of memory): any netsight run in
/// the namespace calls this. None when there was nothing to revert.
pub fn revert_if_expired(
    tree: &SysctlTree,
    store: &JournalStore,
    netns: &str,
) -> Result<Option<Vec<JournalEntry>>, TuneError> {
    let Ok(Some(journal)) = load_for(store, netns) else {
        return Ok(None);
    };
    let expired = journal
        .confirm
        .as_ref()
        .is_some_and(|p| now_unix_ms() >= p.deadline_unix_ms);
    if !expired || store.watchdog_alive() {
        return Ok(None);
    }
    let _lock = store.lock()?;
    // Re-read under the lock: a confirm or rollback may have come first.
    let still = load_for(store, netns)?
        .and_then(|j| j.confirm)
        .is_some_and(|p| now_unix_ms() >= p.deadline_unix_ms);
    if !still || store.watchdog_alive() {
        return Ok(None);
    }
    rollback_locked(tree, store, netns).map(Some)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WatchdogOutcome {
    Confirmed,
    Reverted,
}

/// Holds the watchdog lock (calling `ready` once it does), waits for the deadline
/// of `token` and reverts unless the apply was confirmed (or rolled back) meanwhile.
pub fn watchdog(
    tree: &SysctlTree,
    store: &JournalStore,
    netns: &str,
    token: &str,
    ready: impl FnOnce(),
) -> Result<WatchdogOutcome, TuneError> {
    let _alive = store.hold_watchdog()?;
    ready();
    loop {
        let pending = store.load()?.and_then(|j| j.confirm);
        let Some(p) = pending.filter(|p| p.token == token) else {
            return Ok(WatchdogOutcome::Confirmed);
        };
        let now = now_unix_ms();
        if now >= p.deadline_unix_ms {
            let _lock = store.lock()?;
            let still = store
                .load()?
                .and_then(|j| j.confirm)
                .is_some_and(|p| p.token == token);
            if !still {
                return Ok(WatchdogOutcome::Confirmed);
            }
            rollback_locked(tree, store, netns)?;
            return Ok(WatchdogOutcome::Reverted);
        }
        std::thread::sleep(Duration::from_millis((p.deadline_unix_ms - now).min(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    struct Fixture {
        dir: PathBuf,
        tree: SysctlTree,
        state: JournalStore,
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
                let path = tree.path(&SysctlKey::parse(key).unwrap());
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, value).unwrap();
            }
            Fixture {
                state: JournalStore::open(Some(&dir.join("state")), "net:[1]").unwrap(),
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
            .map(|k| read_raw(&self.tree, k).unwrap())
            .collect()
        }
    }

    impl Fixture {
        /// Applies one change in namespace net:[1], which must succeed.
        fn apply_one(&self, key: &str, value: &str) {
            apply(&self.tree, &self.state, "net:[1]", &[change(key, value)]).unwrap();
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
        assert_eq!(read_raw(&f.tree, "net.core.somaxconn").unwrap(), "4096\n");
        // A second apply keeps the first previous value.
        apply(
            &f.tree,
            &f.state,
            "net:[1]",
            &[change("net.core.somaxconn", "8192")],
        )
        .unwrap();
        let journal = f.state.load().unwrap().unwrap();
        assert_eq!(journal.changes.len(), 2);
        assert_eq!(journal.changes[1].previous, "128\n");
        assert!(matches!(
            rollback(&f.tree, &f.state, "net:[2]"),
            Err(TuneError::OtherNamespace { .. })
        ));
        rollback(&f.tree, &f.state, "net:[1]").unwrap();
        assert_eq!(f.contents(), before);
        assert!(!f.state.path().exists());
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
        assert!(!f.state.path().exists());
    }

    #[test]
    fn unconfirmed_apply_reverts() {
        let f = Fixture::new("confirm");
        let before = f.contents();
        f.apply_one("net.core.somaxconn", "4096");
        let pending = arm_confirm(&f.state, "net:[1]", Duration::from_millis(300)).unwrap();
        let outcome = watchdog(&f.tree, &f.state, "net:[1]", &pending.token, || ()).unwrap();
        assert_eq!(outcome, WatchdogOutcome::Reverted);
        assert_eq!(f.contents(), before);
        assert!(matches!(
            confirm(&f.tree, &f.state, "net:[1]"),
            Err(TuneError::NothingToConfirm)
        ));

        f.apply_one("net.core.somaxconn", "4096");
        let pending = arm_confirm(&f.state, "net:[1]", Duration::from_secs(5)).unwrap();
        confirm(&f.tree, &f.state, "net:[1]").unwrap();
        let outcome = watchdog(&f.tree, &f.state, "net:[1]", &pending.token, || ()).unwrap();
        assert_eq!(outcome, WatchdogOutcome::Confirmed);
        assert_eq!(read_raw(&f.tree, "net.core.somaxconn").unwrap(), "4096\n");
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
        let journal = f.state.load().unwrap().unwrap();
        assert_eq!(journal.netns, "net:[7]#200");
        assert_eq!(journal.changes[0].previous, "4096\n");
        assert!(matches!(
            rollback(&f.tree, &f.state, "net:[8]#300"),
            Err(TuneError::OtherNamespace { .. })
        ));
        let store = JournalStore::open(Some(&f.dir.join("state")), "net:[4026531840]#1").unwrap();
        assert!(store.path().ends_with("tune-4026531840.json"));
    }

    #[test]
    fn corrupt_journal_is_an_error_not_a_loss() {
        let f = Fixture::new("corrupt");
        f.state
            .save(&Journal {
                version: 1,
                netns: "net:[1]".into(),
                created_unix_ms: 0,
                confirm: None,
                changes: Vec::new(),
            })
            .unwrap();
        std::fs::write(f.state.path(), "{not json").unwrap();
        let err = rollback(&f.tree, &f.state, "net:[1]").unwrap_err();
        assert!(matches!(err, TuneError::CorruptJournal { .. }), "{err}");
        assert_eq!(
            std::fs::read_to_string(f.state.path()).unwrap(),
            "{not json"
        );
    }

    #[test]
    fn concurrent_applies_keep_one_consistent_journal() {
        let f = Fixture::new("concurrent");
        let before = f.contents();
        std::thread::scope(|s| {
            for i in 0..8 {
                let (tree, state) = (&f.tree, &f.state);
                s.spawn(move || {
                    let value = format!("{}", 1000 + i);
                    apply(
                        tree,
                        state,
                        "net:[1]",
                        &[change("net.core.somaxconn", &value)],
                    )
                    .unwrap();
                });
            }
        });
        let journal = f.state.load().unwrap().unwrap();
        assert_eq!(journal.changes.len(), 1);
        assert_eq!(
            journal.changes[0].previous, "128\n",
            "the first previous value is kept"
        );
        rollback(&f.tree, &f.state, "net:[1]").unwrap();
        assert_eq!(f.contents(), before);
    }

    #[test]
    fn a_dead_watchdog_is_reported_and_its_expired_apply_reverted() {
        let f = Fixture::new("deadwatchdog");
        let before = f.contents();
        f.apply_one("net.core.somaxconn", "4096");
        arm_confirm(&f.state, "net:[1]", Duration::from_secs(60)).unwrap();
        // No watchdog runs: confirming in time says nothing would have reverted.
        match confirm(&f.tree, &f.state, "net:[1]").unwrap() {
            ConfirmOutcome::Kept {
                watchdog_was_alive, ..
            } => assert!(!watchdog_was_alive),
            other => panic!("{other:?}"),
        }
        // Expired with no watchdog: the next run reverts; confirm tells the truth.
        arm_confirm(&f.state, "net:[1]", Duration::from_millis(1)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(matches!(
            confirm(&f.tree, &f.state, "net:[1]").unwrap(),
            ConfirmOutcome::RevertedNow(_)
        ));
        assert_eq!(f.contents(), before);

        f.apply_one("net.core.somaxconn", "4096");
        arm_confirm(&f.state, "net:[1]", Duration::from_millis(1)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        // A live watchdog is left to do its job.
        let held = f.state.hold_watchdog().unwrap();
        assert!(f.state.watchdog_alive());
        assert_eq!(
            revert_if_expired(&f.tree, &f.state, "net:[1]").unwrap(),
            None
        );
        drop(held);
        assert!(!f.state.watchdog_alive());
        let reverted = revert_if_expired(&f.tree, &f.state, "net:[1]")
            .unwrap()
            .unwrap();
        assert_eq!(reverted.len(), 1);
        assert_eq!(f.contents(), before);
        assert_eq!(
            revert_if_expired(&f.tree, &f.state, "net:[1]").unwrap(),
            None
        );
    }
}
