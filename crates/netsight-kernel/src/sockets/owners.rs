//! Which process owns which socket: every /proc/PID/fd/* link that reads
//! "socket:[INODE]". Done once per run; costs one readlink per open fd.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::ProcessRef;

/// The inode → owner map and whether every process could be read.
#[derive(Debug, Default)]
pub struct Owners {
    pub by_inode: HashMap<u32, ProcessRef>,
    pub complete: bool,
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
    };
    for part in parts {
        owners.complete &= part.complete;
        for (inode, p) in part.by_inode {
            owners.by_inode.entry(inode).or_insert(p);
        }
    }
    owners
}

fn scan_pids(proc_root: &Path, pids: &[u32]) -> Owners {
    let mut owners = Owners {
        by_inode: HashMap::new(),
        complete: true,
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

/// The bundle's text form: "INODE PID COMM" per line (comm may hold spaces).
pub fn to_text(owners: &Owners) -> String {
    let mut s = String::with_capacity(owners.by_inode.len() * 24);
    for (inode, p) in &owners.by_inode {
        s.push_str(&format!("{inode} {} {}\n", p.pid, p.comm));
    }
    s
}

pub fn parse_text(text: &str) -> HashMap<u32, ProcessRef> {
    let mut comms: HashMap<&str, Arc<str>> = HashMap::new();
    text.lines()
        .filter_map(|line| {
            let mut f = line.splitn(3, ' ');
            let inode = f.next()?.parse().ok()?;
            let pid = f.next()?.parse().ok()?;
            let comm = f.next().unwrap_or("");
            let comm = comms.entry(comm).or_insert_with(|| comm.into()).clone();
            Some((inode, ProcessRef { pid, comm }))
        })
        .collect()
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
        let text = to_text(&owners);
        assert_eq!(parse_text(&text), owners.by_inode);
    }
}
