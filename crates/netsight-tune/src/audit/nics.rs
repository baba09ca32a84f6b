//! NIC advice: rings, coalescing, offloads, channels, RPS/XPS and IRQ spread.

use super::*;

pub(super) fn nics(a: &mut Auditor) {
    let forwarding = a.number("net.ipv4.ip_forward") == Some(1);
    let bridged: Vec<&str> = a
        .snap
        .links
        .iter()
        .filter(|l| l.kind.as_deref() == Some("bridge"))
        .map(|l| l.name.as_str())
        .collect();
    let links: Vec<_> = a
        .snap
        .links
        .iter()
        .filter(|l| l.is_physical())
        .cloned()
        .collect();
    for link in &links {
        let name = &link.name;
        let fast = link.speed_mbps.unwrap_or(0) >= 10_000;
        if let Some(mtu) = link.mtu {
            if a.wants(&[Profile::Throughput]) && fast && mtu <= 1500 {
                a.advice(
                    format!("{name}: mtu"),
                    mtu.to_string(),
                    "9000".into(),
                    "jumbo frames cut per-packet CPU cost ~6x at 10G+, but only if every hop and peer on the L2 segment has the same MTU".into(),
                    format!("ip link set dev {name} mtu 9000"),
                );
            } else {
                a.nic_ok(
                    format!("{name}: mtu"),
                    mtu.to_string(),
                    "jumbo frames only pay off at 10G+ on a segment that supports them".into(),
                );
            }
        }
        let rx_drops =
            link.stats.rx_dropped + link.stats.rx_missed_errors + link.stats.rx_fifo_errors;
        if let Support::Available(rings) = &link.ethtool.rings {
            if let (Some(&rx), Some(&rx_max)) = (rings.get("rx"), rings.get("rx_max")) {
                let tx_max = rings.get("tx_max").copied().unwrap_or(0);
                if rx < rx_max && (rx_drops > 0 || a.wants(&[Profile::Throughput])) {
                    a.advice(
                        format!("{name}: rx ring"),
                        rx.to_string(),
                        rx_max.to_string(),
                        format!("{rx_drops} receive drops/misses since the link came up; a larger ring absorbs bursts while softirq catches up (costs some latency and memory)"),
                        format!("ethtool -G {name} rx {rx_max}{}", if tx_max > 0 { format!(" tx {tx_max}") } else { String::new() }),
                    );
                } else {
                    a.nic_ok(
                        format!("{name}: rx ring"),
                        format!("{rx} of {rx_max}"),
                        format!("{rx_drops} receive drops/misses"),
                    );
                }
            }
        }
        if let Support::Available(c) = &link.ethtool.coalesce {
            let adaptive = c.get("adaptive_rx").copied().unwrap_or(0) == 1;
            let usecs = c.get("rx_usecs").copied().unwrap_or(0);
            let current = format!(
                "adaptive-rx {} rx-usecs {usecs}",
                if adaptive { "on" } else { "off" }
            );
            if a.wants(&[Profile::Latency]) && (adaptive || usecs > 8) {
                a.advice(format!("{name}: coalescing"), current, "adaptive-rx off rx-usecs 0".into(),
                    "interrupt coalescing holds packets up to rx-usecs before interrupting: latency pays for it".into(),
                    format!("ethtool -C {name} adaptive-rx off rx-usecs 0"));
            } else if a.wants(&[Profile::Throughput]) && !adaptive && usecs < 8 {
                a.advice(format!("{name}: coalescing"), current, "adaptive-rx on".into(),
                    "an interrupt per packet costs CPU at high packet rates; adaptive coalescing batches under load".into(),
                    format!("ethtool -C {name} adaptive-rx on"));
            } else {
                a.nic_ok(
                    format!("{name}: coalescing"),
                    current,
                    "suits the profile".into(),
                );
            }
        }
        if let Support::Available(features) = &link.ethtool.features {
            for (feature, flag) in [
                ("tcp-segmentation-offload", "tso"),
                ("tx-generic-segmentation", "gso"),
                ("rx-gro", "gro"),
            ] {
                match features.get(feature) {
                    Some(false) => a.advice(format!("{name}: {flag}"), "off".into(), "on".into(),
                        format!("{flag} lets the stack handle 64 KiB super-packets instead of MTU-sized ones: far fewer per-packet costs"),
                        format!("ethtool -K {name} {flag} on")),
                    Some(true) => a.nic_ok(format!("{name}: {flag}"), "on".into(), "segmentation offloads cut per-packet cost".into()),
                    None => {}
                }
            }
            if features.get("rx-lro") == Some(&true) {
                if forwarding || !bridged.is_empty() {
                    a.items.push(Item {
                        key: format!("{name}: lro"),
                        kind: ItemKind::Nic,
                        current: Some("on".into()),
                        recommended: Some("off".into()),
                        status: Status::Danger,
                        reason: "dangerous with routing or bridging: LRO merges packets in ways that cannot be re-segmented exactly (use GRO)".into(),
                        command: Some(format!("ethtool -K {name} lro off")),
                        tuned: None,
                    });
                } else {
                    a.nic_ok(
                        format!("{name}: lro"),
                        "on".into(),
                        "fine on an end host; turn it off if this host routes or bridges".into(),
                    );
                }
            }
        }
        if let Support::Available(ch) = &link.ethtool.channels {
            let combined = ch.get("combined").copied().unwrap_or(0);
            let max = ch.get("combined_max").copied().unwrap_or(0);
            let want = max.min(a.facts.cpus as u64);
            if combined > 0 && combined < want {
                a.advice(
                    format!("{name}: channels"),
                    combined.to_string(),
                    want.to_string(),
                    format!(
                        "{combined} queue(s) for {} CPUs: receive work lands on few CPUs",
                        a.facts.cpus
                    ),
                    format!("ethtool -L {name} combined {want}"),
                );
            } else if combined > 0 {
                a.nic_ok(
                    format!("{name}: channels"),
                    combined.to_string(),
                    format!("{} CPUs, {max} queues possible", a.facts.cpus),
                );
            }
        }
        rps_xps(a, name);
    }
}

