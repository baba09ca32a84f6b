//! Root-owned state under /run/netsight: the one place netsight keeps files it
//! later acts on (tune journals, the lab's host-sysctl journal). A root process
//! must take no instructions from a file another user could have written, so:
//! the directory must be ours and writable by nobody else; files are opened
//! without following symlinks, must be ours, regular and mode 0600 or stricter;
//! writes go to a fresh temporary file that is synced and renamed into place.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// Where netsight keeps state on tmpfs: sysctl values do not survive a reboot either.
pub const DEFAULT_STATE_DIR: &str = "/run/netsight";

/// State files are small JSON documents; anything larger is not ours.
const MAX_STATE_FILE_BYTES: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    #[error("state {path}: {operation}: {source}")]
    Io {
        path: PathBuf,
        operation: &'static str,
        source: std::io::Error,
    },
    #[error("refusing to trust {path}: {why} (netsight only acts on state that root alone can write; remove it and run again)")]
    Untrusted { path: PathBuf, why: String },
    #[error("state file name {0:?} is not a plain file name")]
    BadName(String),
}

impl StateError {
    /// True when the failure is a missing permission (not root).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, StateError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied)
    }
}

/// A directory checked to be owned by this user and writable by nobody else.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

/// An exclusive lock on one state file (flock on `<name>.lock`). Drop removes the
/// lock file, then releases it: no lock files pile up. A waiter that then gets the
/// lock of the removed file sees it is no longer the one at the path and retries.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// True when `file` is still the file at `path` (not unlinked or replaced).
fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(held), Ok(named)) => held.ino() == named.ino() && held.dev() == named.dev(),
        _ => false,
    }
}

fn io_err<'a>(
    path: &'a Path,
    operation: &'static str,
) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        operation,
        source,
    }
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

impl StateDir {
    /// /run/netsight, created 0700 when missing.
    pub fn open_default() -> Result<StateDir, StateError> {
        StateDir::open(DEFAULT_STATE_DIR)
    }

    /// Opens (creating with mode 0700 if missing) a state directory and checks
    /// that it is a real directory, ours, and not writable by group or others.
    pub fn open(path: impl Into<PathBuf>) -> Result<StateDir, StateError> {
        let path = path.into();
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(&path, "create directory")(e)),
        }
        let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path, "stat"))?;
        let untrusted = |why: String| StateError::Untrusted {
            path: path.clone(),
            why,
        };
        if meta.file_type().is_symlink() {
            return Err(untrusted("it is a symbolic link".into()));
        }
        if !meta.is_dir() {
            return Err(untrusted("it is not a directory".into()));
        }
        if meta.uid() != euid() {
            return Err(untrusted(format!(
                "it is owned by uid {}, not {}",
                meta.uid(),
                euid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(untrusted(format!(
                "its mode {:o} lets others write to it",
                meta.mode() & 0o7777
            )));
        }
        Ok(StateDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of a state file; the name must be a plain file name.
    pub fn file(&self, name: &str) -> Result<PathBuf, StateError> {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !plain {
            return Err(StateError::BadName(name.to_string()));
        }
        Ok(self.path.join(name))
    }

    /// Reads a state file if it exists, after checking it is a regular file of
    /// ours that nobody else can write (no symlink is followed).
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        let path = self.file(name)?;
        let mut file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(StateError::Untrusted {
                    path,
                    why: "it is a symbolic link".into(),
                })
            }
            Err(e) => return Err(io_err(&path, "open")(e)),
        };
        check_private_file(&file, &path)?;
        let mut bytes = Vec::new();
        (&mut file)
            .take(MAX_STATE_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err(&path, "read"))?;
        if bytes.len() as u64 > MAX_STATE_FILE_BYTES {
            return Err(StateError::Untrusted {
                path,
                why: format!("it is larger than {MAX_STATE_FILE_BYTES} bytes"),
            });
        }
        Ok(Some(bytes))
    }

    /// Replaces a state file atomically: a new 0600 file (never an existing one,
    /// never through a symlink) is written, synced and renamed over the old one,
    /// so a crash leaves the old or the new content, never a mix.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        let path = self.file(name)?;
        let tmp = self
            .path
            .join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(io_err(&tmp, "create"))?;
        let written = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(&path, "write")(e));
        }
        // The rename is durable once the directory is synced.
        if let Ok(dir) = File::open(&self.path) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Removes a state file; a missing one is not an error.
    pub fn remove(&self, name: &str) -> Result<(), StateError> {
        let path = self.file(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path, "remove")(e)),
        }
    }

    /// Whether a process holds `name`'s lock now. A lock file nobody holds (its
    /// holder was killed before it could remove it) is removed: safe, since a
    /// locker that raced us sees its file is gone and retries (see `lock`).
    pub fn lock_held(&self, name: &str) -> bool {
        let Ok(path) = self.file(&format!("{name}.lock")) else {
            return false;
        };
        let Ok(file) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        else {
            return false;
        };
        match file.try_lock() {
            Ok(()) => {
                if still_at(&file, &path) {
                    let _ = std::fs::remove_file(&path);
                }
                false
            }
            Err(_) => true,
        }
    }

    /// Takes the exclusive lock of a state file, waiting for another holder.
    pub fn lock(&self, name: &str) -> Result<StateLock, StateError> {
        let path = self.file(&format!("{name}.lock"))?;
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .map_err(|e| match e.raw_os_error() {
                    Some(libc::ELOOP) => StateError::Untrusted {
                        path: path.clone(),
                        why: "it is a symbolic link".into(),
                    },
                    _ => io_err(&path, "open lock")(e),
                })?;
            check_private_file(&file, &path)?;
            file.lock().map_err(io_err(&path, "lock"))?;
            // The previous holder may have removed the file while we waited.
            if still_at(&file, &path) {
                return Ok(StateLock { file, path });
            }
        }
    }
}

