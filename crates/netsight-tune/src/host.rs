//! Facts the audit needs, taken from the snapshot: CPUs, RPS/XPS masks, NIC IRQ
//! affinity, the namespace, the round-trip times of live connections.

use std::collections::{BTreeMap, BTreeSet};

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
    /// The facts as the snapshot recorded them (live or from a bundle): nothing
    /// here reads the kernel.
    pub fn from_snapshot(snapshot: &Snapshot) -> HostFacts {
        let layout = &snapshot.host;
        let nics: BTreeSet<&str> = snapshot
            .links
            .iter()
            .filter(|l| l.is_physical())
            .map(|l| l.name.as_str())
            .collect();
        let of_nics = |map: &BTreeMap<String, Vec<(String, String)>>| {
            map.iter()
                .filter(|(nic, _)| nics.contains(nic.as_str()))
                .map(|(nic, queues)| (nic.clone(), queues.clone()))
                .collect()
        };
        let mut facts = HostFacts {
            cpus: layout.cpus.unwrap_or(1),
            in_host_netns: layout.in_host_netns,
            rps: of_nics(&layout.rps),
            xps: of_nics(&layout.xps),
            irq_affinity: layout
                .irq_affinity
                .iter()
                .filter(|(nic, _)| nics.contains(nic.as_str()))
                .map(|(nic, irqs)| (nic.clone(), irqs.clone()))
                .collect(),
            median_rtt_us: None,
            read_only_sysctls: layout
                .read_only_sysctls
                .iter()
                .filter(|k| snapshot.sysctls.contains_key(*k))
                .cloned()
                .collect(),
        };
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