/// A sysfs CPU mask ("00000000,00000000") with no CPU set.
pub(super) fn no_cpus(mask: &str) -> bool {
    mask.trim_start_matches(['0', ',']).is_empty()
}

pub(super) fn rps_xps(a: &mut Auditor, name: &str) {
    let cpus = a.facts.cpus;
    if cpus < 2 {
        return;
    }
    let all_cpus = format!("{:x}", (1u128 << cpus.min(127)) - 1);
    let rps = a.facts.rps.get(name).cloned().unwrap_or_default();
    if rps.len() == 1 {
        let (queue, mask) = &rps[0];
        if no_cpus(mask) {
            a.advice(format!("{name}: rps"), mask.clone(), all_cpus.clone(),
                format!("one receive queue and RPS off: all receive processing runs on the CPU taking the interrupt, {cpus} CPUs available"),
                format!("echo {all_cpus} > /sys/class/net/{name}/queues/{queue}/rps_cpus"));
        } else {
            a.nic_ok(
                format!("{name}: rps"),
                mask.clone(),
                "RPS spreads receive work".into(),
            );
        }
    }
    let xps = a.facts.xps.get(name).cloned().unwrap_or_default();
    if xps.len() > 1 && xps.iter().all(|(_, m)| no_cpus(m)) {
        a.advice(format!("{name}: xps"), "unset".into(), "one CPU per queue".into(),
            "with several transmit queues and no XPS, any CPU may pick any queue: lock contention and reordering".into(),
            format!("for i in $(seq 0 {}); do printf %x $((1<<i)) > /sys/class/net/{name}/queues/tx-$i/xps_cpus; done", xps.len() - 1));
    }
    if let Some(irqs) = a.facts.irq_affinity.get(name) {
        if irqs.len() > 1 && irqs.iter().all(|l| l == &irqs[0]) && !irqs[0].contains(['-', ',']) {
            a.advice(
                format!("{name}: irq affinity"),
                format!("all {} IRQs on CPU {}", irqs.len(), irqs[0]),
                "spread over CPUs".into(),
                "every queue interrupts the same CPU, so multi-queue receive gains nothing".into(),
                "systemctl start irqbalance   (or write /proc/irq/N/smp_affinity_list per queue)"
                    .into(),
            );
        }
    }
}
