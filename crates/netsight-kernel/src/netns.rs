//! Which network namespace this process is in.

use std::os::unix::fs::MetadataExt as _;

/// The calling thread's namespace: a thread may have entered another one.
const SELF_NETNS: &str = "/proc/thread-self/ns/net";

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

/// The network namespace a process runs in (its inode), if it exists and we may look.
pub fn inode_of_pid(pid: u32) -> Option<u32> {
    inode_of(
        &std::path::Path::new(crate::PROC_ROOT)
            .join(pid.to_string())
            .join("ns/net"),
    )
}

/// True while a process with this pid exists (also one we may not signal).
pub fn process_exists(pid: u32) -> bool {
    std::path::Path::new(crate::PROC_ROOT)
        .join(pid.to_string())
        .exists()
}

/// One network namespace on the host: how to enter it and what runs in it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetnsInfo {
    /// The namespace's inode (`net:[N]`), what drop counts are keyed by.
    pub inode: u32,
    /// Its names under /run/netns (`ip netns`), if any.
    pub names: Vec<String>,
    /// Processes in it, "comm[pid]", fewest pids first (at most 8).
    pub processes: Vec<String>,
    /// Every process in it (their sockets' owners).
    #[serde(skip)]
    pub pids: Vec<u32>,
    /// Container ids and pod uids read from the processes' cgroup paths
    /// ("docker:0123456789ab", "containerd:…", "cri-o:…", "k8s-pod:…").
    pub labels: Vec<String>,
    /// A file to setns() into it: /run/netns/NAME or /proc/PID/ns/net.
    pub handle: std::path::PathBuf,
}

const RUN_NETNS: &str = "/run/netns";

fn inode_of(path: &std::path::Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| u32::try_from(m.ino()).ok())
}

/// Container and pod labels in a /proc/PID/cgroup text (cgroup v1 and v2 layouts
/// of docker, containerd, CRI-O and the kubelet).
pub fn cgroup_labels(cgroup: &str) -> Vec<String> {
    let mut labels = Vec::new();
    let hex_id = |s: &str| {
        let id: String = s.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        (id.len() == 64).then(|| id[..12].to_string())
    };
    for line in cgroup.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        for part in path.split('/') {
            let found = [
                ("docker-", "docker"),
                ("cri-containerd-", "containerd"),
                ("crio-", "cri-o"),
                ("libpod-", "podman"),
            ]
            .iter()
            .find_map(|(prefix, runtime)| {
                Some(format!("{runtime}:{}", hex_id(part.strip_prefix(prefix)?)?))
            })
            .or_else(|| {
                // cgroup v1 docker: /docker/<id>; containerd: /<namespace>/<id>
                hex_id(part)
                    .filter(|_| path.contains("docker"))
                    .map(|id| format!("docker:{id}"))
            })
            .or_else(|| {
                let pod = part.strip_prefix("kubepods-").map_or(part, |p| p);
                let uid = pod.rsplit("pod").next().filter(|_| pod.contains("pod"))?;
                let uid = uid.trim_end_matches(".slice").replace('_', "-");
                (uid.len() == 36 && uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
                    .then(|| format!("k8s-pod:{uid}"))
            });
            if let Some(label) = found {
                if !labels.contains(&label) {
                    labels.push(label);
                }
            }
        }
    }
    labels
}

/// Every network namespace on the host: named ones (/run/netns) and those held
/// only by processes. Needs root to see other users' processes' namespaces.
pub fn list() -> Vec<NetnsInfo> {
    let mut found: std::collections::BTreeMap<u32, NetnsInfo> = std::collections::BTreeMap::new();
    fn entry(
        found: &mut std::collections::BTreeMap<u32, NetnsInfo>,
        inode: u32,
        handle: std::path::PathBuf,
    ) -> &mut NetnsInfo {
        found.entry(inode).or_insert_with(|| NetnsInfo {
            inode,
            names: Vec::new(),
            processes: Vec::new(),
            pids: Vec::new(),
            labels: Vec::new(),
            handle,
        })
    }
    let mut named: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(RUN_NETNS)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    named.sort();
    for (name, path) in named {
        if let Some(inode) = inode_of(&path) {
            entry(&mut found, inode, path).names.push(name);
        }
    }
    let proc_root = std::path::Path::new(crate::PROC_ROOT);
    let mut pids: Vec<u32> = std::fs::read_dir(proc_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let dir = proc_root.join(pid.to_string());
        let Some(inode) = inode_of(&dir.join("ns/net")) else {
            continue;
        };
        let info = entry(&mut found, inode, dir.join("ns/net"));
        info.pids.push(pid);
        if info.processes.len() < 8 {
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            info.processes.push(format!("{}[{pid}]", comm.trim()));
        }
        let cgroup = std::fs::read_to_string(dir.join("cgroup")).unwrap_or_default();
        for label in cgroup_labels(&cgroup) {
            if !info.labels.contains(&label) {
                info.labels.push(label);
            }
        }
    }
    found.into_values().collect()
}

