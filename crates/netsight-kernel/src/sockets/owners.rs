//! Which process owns which socket: every /proc/PID/fd/* link that reads
//! "socket:[INODE]". Done once per run; costs one readlink per open fd.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::ProcessRef;

/// The inode → owner map and whether every process could be read.
#[derive(Debug, Default)]
pub struct Owners {
    /// Filled by the /proc scan (empty when `records` came from the iterator).
    pub by_inode: HashMap<u32, ProcessRef>,
    /// Iterator records, as the kernel wrote them (empty after a /proc scan).
    pub records: Vec<u8>,
    pub complete: bool,
    /// "bpf_iter" or "proc_fd": how the owners were found.
    pub method: &'static str,
}

/// Owners of the running system: the BPF iterator when privileges allow (one
/// read), else the /proc/PID/fd scan; `bpf_error` says why the iterator was not used.
pub fn scan_live(proc_root: &Path) -> (Owners, Option<String>) {
    // In a child namespace (a container, one of `doctor --netns all`'s), only its
    // own processes are read: a few readlinks instead of loading the iterator.
    if proc_root == Path::new(crate::PROC_ROOT) && crate::netns::in_child() {
        if let Some(me) = crate::netns::self_inode() {
            return (scan_netns(proc_root, me), None);
        }
    }
    if proc_root == Path::new("/proc") {
        match super::owners_bpf::scan() {
            Ok(records) => {
                return (
                    Owners {
                        by_inode: HashMap::new(),
                        records,
                        complete: true,
                        method: "bpf_iter",
                    },
                    None,
                )
            }
            Err(e) => return (scan(proc_root), Some(e)),
        }
    }
    (scan(proc_root), None)
}

/// Threads for the scan: readlink on /proc/PID/fd costs ~3 µs of kernel time per
/// fd, so with tens of thousands of sockets the scan is worth spreading over cores.
const SCAN_THREADS: usize = 2;

pub fn scan(proc_root: &Path) -> Owners {
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return Owners::default();
    };
    let pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    let parts: Vec<Owners> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..SCAN_THREADS)
            .map(|t| {
                let mine: Vec<u32> = pids.iter().skip(t).step_by(SCAN_THREADS).copied().collect();
                scope.spawn(move || scan_pids(proc_root, &mine))
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut owners = Owners {
        by_inode: HashMap::new(),
        complete: parts.len() == SCAN_THREADS,
        records: Vec::new(),
        method: "proc_fd",
    };
    for part in parts {
        owners.complete &= part.complete;
        for (inode, p) in part.by_inode {
            owners.by_inode.entry(inode).or_insert(p);
        }
    }
    owners
}

/// The /proc scan restricted to processes in the network namespace `inode`.
fn scan_netns(proc_root: &Path, inode: u32) -> Owners {
    use std::os::unix::fs::MetadataExt as _;
    let pids: Vec<u32> = std::fs::read_dir(proc_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|pid: &u32| {
            std::fs::metadata(proc_root.join(pid.to_string()).join("ns/net"))
                .is_ok_and(|m| m.ino() == u64::from(inode))
        })
        .collect();
    scan_pids(proc_root, &pids)
}

/// The /proc scan of these processes only.
pub fn scan_of(proc_root: &Path, pids: &[u32]) -> Owners {
    scan_pids(proc_root, pids)
}

fn scan_pids(proc_root: &Path, pids: &[u32]) -> Owners {
    let mut owners = Owners {
        by_inode: HashMap::new(),
        complete: true,
        records: Vec::new(),
        method: "proc_fd",
    };
    for &pid in pids {
        let dir = proc_root.join(pid.to_string());
        let fds = match std::fs::read_dir(dir.join("fd")) {
            Ok(fds) => fds,
            Err(e) => {
                // A process that exited meanwhile is fine; one we may not read is not.
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    owners.complete = false;
                }
                continue;
            }
        };
        let mut comm: Option<Arc<str>> = None;
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = socket_inode(target.as_os_str().as_encoded_bytes()) else {
                continue;
            };
            let comm = comm
                .get_or_insert_with(|| {
                    std::fs::read_to_string(dir.join("comm"))
                        .map(|c| c.trim_end().to_string())
                        .unwrap_or_default()
                        .into()
                })
                .clone();
            owners
                .by_inode
                .entry(inode)
                .or_insert(ProcessRef { pid, comm });
        }
    }
    owners
}

/// "socket:[12345]" → 12345.
fn socket_inode(link: &[u8]) -> Option<u32> {
    let rest = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(rest).ok()?.parse().ok()
}

/// The bundle's form: the iterator's 32-byte records, whichever way owners were found.
pub fn to_records(owners: &Owners) -> Vec<u8> {
    if owners.by_inode.is_empty() {
        return owners.records.clone();
    }
    let mut out = Vec::with_capacity(owners.by_inode.len() * 32);
    for (inode, p) in &owners.by_inode {
        super::owners_bpf::push_record(&mut out, p.pid, *inode, &p.comm);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inode_links() {
        assert_eq!(socket_inode(b"socket:[12345]"), Some(12345));
        assert_eq!(socket_inode(b"pipe:[1]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
    }

    #[test]
    fn own_socket_is_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let owners = scan(Path::new("/proc"));
        let me = std::process::id();
        assert!(
            owners.by_inode.values().any(|p| p.pid == me),
            "our listener's inode"
        );
        drop(listener);
        let back = super::super::owners_bpf::parse_records(&to_records(&owners));
        let trimmed: HashMap<u32, ProcessRef> = owners
            .by_inode
            .iter()
            .map(|(i, p)| {
                (
                    *i,
                    ProcessRef {
                        pid: p.pid,
                        comm: p.comm.chars().take(15).collect::<String>().into(),
                    },
                )
            })
            .collect();
        assert_eq!(back, trimmed);
    }
}
