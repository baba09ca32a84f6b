//! Live collection: the only code that reads the running kernel. It gathers raw
//! bytes; `Snapshot::from_raw` parses them.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::KernelError;
use crate::ethtool::{self, EthtoolDump};
use crate::procfs::{netdev, sockstat};
use crate::raw::{key, RawMeta, RawSnapshot, FORMAT_VERSION};
use crate::support::NOT_SUPPORTED;
use crate::sysctl::{proc_relative_path, DIAGNOSTIC_SYSCTLS};
use crate::{link, qdisc, sockets};

/// /proc files read on every snapshot, relative to the proc root.
pub const PROC_FILES: &[&str] = &[
    "net/snmp",
    "net/netstat",
    "net/snmp6",
    "net/sockstat",
    "net/sockstat6",
    "net/dev",
    "net/softnet_stat",
    "net/stat/nf_conntrack",
    "sys/kernel/osrelease",
    "sys/kernel/hostname",
];

/// The parts a collection is made of, in the order they are read. Proc comes
/// first: the others read the interfaces and socket counts it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourcePart {
    Proc,
    Sysctls,
    Sysfs,
    Netlink,
    IptablesLegacy,
    DriverStats,
    Sockets,
}

impl SourcePart {
    pub const ALL: [SourcePart; 7] = [
        SourcePart::Proc,
        SourcePart::Sysctls,
        SourcePart::Sysfs,
        SourcePart::Netlink,
        SourcePart::IptablesLegacy,
        SourcePart::DriverStats,
        SourcePart::Sockets,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SourcePart::Proc => "proc",
            SourcePart::Sysctls => "sysctls",
            SourcePart::Sysfs => "sysfs",
            SourcePart::Netlink => "netlink",
            SourcePart::IptablesLegacy => "iptables_legacy",
            SourcePart::DriverStats => "driver_stats",
            SourcePart::Sockets => "sockets",
        }
    }
}

/// Where a live collection reads from. Tests point the roots at recorded
/// fixture trees and turn netlink off.
#[derive(Debug, Clone)]
pub struct LiveSource {
    pub proc_root: PathBuf,
    pub sys_root: PathBuf,
    /// rtnetlink, ethtool netlink and the ethtool ioctl talk to the running kernel
    /// whatever the roots say; off for fixture runs.
    pub use_kernel_sockets: bool,
    /// Also dump every TCP/UDP socket (sock_diag): costly with many sockets, so
    /// only verbs that use them ask.
    pub include_sockets: bool,
    /// With sockets, also find each socket's process (one readlink per open fd
    /// of every process: the dominant cost at tens of thousands of sockets).
    pub include_socket_owners: bool,
    /// Where `net/*` files are read when not under `proc_root` (a thread that
    /// entered another network namespace reads /proc/thread-self/net).
    pub net_root: Option<PathBuf>,
    /// False when sysfs shows another namespace than this thread's (see
    /// `for_this_thread`): interface speeds and queues are not read.
    pub read_sysfs: bool,
    /// The processes whose sockets are looked up, when already known (the
    /// namespace's, from `netns::list`); None scans every process.
    pub owner_pids: Option<Vec<u32>>,
}

impl Default for LiveSource {
    fn default() -> Self {
        LiveSource {
            proc_root: PathBuf::from(crate::PROC_ROOT),
            sys_root: PathBuf::from(crate::SYS_ROOT),
            use_kernel_sockets: true,
            include_sockets: false,
            include_socket_owners: true,
            net_root: None,
            read_sysfs: true,
            owner_pids: None,
        }
    }
}

impl LiveSource {
    /// Reads files under other roots (a fixture tree), without kernel sockets.
    pub fn with_roots(proc_root: impl Into<PathBuf>, sys_root: impl Into<PathBuf>) -> Self {
        LiveSource {
            proc_root: proc_root.into(),
            sys_root: sys_root.into(),
            use_kernel_sockets: false,
            include_sockets: false,
            include_socket_owners: false,
            net_root: None,
            read_sysfs: true,
            owner_pids: None,
        }
    }

