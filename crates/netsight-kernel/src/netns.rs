//! Which network namespace this process is in.

use std::os::unix::fs::MetadataExt as _;

const SELF_NETNS: &str = "/proc/self/ns/net";

/// The inode number of this process's network namespace (what
/// `readlink /proc/self/ns/net` shows, and what BPF sees as net->ns.inum).
pub fn self_inode() -> Option<u32> {
    std::fs::metadata(SELF_NETNS)
        .ok()
        .and_then(|m| u32::try_from(m.ino()).ok())
}

/// True inside a child network namespace (a container, `ip netns exec`): the
/// init-only sysctl table (netdev_max_backlog) is absent there.
pub fn in_child() -> bool {
    crate::sysctl_tree::SysctlTree::live().is_child_netns()
}

/// This process's network namespace as `readlink /proc/self/ns/net` prints it
/// (`net:[4026531840]`).
pub fn self_link() -> Option<String> {
    std::fs::read_link(SELF_NETNS)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// True while a process with this pid exists (also one we may not signal).
pub fn process_exists(pid: u32) -> bool {
    std::path::Path::new(crate::PROC_ROOT)
        .join(pid.to_string())
        .exists()
}
