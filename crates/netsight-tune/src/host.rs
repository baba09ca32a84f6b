//! Facts the audit needs beyond the snapshot: CPUs, RPS/XPS masks, NIC IRQ
//! affinity, the namespace, the round-trip times of live connections.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use netsight_kernel::sockets::TcpState;
use netsight_kernel::Snapshot;
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct HostFacts {
    pub cpus: usize,
    /// False inside a network namespace other than PID 1's: host-wide sysctls are not visible.
    pub in_host_netns: bool,
    /// Per interface: (queue, cpu mask) of rx-N/rps_cpus.
    pub rps: BTreeMap<String, Vec<(String, String)>>,
    /// Per interface: (queue, cpu mask) of tx-N/xps_cpus.
    pub xps: BTreeMap<String, Vec<(String, String)>>,
    /// Per interface: the smp_affinity_list of each IRQ named after it in /proc/interrupts.
    pub irq_affinity: BTreeMap<String, Vec<String>>,
    /// Median smoothed RTT of established non-loopback TCP connections.
    pub median_rtt_us: Option<u64>,
    /// Sysctls present but read-only here: a child network namespace sees some
    /// host-wide values (net.core.rmem_max...) without being allowed to set them.
    pub read_only_sysctls: BTreeSet<String>,
}

impl HostFacts {
    pub fn collect(proc_root: &Path, sys_root: &Path, snapshot: &Snapshot) -> HostFacts {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let in_host_netns = match (
            std::fs::read_link(proc_root.join("self/ns/net")),
            std::fs::read_link(proc_root.join("1/ns/net")),
        ) {
            (Ok(me), Ok(init)) => me == init,
            // Without access to PID 1's namespace assume the host (the common case).
            _ => true,
        };
        let mut facts = HostFacts {
            cpus,
            in_host_netns,
            ..HostFacts::default()
        };
        for key in snapshot.sysctls.keys() {
            let path = proc_root.join("sys").join(key.replace('.', "/"));
            if std::fs::metadata(&path).is_ok_and(|m| m.permissions().mode() & 0o222 == 0) {
                facts.read_only_sysctls.insert(key.clone());
            }
        }
        let interrupts = std::fs::read_to_string(proc_root.join("interrupts")).unwrap_or_default();
        for link in snapshot.links.iter().filter(|l| is_physical(l)) {
            let queues = sys_root.join("class/net").join(&link.name).join("queues");
            if let Ok(entries) = std::fs::read_dir(&queues) {
                let mut names: Vec<String> = entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                for q in names {
                    let (file, map) = if q.starts_with("rx-") {
                        ("rps_cpus", &mut facts.rps)
                    } else {
                        ("xps_cpus", &mut facts.xps)
                    };
                    if let Ok(mask) = std::fs::read_to_string(queues.join(&q).join(file)) {
                        map.entry(link.name.clone())
                            .or_default()
                            .push((q.clone(), mask.trim().to_string()));
                    }
                }
            }
            let irqs = interrupts
                .lines()
                .filter(|l| {
                    l.split_whitespace()
                        .last()
                        .is_some_and(|n| n.starts_with(link.name.as_str()))
                })
                .filter_map(|l| l.split(':').next().map(|n| n.trim().to_string()));
            for irq in irqs {
                if let Ok(list) = std::fs::read_to_string(
                    proc_root.join("irq").join(&irq).join("smp_affinity_list"),
                ) {
                    facts
                        .irq_affinity
                        .entry(link.name.clone())
                        .or_default()
                        .push(list.trim().to_string());
                }
            }
        }
        if let Some(table) = &snapshot.sockets {
            let mut rtts: Vec<u64> = table
                .sockets
                .iter()
                .filter(|s| s.state == TcpState::Established && !s.remote_addr.is_loopback())
                .filter_map(|s| s.tcp_info.as_ref().map(|t| u64::from(t.rtt_us)))
                .filter(|&rtt| rtt > 0)
                .collect();
            rtts.sort_unstable();
            facts.median_rtt_us = rtts.get(rtts.len() / 2).copied();
        }
        facts
    }
}

/// A NIC: no rtnetlink kind (veth, bridge, tun... have one) and not loopback.
pub fn is_physical(link: &netsight_kernel::link::Link) -> bool {
    link.kind.is_none() && link.name != "lo"
}
