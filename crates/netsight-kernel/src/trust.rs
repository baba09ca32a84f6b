//! Whether a file or directory may steer netsight, which runs as root: one
//! another user owns or can write could be swapped for something else.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Why `what` (with metadata `meta`) is not trusted, or None: it must be owned by
/// root or this user and writable by neither group nor others. With
/// `sticky_dir_ok`, a sticky directory (/tmp) may be world-writable: others can
/// create names there but not replace ours.
pub fn untrusted(what: &Path, meta: &std::fs::Metadata, sticky_dir_ok: bool) -> Option<String> {
    let euid = rustix::process::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != euid {
        return Some(format!(
            "{} is owned by uid {}, not by root or this user",
            what.display(),
            meta.uid()
        ));
    }
    let sticky_dir = sticky_dir_ok && meta.is_dir() && meta.mode() & 0o1000 != 0;
    if meta.mode() & 0o022 != 0 && !sticky_dir {
        return Some(format!(
            "{} is writable by group or others (mode {:o})",
            what.display(),
            meta.mode() & 0o7777
        ));
    }
    None
}
