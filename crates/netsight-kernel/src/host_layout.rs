//! How receive and transmit work is spread over the host: CPUs, RPS/XPS masks
//! per NIC queue, NIC IRQ affinity, the network namespace, read-only sysctls.
//! Collected as raw sources like the rest of a snapshot, so a bundle carries them
//! and `tune audit --from BUNDLE` sees what the live run saw.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::raw::{key, RawSnapshot};
use crate::sysctl::{proc_relative_path, DIAGNOSTIC_SYSCTLS};

/// Derived entries (not a single kernel file each).
const CPUS: &str = "derived/cpus";
const NETNS: &str = "derived/netns";
const READ_ONLY_SYSCTLS: &str = "derived/read-only-sysctls";
const INTERRUPTS: &str = "interrupts";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostLayout {
    /// CPUs this process may run on.
    pub cpus: Option<usize>,
    /// False inside a network namespace other than PID 1's: host-wide sysctls are
    /// not visible. True when PID 1's namespace could not be read (the common case).
    pub in_host_netns: bool,
    /// Per NIC: (queue, cpu mask) of rx-N/rps_cpus.
    pub rps: BTreeMap<String, Vec<(String, String)>>,
    /// Per NIC: (queue, cpu mask) of tx-N/xps_cpus.
    pub xps: BTreeMap<String, Vec<(String, String)>>,
    /// Per NIC: the smp_affinity_list of each IRQ named after it in /proc/interrupts.
    pub irq_affinity: BTreeMap<String, Vec<String>>,
    /// Diagnostic sysctls present but read-only here: a child network namespace
    /// sees some host-wide values (net.core.rmem_max...) without being allowed to set them.
    pub read_only_sysctls: BTreeSet<String>,
}

/// IRQ numbers whose action name (the last column of /proc/interrupts) starts with `nic`.
fn irqs_of<'a>(interrupts: &'a str, nic: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    interrupts
        .lines()
        .filter(move |l| {
            l.split_whitespace()
                .last()
                .is_some_and(|n| n.starts_with(nic))
        })
        .filter_map(|l| l.split(':').next().map(str::trim))
        .filter(|irq| !irq.is_empty() && irq.bytes().all(|b| b.is_ascii_digit()))
}

fn queue_key(nic: &str, queue: &str, file: &str) -> String {
    key::sys_class_net(nic, &format!("queues/{queue}/{file}"))
}

fn mask_file(queue: &str) -> Option<&'static str> {
    if queue.starts_with("rx-") {
        Some("rps_cpus")
    } else if queue.starts_with("tx-") {
        Some("xps_cpus")
    } else {
        None
    }
}

/// Whether `key` is one of the layout's sources (what `collect` writes).
fn is_layout_key(k: &str) -> bool {
    [CPUS, NETNS, READ_ONLY_SYSCTLS].contains(&k)
        || k == key::proc(INTERRUPTS)
        || (k.starts_with(&key::proc("irq/")) && k.ends_with("/smp_affinity_list"))
        || k.strip_prefix("sys/class/net/")
            .is_some_and(|rest| rest.contains("/queues/"))
}

/// The layout as `first` read it: it is configuration, read once per interval
/// (a stat per diagnostic sysctl and a read per queue mask and IRQ each sample
/// was a tenth of top's idle work).
pub fn carry(first: &RawSnapshot, raw: &mut RawSnapshot) {
    for (k, v) in first.entries.iter().filter(|(k, _)| is_layout_key(k)) {
        raw.entries.insert(k.clone(), v.clone());
    }
}