fn check_private_file(file: &File, path: &Path) -> Result<(), StateError> {
    let meta = file.metadata().map_err(io_err(path, "stat"))?;
    let why = if !meta.is_file() {
        Some("it is not a regular file".to_string())
    } else if meta.uid() != euid() {
        Some(format!("it is owned by uid {}, not {}", meta.uid(), euid()))
    } else if meta.mode() & 0o077 != 0 {
        Some(format!(
            "its mode {:o} gives others access (0600 expected)",
            meta.mode() & 0o7777
        ))
    } else {
        None
    };
    match why {
        Some(why) => Err(StateError::Untrusted {
            path: path.to_path_buf(),
            why,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("netsight-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn round_trip_creates_private_files() {
        let dir = scratch("roundtrip");
        let state = StateDir::open(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(state.read("j.json").unwrap(), None);
        state.write("j.json", b"one").unwrap();
        state.write("j.json", b"two").unwrap();
        assert_eq!(state.read("j.json").unwrap().as_deref(), Some(&b"two"[..]));
        let mode = std::fs::metadata(dir.join("j.json")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        state.remove("j.json").unwrap();
        state.remove("j.json").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn world_writable_or_symlinked_places_are_refused() {
        let dir = scratch("untrusted");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(matches!(
            StateDir::open(&dir),
            Err(StateError::Untrusted { .. })
        ));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let state = StateDir::open(&dir).unwrap();

        // A symlink planted where a state file goes is neither read nor written through.
        let target = dir.join("target");
        std::fs::write(&target, "kernel.core_pattern=|/tmp/x").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&target, dir.join("j.json")).unwrap();
        assert!(matches!(
            state.read("j.json"),
            Err(StateError::Untrusted { .. })
        ));
        std::os::unix::fs::symlink(&target, dir.join("l.lock")).unwrap();
        assert!(matches!(state.lock("l"), Err(StateError::Untrusted { .. })));
        state.write("j.json", b"mine").unwrap();
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"kernel.core_pattern=|/tmp/x"
        );

        // A file others may write is refused.
        std::fs::write(dir.join("open.json"), "x").unwrap();
        std::fs::set_permissions(
            dir.join("open.json"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        assert!(matches!(
            state.read("open.json"),
            Err(StateError::Untrusted { .. })
        ));
        assert!(matches!(
            state.file("../etc/shadow"),
            Err(StateError::BadName(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_of_another_user_are_refused() {
        if euid() != 0 {
            return netsight_testkit::skip(
                "files_of_another_user_are_refused",
                "needs root to chown a file",
            );
        }
        let dir = scratch("owner");
        let state = StateDir::open(&dir).unwrap();
        state.write("j.json", b"x").unwrap();
        std::os::unix::fs::chown(dir.join("j.json"), Some(65534), None).unwrap();
        assert!(matches!(
            state.read("j.json"),
            Err(StateError::Untrusted { .. })
        ));
        std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
        assert!(matches!(
            StateDir::open(&dir),
            Err(StateError::Untrusted { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lock_is_exclusive() {
        let dir = scratch("lock");
        let state = StateDir::open(&dir).unwrap();
        let held = state.lock("j").unwrap();
        let other = File::open(dir.join("j.lock")).unwrap();
        assert!(other.try_lock().is_err());
        // A waiter blocks until the holder is done, then holds a fresh lock file.
        let waiter = {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let _lock = StateDir::open(&dir).unwrap().lock("j").unwrap();
                std::fs::metadata(dir.join("j.lock")).is_ok()
            })
        };
        drop(held);
        assert!(
            waiter.join().unwrap(),
            "the waiter held the file at the path"
        );
        assert!(other.try_lock().is_ok(), "the old file is free");
        assert!(
            !dir.join("j.lock").exists(),
            "a released lock leaves no file behind"
        );
        // A holder killed before it could remove its file: nobody holds it any more.
        let held = state.lock("k").unwrap();
        std::mem::forget(held);
        assert!(state.lock_held("k"), "held by this process' open file");
        std::fs::write(dir.join("stale.lock"), b"").unwrap();
        assert!(!state.lock_held("stale"));
        assert!(
            !dir.join("stale.lock").exists(),
            "a stale lock file is removed"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
