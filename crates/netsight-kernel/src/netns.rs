//! Which network namespace this process is in.

use std::os::unix::fs::MetadataExt as _;

/// The inode number of this process's network namespace (what
/// `readlink /proc/self/ns/net` shows, and what BPF sees as net->ns.inum).
pub fn self_inode() -> Option<u32> {
    std::fs::metadata("/proc/self/ns/net")
        .ok()
        .and_then(|m| u32::try_from(m.ino()).ok())
}

/// True inside a child network namespace (a container, `ip netns exec`): the
/// init-only sysctl table (netdev_max_backlog) is absent there.
pub fn in_child() -> bool {
    crate::sysctl_tree::SysctlTree::live().is_child_netns()
}