/// Reads the layout's sources into `raw`. Only NICs with a device behind them
/// (sysfs `device`) have queues and IRQs worth reading.
pub fn collect(proc_root: &Path, sys_root: &Path, interfaces: &[String], raw: &mut RawSnapshot) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    raw.entries
        .insert(CPUS.into(), cpus.to_string().into_bytes());
    // thread-self: a thread that entered another namespace reports that one.
    let me = std::fs::read_link(proc_root.join("thread-self/ns/net"));
    let init = std::fs::read_link(proc_root.join("1/ns/net"));
    let mut netns = String::new();
    if let Ok(me) = &me {
        netns += &format!("self {}\n", me.display());
    }
    if let Ok(init) = &init {
        netns += &format!("init {}\n", init.display());
    }
    raw.entries.insert(NETNS.into(), netns.into_bytes());

    let read_only: Vec<&str> = DIAGNOSTIC_SYSCTLS
        .iter()
        .copied()
        .filter(|name| {
            std::fs::metadata(proc_root.join(proc_relative_path(name)))
                .is_ok_and(|m| m.permissions().mode() & 0o222 == 0)
        })
        .collect();
    raw.entries
        .insert(READ_ONLY_SYSCTLS.into(), read_only.join("\n").into_bytes());

    let interrupts = std::fs::read_to_string(proc_root.join(INTERRUPTS)).unwrap_or_default();
    let nics = interfaces
        .iter()
        .filter(|nic| sys_root.join("class/net").join(nic).join("device").exists());
    for nic in nics {
        let queues = sys_root.join("class/net").join(nic).join("queues");
        for entry in std::fs::read_dir(&queues).into_iter().flatten().flatten() {
            let queue = entry.file_name().to_string_lossy().into_owned();
            if let Some(file) = mask_file(&queue) {
                if let Ok(mask) = std::fs::read(queues.join(&queue).join(file)) {
                    raw.entries.insert(queue_key(nic, &queue, file), mask);
                }
            }
        }
        for irq in irqs_of(&interrupts, nic) {
            let rel = format!("irq/{irq}/smp_affinity_list");
            if let Ok(list) = std::fs::read(proc_root.join(&rel)) {
                raw.entries.insert(key::proc(&rel), list);
            }
        }
    }
    raw.entries
        .insert(key::proc(INTERRUPTS), interrupts.into_bytes());
}