    /// The running kernel as this thread sees it after entering another network
    /// namespace (`netns::enter_for_this_thread`): /proc/thread-self/net, the
    /// sysctls and netlink follow the thread; sysfs, mounted for the host's
    /// namespace, is not read (interface speeds and queue masks stay unknown).
    pub fn for_this_thread() -> Self {
        LiveSource {
            net_root: Some(PathBuf::from(crate::PROC_ROOT).join("thread-self")),
            read_sysfs: false,
            ..LiveSource::default()
        }
    }

    /// A /proc file: `net/*` under `net_root` when set, the rest under `proc_root`.
    fn proc_file(&self, rel: &str) -> PathBuf {
        match &self.net_root {
            Some(root) if rel.starts_with("net/") => root.join(rel),
            _ => self.proc_root.join(rel),
        }
    }

    /// The same source, also dumping sockets.
    pub fn with_sockets(mut self) -> Self {
        self.include_sockets = true;
        self
    }

    pub fn collect(&self) -> RawSnapshot {
        self.collect_counters_after(None)
    }

    /// A later collection of the same source, over an interval: the counters are
    /// read anew, the configuration (sysctls; ethtool features, rings, coalescing
    /// and channels) is taken from `first`. With a hundred namespaces, reading the
    /// configuration twice was a third of doctor's work.
    pub fn collect_after(&self, first: &RawSnapshot) -> RawSnapshot {
        self.collect_counters_after(Some(first))
    }

