//! The one sysctl seam: every sysctl read or write netsight makes on purpose
//! goes through `SysctlTree`, which only reaches files under the network trees
//! (`net.*`) of `/proc/sys` (or a directory laid out like it, in tests).
//! Keys from users are checked before any path is built, values per key.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SysctlError {
    #[error("{key:?} is not a network sysctl name: {why}")]
    InvalidKey { key: String, why: String },
    #[error("no sysctl {key} on this kernel (or in this network namespace); see `sysctl -a | grep {key}`")]
    NotFound { key: String },
    #[error("{key} is host-wide; not writable from a namespace (set it in the host's network namespace)")]
    HostWide { key: String },
    #[error("{key} is read-only")]
    ReadOnly { key: String },
    #[error("{key} = {value:?}: {why}")]
    InvalidValue {
        key: String,
        value: String,
        why: String,
    },
    #[error("sysctl {key}: {operation} {path}: {source}")]
    Io {
        key: String,
        operation: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A checked sysctl name: components of `net.*`, with no path tricks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SysctlKey {
    components: Vec<String>,
}

/// The path components of a sysctl name by sysctl(8)'s rule: if the first
/// separator is `.`, dots separate and `/` stands for a literal dot; if it is `/`,
/// slashes separate and dots are literal. Not validated (see `SysctlKey::parse`).
pub fn components(name: &str) -> Vec<String> {
    let dotted = match name.find(['.', '/']) {
        Some(i) => name.as_bytes()[i] == b'.',
        None => true,
    };
    if dotted {
        name.split('.').map(|c| c.replace('/', ".")).collect()
    } else {
        name.split('/').map(str::to_string).collect()
    }
}

impl SysctlKey {
    /// Parses a name the way sysctl(8) does: if the first separator is `.`, dots
    /// separate and a `/` stands for a literal dot (`net.ipv4.conf.eth0/100.rp_filter`);
    /// if it is `/`, slashes separate and dots are literal (`net/ipv4/conf/eth0.100/rp_filter`).
    pub fn parse(name: &str) -> Result<SysctlKey, SysctlError> {
        let invalid = |why: &str| SysctlError::InvalidKey {
            key: name.to_string(),
            why: why.to_string(),
        };
        if name.is_empty() || name.len() > 256 {
            return Err(invalid("empty or longer than 256 characters"));
        }
        if name.starts_with('/') {
            return Err(invalid("a sysctl name, not a path, is expected"));
        }
        let components = components(name);
        for c in &components {
            if c.is_empty() || c == "." || c == ".." {
                return Err(invalid("empty, `.` or `..` component"));
            }
            // Interface names may hold `.`, `-`, `@`, `+`, `:`; nothing else is needed.
            if !c.chars().all(|ch| {
                ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.' | '@' | '+' | ':')
            }) {
                return Err(invalid("only letters, digits and _ - . @ + : are allowed"));
            }
        }
        if components[0] != "net" || components.len() < 2 {
            return Err(invalid("only network sysctls (net.*) can be read or set"));
        }
        Ok(SysctlKey { components })
    }

    /// The dotted name, with `/` for a literal dot as sysctl(8) prints it.
    pub fn name(&self) -> String {
        self.components
            .iter()
            .map(|c| c.replace('.', "/"))
            .collect::<Vec<_>>()
            .join(".")
    }

    fn relative(&self) -> PathBuf {
        self.components.iter().collect()
    }
}

impl std::fmt::Display for SysctlKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// Keys that only the host's (initial) network namespace has, or has writable:
/// a child namespace sees them read-only or not at all.
pub const HOST_WIDE_SYSCTLS: &[&str] = &[
    "net.core.netdev_max_backlog",
    "net.core.netdev_budget",
    "net.core.netdev_budget_usecs",
    "net.core.dev_weight",
    "net.core.dev_weight_rx_bias",
    "net.core.dev_weight_tx_bias",
    "net.core.default_qdisc",
    "net.core.rps_sock_flow_entries",
    "net.core.flow_limit_cpu_bitmap",
    "net.core.flow_limit_table_len",
    "net.core.busy_read",
    "net.core.busy_poll",
    "net.core.rmem_max",
    "net.core.wmem_max",
    "net.core.rmem_default",
    "net.core.wmem_default",
    "net.core.netdev_tstamp_prequeue",
    "net.core.skb_defer_max",
    "net.core.max_skb_frags",
    "net.core.gro_normal_batch",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_buckets",
    "net.nf_conntrack_max",
    // Protocol memory limits and the orphan limit are global too.
    "net.ipv4.tcp_mem",
    "net.ipv4.udp_mem",
    "net.ipv4.tcp_max_orphans",
];

/// The one rule for "a child network namespace", given which sysctls exist (by
/// dotted name): init-only tables (netdev_max_backlog) are absent there while
/// per-namespace ones (somaxconn) are present.
pub fn is_child_netns_view(exists: impl Fn(&str) -> bool) -> bool {
    !exists("net.core.netdev_max_backlog") && exists("net.core.somaxconn")
}

/// The sysctl tree of the running kernel as this network namespace sees it.
#[derive(Debug, Clone)]
pub struct SysctlTree {
    root: PathBuf,
}

impl SysctlTree {
    pub fn live() -> SysctlTree {
        SysctlTree::at("/proc/sys")
    }

    pub fn at(root: impl Into<PathBuf>) -> SysctlTree {
        SysctlTree { root: root.into() }
    }

    /// Where a checked key lives (not checked to exist).
    pub fn path(&self, key: &SysctlKey) -> PathBuf {
        self.root.join(key.relative())
    }

    /// True in a child network namespace (see `is_child_netns_view`).
    pub fn is_child_netns(&self) -> bool {
        is_child_netns_view(|name| {
            self.root
                .join(components(name).iter().collect::<PathBuf>())
                .exists()
        })
    }

    /// The key's file after checking it exists, is a regular file and resolves
    /// inside the tree's `net` directory (no symlink leads out of it).
    pub fn resolve(&self, key: &SysctlKey) -> Result<PathBuf, SysctlError> {
        let path = self.path(key);
        let not_found = || {
            if self.is_child_netns() && HOST_WIDE_SYSCTLS.contains(&key.name().as_str()) {
                SysctlError::HostWide { key: key.name() }
            } else {
                SysctlError::NotFound { key: key.name() }
            }
        };
        let (Ok(real), Ok(net)) = (path.canonicalize(), self.root.join("net").canonicalize())
        else {
            return Err(not_found());
        };
        if !real.starts_with(&net) || !real.is_file() {
            return Err(not_found());
        }
        Ok(real)
    }

    /// The file's exact content (with the kernel's tabs and trailing newline).
    pub fn read_raw(&self, key: &SysctlKey) -> Result<String, SysctlError> {
        let path = self.resolve(key)?;
        std::fs::read_to_string(&path).map_err(|source| SysctlError::Io {
            key: key.name(),
            operation: "read",
            path,
            source,
        })
    }

    /// Checks that the key can be written here: exists, and is not a host-wide
    /// value seen read-only from a child namespace.
    pub fn check_writable(&self, key: &SysctlKey) -> Result<(), SysctlError> {
        let path = self.resolve(key)?;
        let read_only = std::fs::metadata(&path).is_ok_and(|m| m.permissions().mode() & 0o222 == 0);
        if read_only || (self.is_child_netns() && HOST_WIDE_SYSCTLS.contains(&key.name().as_str()))
        {
            return Err(if self.is_child_netns() {
                SysctlError::HostWide { key: key.name() }
            } else {
                SysctlError::ReadOnly { key: key.name() }
            });
        }
        Ok(())
    }

    pub fn write(&self, key: &SysctlKey, value: &str) -> Result<(), SysctlError> {
        let path = self.resolve(key)?;
        // One write(2) of the whole line, as `echo value >` does: the kernel parses
        // each write separately and accepts the newline (and tabs between words).
        let line = format!("{}\n", value.trim_end_matches('\n'));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        written.map_err(|source| SysctlError::Io {
            key: key.name(),
            operation: "write",
            path,
            source,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Values compare by their whitespace-separated words ("4096\t131072" == "4096 131072").
pub fn same_value(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// Ranges the kernel (or sense) puts on values it would otherwise take blindly:
/// tcp_fin_timeout is parsed with no minimum, so -5 is accepted by the kernel.
const RANGES: &[(&str, i64, i64)] = &[
    ("net.ipv4.tcp_fin_timeout", 1, 3600),
    // MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT.
    ("net.ipv4.tcp_keepalive_time", 1, 32767),
    ("net.ipv4.tcp_keepalive_intvl", 1, 32767),
    ("net.ipv4.tcp_keepalive_probes", 1, 127),
    // MAX_TCP_SYNCNT.
    ("net.ipv4.tcp_syn_retries", 1, 127),
    ("net.ipv4.tcp_synack_retries", 0, 127),
    ("net.ipv4.tcp_retries1", 0, 255),
    ("net.ipv4.tcp_retries2", 0, 255),
    ("net.ipv4.tcp_orphan_retries", 0, 255),
    ("net.ipv4.tcp_sack", 0, 1),
    ("net.ipv4.tcp_window_scaling", 0, 1),
    ("net.ipv4.tcp_timestamps", 0, 2),
    ("net.ipv4.tcp_syncookies", 0, 2),
    ("net.ipv4.tcp_tw_reuse", 0, 2),
    ("net.ipv4.tcp_ecn", 0, 2),
    ("net.ipv4.tcp_mtu_probing", 0, 2),
    ("net.ipv4.tcp_slow_start_after_idle", 0, 1),
    ("net.ipv4.tcp_moderate_rcvbuf", 0, 1),
    ("net.ipv4.tcp_no_metrics_save", 0, 1),
    ("net.ipv4.tcp_autocorking", 0, 1),
    ("net.ipv4.tcp_abort_on_overflow", 0, 1),
    ("net.ipv4.ip_forward", 0, 1),
    ("net.ipv4.ip_no_pmtu_disc", 0, 3),
    ("net.core.somaxconn", 1, i32::MAX as i64),
    ("net.ipv4.tcp_max_syn_backlog", 1, i32::MAX as i64),
    ("net.core.netdev_max_backlog", 1, i32::MAX as i64),
    ("net.core.netdev_budget", 1, i32::MAX as i64),
    ("net.core.netdev_budget_usecs", 1, i32::MAX as i64),
    ("net.core.dev_weight", 1, i32::MAX as i64),
    ("net.core.rmem_max", 4608, i32::MAX as i64),
    ("net.core.wmem_max", 4608, i32::MAX as i64),
    ("net.core.rmem_default", 4608, i32::MAX as i64),
    ("net.core.wmem_default", 4608, i32::MAX as i64),
    ("net.ipv4.tcp_notsent_lowat", 1, u32::MAX as i64),
    ("net.ipv4.tcp_max_tw_buckets", 0, i32::MAX as i64),
    ("net.ipv4.tcp_max_orphans", 0, i32::MAX as i64),
    ("net.netfilter.nf_conntrack_max", 0, i32::MAX as i64),
];

/// Checks a new value against the key's current value and known limits: a number
/// where the kernel holds numbers (as many as it holds), a word where it holds a word,
/// inside the range the kernel or sense allows. Control characters are never valid.
pub fn validate_value(key: &SysctlKey, current: &str, value: &str) -> Result<(), SysctlError> {
    let name = key.name();
    let invalid = |why: String| SysctlError::InvalidValue {
        key: name.clone(),
        value: value.to_string(),
        why,
    };
    if value
        .chars()
        .any(|c| c.is_control() && c != ' ' && c != '\t')
    {
        return Err(invalid("control characters are not allowed".into()));
    }
    if value.len() > 4096 {
        return Err(invalid("longer than 4096 bytes".into()));
    }
    let now: Vec<&str> = current.split_whitespace().collect();
    let new: Vec<&str> = value.split_whitespace().collect();
    if new.is_empty() {
        return Err(invalid("empty value".into()));
    }
    let numeric_now = !now.is_empty() && now.iter().all(|w| w.parse::<i64>().is_ok());
    if numeric_now {
        if new.len() != now.len() {
            return Err(invalid(format!(
                "{} number(s) expected, as in the current value {:?}",
                now.len(),
                now.join(" ")
            )));
        }
        let mut numbers = Vec::with_capacity(new.len());
        for w in &new {
            let n: i64 = w
                .parse()
                .map_err(|_| invalid(format!("{w:?} is not an integer")))?;
            numbers.push(n);
        }
        let allows_negative = now.iter().any(|w| w.starts_with('-'));
        if let Some(&(_, min, max)) = RANGES.iter().find(|(k, _, _)| *k == name) {
            if let Some(n) = numbers.iter().find(|n| **n < min || **n > max) {
                return Err(invalid(format!("{n} is outside {min}..={max}")));
            }
        } else if !allows_negative && numbers.iter().any(|n| *n < 0) {
            return Err(invalid("negative values are not allowed here".into()));
        }
        let ordered = numbers.windows(2).all(|w| w[0] <= w[1]);
        match name.as_str() {
            "net.ipv4.tcp_rmem" | "net.ipv4.tcp_wmem" | "net.ipv4.tcp_mem" | "net.ipv4.udp_mem"
                if numbers.iter().any(|n| *n <= 0) || !ordered =>
            {
                return Err(invalid(
                    "min <= default (or pressure) <= max, all positive".into(),
                ));
            }
            "net.ipv4.ip_local_port_range"
                if numbers.iter().any(|n| !(1..=65535).contains(n)) || !ordered =>
            {
                return Err(invalid("ports 1..=65535, low <= high".into()));
            }
            _ => {}
        }
        return Ok(());
    }
    // Words (congestion control, qdisc names): one token of plain characters.
    if new.len() != now.len().max(1) {
        return Err(invalid(format!("{} word(s) expected", now.len().max(1))));
    }
    if !new.iter().all(|w| {
        w.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | ','))
    }) {
        return Err(invalid(
            "only letters, digits and _ - . : , are allowed".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> SysctlKey {
        SysctlKey::parse(s).unwrap()
    }

    #[test]
    fn keys_follow_sysctl8_and_stay_in_net() {
        assert_eq!(
            key("net.ipv4.tcp_rmem").relative(),
            PathBuf::from("net/ipv4/tcp_rmem")
        );
        assert_eq!(
            key("net.ipv4.conf.eth0/100.rp_filter").relative(),
            PathBuf::from("net/ipv4/conf/eth0.100/rp_filter")
        );
        assert_eq!(
            key("net/ipv4/conf/eth0.100/rp_filter").relative(),
            PathBuf::from("net/ipv4/conf/eth0.100/rp_filter")
        );
        assert_eq!(
            key("net/ipv4/conf/eth0.100/rp_filter").name(),
            "net.ipv4.conf.eth0/100.rp_filter"
        );
        for bad in [
            "/etc/shadow",
            "/etc/hostname",
            "kernel.hostname",
            "kernel.core_pattern",
            "net.ipv4..x",
            "net/../../etc/shadow",
            "net.ipv4.tcp_rmem\n",
            "net.ipv4.a b",
            "net",
            "",
            "vm.swappiness",
        ] {
            assert!(SysctlKey::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn tree(name: &str) -> (PathBuf, SysctlTree) {
        let dir =
            std::env::temp_dir().join(format!("netsight-sysctl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (k, v) in [
            ("net/core/somaxconn", "4096\n"),
            ("net/ipv4/tcp_fin_timeout", "60\n"),
        ] {
            let p = dir.join(k);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, v).unwrap();
        }
        std::fs::create_dir_all(dir.join("kernel")).unwrap();
        std::fs::write(dir.join("kernel/hostname"), "host\n").unwrap();
        (dir.clone(), SysctlTree::at(dir))
    }

    #[test]
    fn only_existing_files_inside_net_resolve() {
        let (dir, t) = tree("resolve");
        assert_eq!(t.read_raw(&key("net.core.somaxconn")).unwrap(), "4096\n");
        assert!(matches!(
            t.read_raw(&key("net.core.nope")),
            Err(SysctlError::NotFound { .. })
        ));
        // A symlink inside net pointing out of it is not followed out.
        std::os::unix::fs::symlink(dir.join("kernel/hostname"), dir.join("net/core/evil")).unwrap();
        assert!(matches!(
            t.read_raw(&key("net.core.evil")),
            Err(SysctlError::NotFound { .. })
        ));
        assert!(matches!(
            t.resolve(&key("net.core")),
            Err(SysctlError::NotFound { .. })
        ));
        // No netdev_max_backlog beside somaxconn: a child namespace; host-wide keys say so.
        assert!(t.is_child_netns());
        let e = t.check_writable(&key("net.core.rmem_max")).unwrap_err();
        assert!(
            e.to_string()
                .contains("host-wide; not writable from a namespace"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn values_are_checked_per_key() {
        let fin = key("net.ipv4.tcp_fin_timeout");
        assert!(validate_value(&fin, "60\n", "30").is_ok());
        for bad in [
            "-5",
            "0",
            "banana",
            "30 40",
            "$(id)",
            "30\nkernel.core_pattern=|/tmp/x",
            "",
            "99999999999999999999",
        ] {
            assert!(
                validate_value(&fin, "60\n", bad).is_err(),
                "{bad:?} accepted"
            );
        }
        let rmem = key("net.ipv4.tcp_rmem");
        assert!(validate_value(&rmem, "4096\t131072\t6291456\n", "4096 131072 33554432").is_ok());
        assert!(validate_value(&rmem, "4096\t131072\t6291456\n", "4096 131072").is_err());
        assert!(validate_value(&rmem, "4096\t131072\t6291456\n", "9000 131072 4096").is_err());
        let range = key("net.ipv4.ip_local_port_range");
        assert!(validate_value(&range, "32768\t60999\n", "1024 65535").is_ok());
        assert!(validate_value(&range, "32768\t60999\n", "1024 70000").is_err());
        let cc = key("net.ipv4.tcp_congestion_control");
        assert!(validate_value(&cc, "cubic\n", "bbr").is_ok());
        assert!(validate_value(&cc, "cubic\n", "bbr;id").is_err());
        assert!(validate_value(&cc, "cubic\n", "bbr reno").is_err());
        assert!(validate_value(&key("net.core.somaxconn"), "4096\n", "0").is_err());
    }
}