/// The layout as recorded in `raw`; absent sources leave their part empty.
pub fn parse(raw: &RawSnapshot) -> HostLayout {
    let mut layout = HostLayout {
        cpus: raw.text(CPUS).and_then(|t| t.trim().parse().ok()),
        in_host_netns: true,
        ..HostLayout::default()
    };
    if let Some(netns) = raw.text(NETNS) {
        let field = |name: &str| {
            netns
                .lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        if let (Some(me), Some(init)) = (field("self "), field("init ")) {
            layout.in_host_netns = me == init;
        }
    }
    if let Some(list) = raw.text(READ_ONLY_SYSCTLS) {
        layout.read_only_sysctls = list
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
    }
    // Queue masks: "sys/class/net/NIC/queues/QUEUE/FILE", in key (and so queue) order.
    for (k, bytes) in &raw.entries {
        let Some(rest) = k.strip_prefix("sys/class/net/") else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let [nic, "queues", queue, file] = parts[..] else {
            continue;
        };
        let map = match file {
            "rps_cpus" => &mut layout.rps,
            "xps_cpus" => &mut layout.xps,
            _ => continue,
        };
        let mask = String::from_utf8_lossy(bytes).trim().to_string();
        map.entry(nic.to_string())
            .or_default()
            .push((queue.to_string(), mask));
    }
    let interrupts = raw.text(&key::proc(INTERRUPTS)).unwrap_or_default();
    let nics: BTreeSet<&str> = layout
        .rps
        .keys()
        .chain(layout.xps.keys())
        .map(String::as_str)
        .collect();
    for nic in nics {
        for irq in irqs_of(&interrupts, nic) {
            if let Some(list) = raw.text(&key::proc(&format!("irq/{irq}/smp_affinity_list"))) {
                layout
                    .irq_affinity
                    .entry(nic.to_string())
                    .or_default()
                    .push(list.trim().to_string());
            }
        }
    }
    layout
}

/// Sets the RPS CPU mask of one receive queue (`echo MASK > .../queues/rx-N/rps_cpus`).
/// Names and the mask are checked first: nothing outside a queue's file is written.
pub fn write_rps_cpus(nic: &str, queue: &str, mask: &str) -> Result<(), String> {
    let nic_ok = !nic.is_empty()
        && nic.len() < 16
        && nic != "."
        && nic != ".."
        && nic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.@".contains(&b));
    let queue_ok = queue
        .strip_prefix("rx-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let mask_ok = !mask.is_empty() && mask.bytes().all(|b| b.is_ascii_hexdigit() || b == b',');
    if !(nic_ok && queue_ok && mask_ok) {
        return Err(format!(
            "invalid RPS setting {nic} {queue} {mask}: interface, rx-N, hex mask"
        ));
    }
    let path = Path::new(crate::SYS_ROOT)
        .join("class/net")
        .join(nic)
        .join("queues")
        .join(queue)
        .join("rps_cpus");
    std::fs::write(&path, mask).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_with(entries: &[(&str, &str)]) -> RawSnapshot {
        RawSnapshot {
            meta: crate::raw::RawMeta {
                format_version: crate::raw::FORMAT_VERSION,
                taken_at_unix_ms: 0,
                monotonic_ns: 0,
                netsight_version: String::new(),
            },
            entries: entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            missing: BTreeMap::new(),
        }
    }

    #[test]
    fn carry_takes_what_collect_wrote_and_nothing_else() {
        let interfaces: Vec<String> = std::fs::read_dir("/sys/class/net")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let mut first = raw_with(&[
            ("proc/net/snmp", "Tcp: x\n"),
            ("sys/class/net/lo/speed", "1\n"),
        ]);
        collect(
            Path::new("/proc"),
            Path::new("/sys"),
            &interfaces,
            &mut first,
        );
        let mut later = raw_with(&[]);
        carry(&first, &mut later);
        let written: Vec<&String> = first
            .entries
            .keys()
            .filter(|k| !k.contains("speed") && !k.contains("snmp"))
            .collect();
        assert_eq!(later.entries.keys().collect::<Vec<_>>(), written);
        assert_eq!(parse(&later), parse(&first));
    }

    #[test]
    fn parses_masks_irqs_and_namespace() {
        let raw = raw_with(&[
            ("derived/cpus", "4\n"),
            ("derived/netns", "self net:[4026531840]\ninit net:[4026531999]\n"),
            ("derived/read-only-sysctls", "net.core.rmem_max\nnet.core.wmem_max"),
            ("sys/class/net/eth0/queues/rx-0/rps_cpus", "0\n"),
            ("sys/class/net/eth0/queues/rx-1/rps_cpus", "f\n"),
            ("sys/class/net/eth0/queues/tx-0/xps_cpus", "1\n"),
            ("sys/class/net/eth0/speed", "1000\n"),
            (
                "proc/interrupts",
                "           CPU0       CPU1\n 24:   10   20   PCI-MSI 1-edge   eth0-TxRx-0\n 25:  1 2  PCI-MSI eth1\nNMI: 0 0 Non-maskable interrupts\n",
            ),
            ("proc/irq/24/smp_affinity_list", "0-1\n"),
            ("proc/irq/25/smp_affinity_list", "1\n"),
        ]);
        let l = parse(&raw);
        assert_eq!(l.cpus, Some(4));
        assert!(!l.in_host_netns);
        assert_eq!(l.read_only_sysctls.len(), 2);
        assert_eq!(
            l.rps["eth0"],
            vec![
                ("rx-0".to_string(), "0".to_string()),
                ("rx-1".into(), "f".into())
            ]
        );
        assert_eq!(l.xps["eth0"], vec![("tx-0".to_string(), "1".to_string())]);
        assert_eq!(l.irq_affinity["eth0"], vec!["0-1".to_string()]);
        assert!(
            !l.irq_affinity.contains_key("eth1"),
            "eth1 has no queues recorded"
        );
    }

    #[test]
    fn rps_settings_are_checked_before_any_write() {
        for (nic, queue, mask) in [
            ("../../etc", "rx-0", "1"),
            ("eth0", "tx-0", "1"),
            ("eth0", "rx-0/../../x", "1"),
            ("eth0", "rx-0", "1; reboot"),
            ("", "rx-0", "1"),
        ] {
            let e = write_rps_cpus(nic, queue, mask).unwrap_err();
            assert!(e.starts_with("invalid RPS setting"), "{e}");
        }
    }

    #[test]
    fn an_old_bundle_without_the_layout_parses_to_defaults() {
        let l = parse(&raw_with(&[("proc/net/snmp", "")]));
        assert_eq!(l.cpus, None);
        assert!(l.in_host_netns);
        assert!(l.rps.is_empty() && l.irq_affinity.is_empty());
    }

    #[test]
    fn collects_from_a_tree() {
        let dir = std::env::temp_dir().join(format!("netsight-layout-{}", std::process::id()));
        let proc_root = dir.join("proc");
        let sys_root = dir.join("sys");
        let q = sys_root.join("class/net/eth0/queues/rx-0");
        std::fs::create_dir_all(&q).unwrap();
        std::fs::create_dir_all(sys_root.join("class/net/eth0/device")).unwrap();
        std::fs::write(q.join("rps_cpus"), "3\n").unwrap();
        std::fs::create_dir_all(proc_root.join("irq/30")).unwrap();
        std::fs::write(proc_root.join("interrupts"), " 30: 5 PCI-MSI eth0-rx\n").unwrap();
        std::fs::write(proc_root.join("irq/30/smp_affinity_list"), "2\n").unwrap();
        let mut raw = raw_with(&[]);
        collect(
            &proc_root,
            &sys_root,
            &["eth0".into(), "veth9".into()],
            &mut raw,
        );
        let l = parse(&raw);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(l.rps["eth0"], vec![("rx-0".to_string(), "3".to_string())]);
        assert_eq!(l.irq_affinity["eth0"], vec!["2".to_string()]);
        assert!(l.cpus.is_some_and(|n| n >= 1));
    }
}