    /// An empty collection stamped with the time now, for parts to be merged into.
    pub fn begin(&self) -> RawSnapshot {
        RawSnapshot {
            meta: RawMeta {
                format_version: FORMAT_VERSION,
                taken_at_unix_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0),
                monotonic_ns: monotonic_ns(),
                netsight_version: env!("CARGO_PKG_VERSION").to_string(),
            },
            entries: Default::default(),
            missing: Default::default(),
        }
    }

    fn collect_counters_after(&self, config_from: Option<&RawSnapshot>) -> RawSnapshot {
        let mut raw = self.begin();
        for part in self.parts() {
            let got = self.collect_part(part, &raw, config_from);
            raw.merge(got);
        }
        raw
    }

    /// The parts this source collects, in order (Proc first): sockets only when asked for.
    pub fn parts(&self) -> impl Iterator<Item = SourcePart> + '_ {
        SourcePart::ALL
            .into_iter()
            .filter(|p| self.include_sockets || *p != SourcePart::Sockets)
    }

    /// One part of a collection, by itself: what a caller that bounds each part
    /// in time (serve) runs on a thread of its own. `base` holds the Proc part
    /// (interfaces and socket counts come from it) and gives the timestamps.
    pub fn collect_part(
        &self,
        part: SourcePart,
        base: &RawSnapshot,
        config_from: Option<&RawSnapshot>,
    ) -> RawSnapshot {
        let mut raw = RawSnapshot {
            meta: base.meta.clone(),
            entries: Default::default(),
            missing: Default::default(),
        };
        let interfaces = || -> Vec<String> {
            base.text(&key::proc("net/dev"))
                .and_then(|t| netdev::parse(&t).ok())
                .map(|rows| rows.into_iter().map(|(name, _)| name).collect())
                .unwrap_or_default()
        };
        let kernel_sockets = self.use_kernel_sockets;
        match part {
            SourcePart::Proc => {
                for rel in PROC_FILES {
                    self.read_into(&mut raw, key::proc(rel), &self.proc_file(rel));
                }
            }
            SourcePart::Sysctls => self.collect_sysctls(&mut raw, config_from),
            SourcePart::Sysfs if self.read_sysfs => {
                let interfaces = interfaces();
                for interface in &interfaces {
                    for attr in ["speed", "duplex"] {
                        let path = self.sys_root.join("class/net").join(interface).join(attr);
                        self.read_into(&mut raw, key::sys_class_net(interface, attr), &path);
                    }
                }
                // The host layout (CPUs, queue masks, IRQs) is the host's: read where sysfs is ours.
                match config_from {
                    Some(first) => crate::host_layout::carry(first, &mut raw),
                    None => crate::host_layout::collect(
                        &self.proc_root,
                        &self.sys_root,
                        &interfaces,
                        &mut raw,
                    ),
                }
            }
            SourcePart::Sysfs => {
                raw.missing.insert(
                    "sys/class/net".into(),
                    "sysfs shows the host's namespace here: interface speeds not read".into(),
                );
            }
            SourcePart::Netlink if kernel_sockets => collect_netlink(&mut raw, config_from),
            SourcePart::Netlink => {
                let reason = "kernel sockets not used for this source".to_string();
                raw.missing.insert(key::ROUTE_LINK.into(), reason.clone());
                raw.missing.insert(key::ROUTE_QDISC.into(), reason);
            }
            SourcePart::IptablesLegacy if kernel_sockets => {
                for (key, table) in crate::iptables_legacy::dump_tables(&self.proc_file("net/")) {
                    raw.put(key, table.map_err(|e| e.to_string()));
                }
            }
            SourcePart::DriverStats if kernel_sockets => {
                collect_driver_stats(&mut raw, &interfaces())
            }
            SourcePart::Sockets if kernel_sockets => self.collect_sockets(base, &mut raw),
            SourcePart::IptablesLegacy | SourcePart::DriverStats | SourcePart::Sockets => {}
        }
        raw
    }

    fn collect_sysctls(&self, raw: &mut RawSnapshot, config_from: Option<&RawSnapshot>) {
        let child_netns =
            crate::sysctl_tree::SysctlTree::at(self.proc_root.join("sys")).is_child_netns();
        let mut dirs = DirCache::default();
        for name in DIAGNOSTIC_SYSCTLS {
            let rel = proc_relative_path(name);
            let key = key::proc(&rel);
            if let Some(first) = config_from {
                raw.carry(first, key);
                continue;
            }
            let path = self.proc_root.join(&rel);
            let read = dirs.read(&path);
            raw.put(
                key.clone(),
                read.map_err(|e| describe_read_error(&path, &e)),
            );
            // A child namespace does not see the init-only table: say so, not "absent".
            if child_netns && crate::sysctl_tree::HOST_WIDE_SYSCTLS.contains(name) {
                if let Some(why) = raw.missing.get_mut(&key) {
                    *why = format!("{name} is host-wide: not visible from this network namespace");
                }
            }
        }
    }

    fn collect_sockets(&self, base: &RawSnapshot, raw: &mut RawSnapshot) {
        // The owner scan (kernel-bound readlinks) runs beside the dumps.
        let owners = std::thread::scope(|scope| {
            let owners = scope.spawn(|| {
                self.include_socket_owners.then(|| match &self.owner_pids {
                    Some(pids) => (sockets::owners::scan_of(&self.proc_root, pids), None),
                    None => sockets::owners::scan_live(&self.proc_root),
                })
            });
            let counts = sockstat_of(base);
            for (name, family, protocol) in sockets::DUMPS {
                if counts
                    .as_ref()
                    .is_some_and(|c| !dump_can_find_sockets(c, name))
                {
                    // An empty dump, as the kernel would give after walking its
                    // host-wide hash (~5 ms for TCP, even for a namespace with none).
                    raw.entries.insert(key::sock_diag(name), Vec::new());
                    continue;
                }
                let dump = sockets::dump(family, protocol).map_err(|e| e.to_string());
                raw.put(key::sock_diag(name), dump);
            }
            owners.join().ok().flatten()
        });
        let unix = self.proc_file("net/unix");
        self.read_into(raw, key::PROC_NET_UNIX.into(), &unix);
        let Some((owners, bpf_error)) = owners else {
            let why = "not asked for (--no-process)".to_string();
            raw.missing.insert(key::SOCKET_OWNERS.into(), why);
            return;
        };
        if let Some(e) = bpf_error {
            // Not a failure: the /proc scan gave the same answer, only slower.
            raw.missing.insert(SOCKET_OWNERS_BPF.into(), e);
        }
        raw.entries.insert(
            key::SOCKET_OWNERS.into(),
            sockets::owners::to_records(&owners),
        );
        if !owners.complete {
            raw.missing.insert(
                key::SOCKET_OWNERS.into(),
                "some /proc/PID/fd unreadable: owners partial (needs root or CAP_SYS_PTRACE)"
                    .into(),
            );
        }
    }

    fn read_into(&self, raw: &mut RawSnapshot, key: String, path: &Path) {
        raw.put(
            key,
            std::fs::read(path).map_err(|e| describe_read_error(path, &e)),
        );
    }
}

