//! The raw inputs of one snapshot, exactly as the kernel gave them: file bytes
//! and netlink reply bytes, keyed by where they came from. A bundle stores these,
//! so `--from` re-parses the same bytes the live run saw.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawMeta {
    pub format_version: u32,
    pub taken_at_unix_ms: u64,
    /// CLOCK_MONOTONIC at collection: rates use this, not wall time.
    pub monotonic_ns: u64,
    pub netsight_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawSnapshot {
    pub meta: RawMeta,
    /// Keys: "proc/net/snmp", "proc/sys/net/core/somaxconn", "sys/class/net/eth0/speed",
    /// "netlink/route/link", "netlink/ethtool/rings", "ethtool/stats/eth0".
    pub entries: BTreeMap<String, Vec<u8>>,
    /// Sources that could not be read, with the reason (same keys).
    pub missing: BTreeMap<String, String>,
}

pub mod key {
    pub const ROUTE_LINK: &str = "netlink/route/link";
    pub const ROUTE_QDISC: &str = "netlink/route/qdisc";
    pub const NFTABLES_RULES: &str = "netlink/nftables/rules";
    /// One key per iptables-legacy table: "sockopt/iptables-legacy/ip/filter".
    pub const IPTABLES_LEGACY_PREFIX: &str = "sockopt/iptables-legacy/";

    pub fn proc(rel: &str) -> String {
        format!("proc/{rel}")
    }
    pub fn sys_class_net(interface: &str, attr: &str) -> String {
        format!("sys/class/net/{interface}/{attr}")
    }
    pub fn ethtool_dump(name: &str) -> String {
        format!("netlink/ethtool/{name}")
    }
    pub fn ethtool_stats(interface: &str) -> String {
        format!("ethtool/stats/{interface}")
    }
    pub fn sock_diag(dump: &str) -> String {
        format!("netlink/sock_diag/{dump}")
    }
    pub const PROC_NET_UNIX: &str = "proc/net/unix";
    /// Socket owners as 32-byte records (pid, fd, inode, comm): from the BPF
    /// task_file iterator or the /proc/PID/fd scan.
    pub const SOCKET_OWNERS: &str = "derived/socket-owners";
}

impl RawSnapshot {
    /// Keeps a source's bytes, or why it could not be read.
    pub fn put(&mut self, key: String, result: Result<Vec<u8>, String>) {
        match result {
            Ok(bytes) => {
                self.entries.insert(key, bytes);
            }
            Err(why) => {
                self.missing.insert(key, why);
            }
        }
    }

    /// Takes `key` as `from` has it: its bytes, or why it was missing.
    /// Takes in another part's entries and reasons (same keys replace).
    pub fn merge(&mut self, part: RawSnapshot) {
        self.entries.extend(part.entries);
        self.missing.extend(part.missing);
    }

    pub fn carry(&mut self, from: &RawSnapshot, key: String) {
        if let Some(bytes) = from.entries.get(&key) {
            self.entries.insert(key, bytes.clone());
        } else if let Some(why) = from.missing.get(&key) {
            self.missing.insert(key, why.clone());
        }
    }

    pub fn text(&self, key: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.entries.get(key).map(|b| String::from_utf8_lossy(b))
    }

    /// Why `key` is absent: the recorded reason, or "not in this snapshot".
    pub fn missing_reason(&self, key: &str) -> String {
        self.missing
            .get(key)
            .cloned()
            .unwrap_or_else(|| "not in this snapshot".into())
    }
}