/// Whether this process can see and enter every namespace (root).
pub fn can_enter_all() -> bool {
    rustix::process::geteuid().is_root()
}

/// Moves the calling thread (only it) into the network namespace `handle` names.
/// Its /proc/thread-self/net, sysctls and new sockets then belong to that namespace.
#[allow(unsafe_code)]
pub fn enter_for_this_thread(handle: &std::path::Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let ns = std::fs::File::open(handle)?;
    // SAFETY: setns takes a valid open namespace fd and a flag; it changes only
    // the calling thread's network namespace.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The id this thread's network namespace gives the namespace at `handle`
/// (RTM_GETNSID with NETNSA_FD): what IFLA_LINK_NETNSID says of a veth peer there.
/// None when it has none (-1) or the query fails.
pub fn nsid_of(handle: &std::path::Path) -> Option<i32> {
    use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
    use netlink_packet_route::RouteNetlinkMessage;
    use std::os::fd::AsRawFd as _;
    let target = std::fs::File::open(handle).ok()?;
    let mut request = NsidMessage::default();
    request
        .attributes
        .push(NsidAttribute::Fd(u32::try_from(target.as_raw_fd()).ok()?));
    let reply = crate::netlink_io::request(
        netlink_sys::protocols::NETLINK_ROUTE,
        "rtnetlink",
        RouteNetlinkMessage::GetNsId(request),
        false,
    )
    .ok()?;
    for raw in crate::netlink_io::data_messages(&reply) {
        let message =
            netlink_packet_core::NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw).ok()?;
        if let netlink_packet_core::NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNsId(m)) =
            message.payload
        {
            return m.attributes.iter().find_map(|a| match a {
                NsidAttribute::Id(id) if *id >= 0 => Some(*id),
                _ => None,
            });
        }
    }
    None
}

/// Which of `candidates` (inode, handle) each of `wanted`'s ids names, asked from
/// this thread's namespace; stops as soon as every id is found.
pub fn resolve_nsids(
    wanted: &[i32],
    candidates: &[(u32, std::path::PathBuf)],
) -> std::collections::HashMap<i32, u32> {
    let mut found = std::collections::HashMap::new();
    for (inode, handle) in candidates {
        if wanted.iter().all(|id| found.contains_key(id)) {
            break;
        }
        if let Some(id) = nsid_of(handle) {
            if wanted.contains(&id) {
                found.insert(id, *inode);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_labels_from_cgroup_paths() {
        let id = "4f0b2e1c9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c";
        let docker_v2 = format!("0::/system.slice/docker-{id}.scope\n");
        assert_eq!(cgroup_labels(&docker_v2), vec!["docker:4f0b2e1c9d8a"]);
        let docker_v1 = format!("12:memory:/docker/{id}\n");
        assert_eq!(cgroup_labels(&docker_v1), vec!["docker:4f0b2e1c9d8a"]);
        let k8s = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_5f60_7182_93a4_b5c6d7e8f901.slice/cri-containerd-{id}.scope\n"
        );
        assert_eq!(
            cgroup_labels(&k8s),
            vec![
                "k8s-pod:1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901",
                "containerd:4f0b2e1c9d8a"
            ]
        );
        let crio = format!("0::/machine.slice/crio-{id}.scope");
        assert_eq!(cgroup_labels(&crio), vec!["cri-o:4f0b2e1c9d8a"]);
        assert!(cgroup_labels("0::/user.slice/user-1000.slice/session-2.scope").is_empty());
        assert!(cgroup_labels("garbage without colons").is_empty());
    }
}