/// Opens files relative to their directory, each directory opened once. Every
/// /proc/sys path component costs a dcache lookup that, in a child namespace,
/// compares against the same name in every other namespace (proc_sys_compare):
/// one component per sysctl instead of four.
#[derive(Default)]
struct DirCache {
    open: std::collections::HashMap<PathBuf, std::os::fd::OwnedFd>,
}

impl DirCache {
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        let (Some(dir), Some(leaf)) = (path.parent(), path.file_name()) else {
            return std::fs::read(path);
        };
        if !self.open.contains_key(dir) {
            let fd = rustix::fs::open(
                dir,
                rustix::fs::OFlags::PATH
                    | rustix::fs::OFlags::DIRECTORY
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )?;
            self.open.insert(dir.to_path_buf(), fd);
        }
        let fd = rustix::fs::openat(
            &self.open[dir],
            leaf,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut std::fs::File::from(fd), &mut bytes)?;
        Ok(bytes)
    }
}

/// Whether `key` is one the Sockets part writes (a caller that keeps a socket
/// table apart from the counters splits a snapshot by it).
pub fn is_socket_key(k: &str) -> bool {
    k.starts_with(&key::sock_diag(""))
        || k == key::PROC_NET_UNIX
        || k == key::SOCKET_OWNERS
        || k == SOCKET_OWNERS_BPF
}

/// Why the BPF owner scan did not run (the /proc scan answered instead).
const SOCKET_OWNERS_BPF: &str = "derived/socket-owners-bpf";

/// /proc/net/sockstat{,6} of this collection, when both parse.
pub fn sockstat_of(raw: &RawSnapshot) -> Option<sockstat::Sockstat> {
    let mut counts = sockstat::Sockstat::new();
    for (rel, name) in [("net/sockstat", "sockstat"), ("net/sockstat6", "sockstat6")] {
        sockstat::parse(name, &raw.text(&key::proc(rel))?, &mut counts).ok()?;
    }
    Some(counts)
}

/// Whether the namespace's socket counts leave room for a socket in this dump.
/// The counts are per namespace (inuse covers listeners and connections; tw is
/// shared by both families); the hash tables sock_diag walks are not.
fn dump_can_find_sockets(counts: &sockstat::Sockstat, dump: &str) -> bool {
    let get = |group: &str, field: &str| counts.get(group).and_then(|g| g.get(field)).copied();
    let present = |v: Option<i64>| v.is_none_or(|n| n != 0);
    match dump {
        "tcp4" => present(get("TCP", "inuse")) || present(get("TCP", "tw")),
        "tcp6" => present(get("TCP6", "inuse")) || present(get("TCP", "tw")),
        "udp4" => present(get("UDP", "inuse")),
        "udp6" => present(get("UDP6", "inuse")),
        _ => true,
    }
}

fn describe_read_error(path: &Path, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => format!("{} not present on this kernel", path.display()),
        io::ErrorKind::PermissionDenied => {
            format!("{}: permission denied (run as root)", path.display())
        }
        // sysfs answers EINVAL for the speed of a link that is down or has none.
        _ if e.raw_os_error() == Some(libc::EINVAL) => {
            format!("{}: not reported by the driver", path.display())
        }
        _ => KernelError::Read {
            path: path.to_path_buf(),
            source: io::Error::new(e.kind(), e.to_string()),
        }
        .to_string(),
    }
}

fn collect_netlink(raw: &mut RawSnapshot, config_from: Option<&RawSnapshot>) {
    if let Some(first) = config_from {
        for what in EthtoolDump::ALL {
            raw.carry(first, key::ethtool_dump(what.name()));
        }
    }
    let mut put = |key: String, result: crate::error::Result<Vec<u8>>| {
        raw.put(key, result.map_err(|e| e.to_string()))
    };
    put(key::ROUTE_LINK.into(), link::dump_links());
    put(key::ROUTE_QDISC.into(), qdisc::dump_qdiscs());
    put(key::NFTABLES_RULES.into(), crate::nftables::dump_rules());
    if config_from.is_some() {
        return;
    }
    match ethtool::resolve_family() {
        Ok(family) => {
            for what in EthtoolDump::ALL {
                put(key::ethtool_dump(what.name()), ethtool::dump(family, what));
            }
        }
        Err(e) => {
            for what in EthtoolDump::ALL {
                put(
                    key::ethtool_dump(what.name()),
                    Err(KernelError::NetlinkDecode {
                        family: "ethtool",
                        what: format!("family lookup ({e})"),
                        detail: "the kernel has no ethtool netlink family (needs 5.6+)".into(),
                    }),
                );
            }
        }
    }
}

fn collect_driver_stats(raw: &mut RawSnapshot, interfaces: &[String]) {
    for interface in interfaces {
        let key = key::ethtool_stats(interface);
        match ethtool::driver_stats::read(interface) {
            Ok(Some(stats)) => {
                raw.entries
                    .insert(key, ethtool::driver_stats::to_text(&stats).into_bytes());
            }
            Ok(None) => {
                raw.missing.insert(key, NOT_SUPPORTED.into());
            }
            Err(e) => {
                raw.missing.insert(key, e.to_string());
            }
        }
    }
}

#[allow(unsafe_code)]
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer we pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_listed_in_their_declared_order() {
        // Callers index per-part state by `part as usize`.
        for (i, part) in SourcePart::ALL.iter().enumerate() {
            assert_eq!(*part as usize, i, "{}", part.name());
        }
    }

    fn counts(text4: &str, text6: &str) -> sockstat::Sockstat {
        let mut c = sockstat::Sockstat::new();
        sockstat::parse("sockstat", text4, &mut c).unwrap();
        sockstat::parse("sockstat6", text6, &mut c).unwrap();
        c
    }

    #[test]
    fn dumps_are_skipped_only_where_no_socket_can_be() {
        let empty = counts(
            "TCP: inuse 0 orphan 0 tw 0 alloc 0 mem 0\nUDP: inuse 0 mem 0\n",
            "TCP6: inuse 0\nUDP6: inuse 0\n",
        );
        for dump in ["tcp4", "tcp6", "udp4", "udp6"] {
            assert!(!dump_can_find_sockets(&empty, dump), "{dump}");
        }
        // TIME-WAIT sockets of either family are counted in TCP's tw.
        let tw = counts(
            "TCP: inuse 0 orphan 0 tw 2\nUDP: inuse 0\n",
            "TCP6: inuse 0\nUDP6: inuse 1\n",
        );
        assert!(dump_can_find_sockets(&tw, "tcp4") && dump_can_find_sockets(&tw, "tcp6"));
        assert!(!dump_can_find_sockets(&tw, "udp4") && dump_can_find_sockets(&tw, "udp6"));
        // A count this kernel does not print: dump, do not guess.
        let odd = counts("TCP: orphan 0\n", "");
        assert!(dump_can_find_sockets(&odd, "tcp4") && dump_can_find_sockets(&odd, "udp6"));
    }
}
