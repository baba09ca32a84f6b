//! NIC and driver: utilization against link speed, drops, errors, FIFO and CRC errors.

use super::{grade, Context, Hit, Rule};
use netsight_report::{Evidence, Layer, Severity, UseKind};

pub static RULES: &[Rule] = &[
    Rule {
        id: "nic.utilization",
        layer: Layer::Nic,
        kind: UseKind::Utilization,
        title: "Interface close to its line rate",
        thresholds: "busier direction >= 80 % of link speed warns, >= 95 % critical (full duplex; half duplex adds both directions, as sar's %ifutil)",
        why: "A link near its speed queues packets in the qdisc and the NIC ring; latency rises before anything is dropped. Utilization is the U of USE: past ~80 % queueing delay grows quickly.",
        confirm: &["netsight stat DEV 1 10   (watch %ifutil)", "ethtool IFACE   (check the negotiated Speed/Duplex)"],
        fix: &["Spread traffic (bonding/ECMP, another NIC) or move to a faster link", "Shape or prioritise bulk traffic (tc htb) so latency-sensitive flows keep headroom", "Check the link negotiated its full speed: ethtool -s IFACE speed N duplex full autoneg on"],
        reads: &["rx_bytes", "tx_bytes", "/sys/class/net/IFACE/speed"],
        check: utilization,
    },
    Rule {
        id: "nic.rx_drops",
        layer: Layer::Nic,
        kind: UseKind::Saturation,
        title: "Interface drops received packets",
        thresholds: ">= 2 % of received packets dropped and >= 1 drop/s warns (netdata's inbound drop ratio); >= 10 % critical",
        why: "rx_dropped counts packets the stack received but had to discard: no buffer in the NIC ring (rx_missed), a full backlog, or no protocol handler. Each drop costs a retransmission for TCP and is loss for UDP.",
        confirm: &["ip -s -s link show IFACE", "ethtool -S IFACE | grep -Ei 'drop|miss|no_buf'", "netsight stat EDEV SOFT 1 10"],
        fix: &["Grow the receive ring: ethtool -G IFACE rx <max from ethtool -g>", "Spread receive work over CPUs: more channels (ethtool -L IFACE combined N) or RPS (echo f > /sys/class/net/IFACE/queues/rx-0/rps_cpus)", "If softnet drops also rise: sysctl -w net.core.netdev_max_backlog=16384"],
        reads: &["rx_dropped", "rx_missed_errors", "rx_packets"],
        check: rx_drops,
    },
    Rule {
        id: "nic.tx_drops",
        layer: Layer::Nic,
        kind: UseKind::Saturation,
        title: "Interface drops packets on transmit",
        thresholds: ">= 2 % of transmitted packets dropped and >= 1 drop/s warns; >= 10 % critical",
        why: "tx_dropped counts packets the driver or qdisc layer could not send, usually a full transmit queue or ring. Senders see it as loss and back off.",
        confirm: &["ip -s -s link show IFACE", "tc -s qdisc show dev IFACE", "ethtool -S IFACE"],
        fix: &["Grow the transmit ring: ethtool -G IFACE tx <max>", "Raise txqueuelen: ip link set IFACE txqueuelen 10000 (with an AQM qdisc where available)", "Find the sender: netsight sockets --sort bytes"],
        reads: &["tx_dropped", "tx_packets"],
        check: tx_drops,
    },
    Rule {
        id: "nic.errors",
        layer: Layer::Nic,
        kind: UseKind::Errors,
        title: "Interface reports receive or transmit errors",
        thresholds: ">= 1 error/s (rx_errors + tx_errors) warns; >= 100/s critical",
        why: "Interface errors are frames the hardware rejected: bad checksums, wrong length, carrier problems. They point below the stack: cable, optics, switch port, driver or firmware.",
        confirm: &["ip -s -s link show IFACE", "ethtool -S IFACE", "dmesg | grep -i IFACE"],
        fix: &["Check cabling/optics and the switch port counters", "Update the NIC driver/firmware", "Check duplex/speed agreement with the peer: ethtool IFACE"],
        reads: &["rx_errors", "tx_errors"],
        check: errors,
    },
    Rule {
        id: "nic.fifo_errors",
        layer: Layer::Nic,
        kind: UseKind::Saturation,
        title: "NIC FIFO overruns",
        thresholds: "any rx/tx FIFO error in the interval warns (netdata: fifo errors > 0)",
        why: "A FIFO overrun means the NIC's internal buffer overflowed before DMA to host memory: the host did not service the ring fast enough (interrupt moderation, CPU, PCIe).",
        confirm: &["ip -s -s link show IFACE", "ethtool -S IFACE | grep -i fifo", "ethtool -c IFACE"],
        fix: &["Grow rings: ethtool -G IFACE rx <max>", "Lower interrupt coalescing delay: ethtool -C IFACE rx-usecs 8", "Spread interrupts over CPUs (irqbalance or /proc/irq/N/smp_affinity)"],
        reads: &["rx_fifo_errors", "tx_fifo_errors"],
        check: fifo_errors,
    },
    Rule {
        id: "nic.crc_frame_errors",
        layer: Layer::Nic,
        kind: UseKind::Errors,
        title: "CRC or framing errors on the wire",
        thresholds: "any CRC/frame/length error in the interval warns; >= 10/s critical",
        why: "CRC and frame errors are corrupted frames arriving on the wire: almost always physical (cable, transceiver, electrical noise) or a duplex mismatch. The stack never sees them, the sender sees loss.",
        confirm: &["ethtool -S IFACE | grep -Ei 'crc|frame|align'", "ethtool IFACE   (Speed/Duplex on both ends)"],
        fix: &["Replace the cable/transceiver or move to another switch port", "Fix duplex mismatch: force the same speed/duplex on both ends or enable autoneg on both"],
        reads: &["rx_crc_errors", "rx_frame_errors", "rx_length_errors"],
        check: crc_frame_errors,
    },
    Rule {
        id: "nic.driver_drops",
        layer: Layer::Nic,
        kind: UseKind::Saturation,
        title: "Driver counters report drops",
        thresholds: "any driver statistic (ethtool -S) that the inventory classes as loss, saturation or error rising warns (names it does not know: by their words, *drop*, *discard*, *miss*, *no_buf*, *exceeded*, *err*, *timeout*...)",
        why: "Drivers count drops that never reach the generic interface counters: per-queue drops, buffer allocation failures, ring overruns, a cloud provider's allowance limits. The counter names the queue and the reason (netsight explain ethtool.NAME).",
        confirm: &["ethtool -S IFACE | grep -Ei 'drop|discard|miss|no_buf|alloc|overrun|exceeded|timeout'"],
        fix: &["Per-queue drops: balance queues (ethtool -X IFACE equal N) or add channels", "Ring overruns (out_of_buffer, no_dma_resources): grow the ring, ethtool -G IFACE rx <max>", "Allocation failures: check memory pressure (vm.min_free_kbytes)", "Allowance exceeded (ena): the instance type's limits; spread the traffic or move to a larger instance"],
        reads: &["ethtool -S"],
        check: driver_drops,
    },
    Rule {
        id: "nic.xdp_drops",
        layer: Layer::Nic,
        kind: UseKind::Errors,
        title: "An XDP program is dropping packets",
        thresholds: "a driver's XDP drop or XDP transmit-error counter rising: >= 10 packets/s warns, fewer is info (a filter that drops scans is normal)",
        why: "The XDP program attached to the interface returned XDP_DROP or XDP_ABORTED for these packets, or the packets it sent back or redirected could not be queued. XDP runs before the stack: no netfilter counter, socket or kernel drop reason sees native-mode XDP drops, only the driver's counters do.",
        confirm: &["ip -d link show IFACE   (prog/xdp id N)", "bpftool prog show id N; bpftool prog dump xlated id N", "ethtool -S IFACE | grep xdp"],
        fix: &["If the drops are not intended, detach the program: ip link set dev IFACE xdp off", "XDP_ABORTED or transmit errors: a program bug or a full target queue; check bpftool prog tracelog and the target's rings"],
        reads: &["ethtool -S (xdp counters)", "IFLA_XDP (the attached program)"],
        check: xdp_drops,
    },
    Rule {
        id: "nic.veth_mtu_mismatch",
        layer: Layer::Nic,
        kind: UseKind::Errors,
        title: "The two ends of a veth pair disagree on the MTU",
        thresholds: "a veth whose peer (found by IFLA_LINK, in this namespace or, with --netns all, in another) has a different MTU warns",
        why: "A veth pair is one wire: a frame sent from the end with the larger MTU that is larger than the other end's MTU is dropped on arrival (is_skb_forwardable) and counted only as a drop. TCP hides it by negotiating the smaller MSS; UDP, ICMP, tunnels and anything that sets DF do not.",
        confirm: &["ip -d link show IFACE; ip -n PEER_NAMESPACE link show PEER", "ping -M do -s <larger MTU - 28> <address across the pair>"],
        fix: &["Set both ends to the same MTU: ip link set dev IFACE mtu N; ip -n PEER_NAMESPACE link set dev PEER mtu N (for containers: the runtime's or CNI's mtu setting)"],
        reads: &["IFLA_MTU", "IFLA_LINK", "IFLA_LINK_NETNSID"],
        check: veth_mtu_mismatch,
    },
    Rule {
        id: "nic.no_carrier",
        layer: Layer::Nic,
        kind: UseKind::Errors,
        title: "Interface is up but has no carrier",
        thresholds: "administratively up, not loopback, and no lower-layer carrier (operstate DOWN/LOWERLAYERDOWN)",
        why: "An interface that is configured up but has no link cannot pass traffic; routes through it black-hole packets.",
        confirm: &["ip link show IFACE", "ethtool IFACE | grep 'Link detected'"],
        fix: &["Check the cable/peer; bring the peer up", "If unused: ip link set IFACE down, and remove its routes"],
        reads: &["operstate", "IFF_UP", "IFF_LOWER_UP"],
        check: no_carrier,
    },
    Rule {
        id: "nic.half_duplex",
        layer: Layer::Nic,
        kind: UseKind::Configuration,
        title: "Link negotiated half duplex",
        thresholds: "/sys/class/net/IFACE/duplex reads half",
        why: "Half duplex means collisions and a fraction of the throughput; on modern Ethernet it almost always means a failed autonegotiation with the peer.",
        confirm: &["ethtool IFACE"],
        fix: &["Enable autonegotiation on both ends: ethtool -s IFACE autoneg on", "Or force the same speed and full duplex on both ends"],
        reads: &["/sys/class/net/IFACE/duplex", "collisions"],
        check: half_duplex,
    },
];

/// (drops, packets) ratio rule shared by rx and tx.
fn drop_ratio(subject: &str, metric: &str, drops_per_s: f64, packets_per_s: f64) -> Option<Hit> {
    if drops_per_s < 1.0 {
        return None;
    }
    let percent = drops_per_s * 100.0 / (drops_per_s + packets_per_s).max(1.0);
    let severity = grade(percent, 2.0, Some(10.0))?;
    Some(
        Hit::new(
            severity,
            vec![
                Evidence::new(format!("{subject} {metric}"), percent, "percent", Some(2.0)),
                Evidence::new(
                    format!("{subject} {metric} rate"),
                    drops_per_s,
                    "per_s",
                    None,
                ),
            ],
            percent / 2.0,
        )
        .about(subject),
    )
}

fn utilization(ctx: &Context) -> Vec<Hit> {
    ctx.rates
        .links
        .iter()
        .filter_map(|l| {
            let speed = l.speed_mbps? as f64 * 1e6;
            let (rx, tx) = (l.stats.rx_bytes * 8.0, l.stats.tx_bytes * 8.0);
            let busiest = if l.duplex.as_deref() == Some("half") {
                rx + tx
            } else {
                rx.max(tx)
            };
            let percent = busiest * 100.0 / speed;
            let severity = grade(percent, 80.0, Some(95.0))?;
            Some(
                Hit::new(
                    severity,
                    vec![
                        Evidence::new(
                            format!("{} utilization", l.name),
                            percent,
                            "percent",
                            Some(80.0),
                        ),
                        Evidence::new(format!("{} speed", l.name), speed / 1e6, "Mbit/s", None),
                    ],
                    percent / 80.0,
                )
                .about(&l.name),
            )
        })
        .collect()
}

fn rx_drops(ctx: &Context) -> Vec<Hit> {
    ctx.rates
        .links
        .iter()
        .filter_map(|l| {
            let s = &l.stats;
            drop_ratio(
                &l.name,
                "rx_dropped",
                s.rx_dropped + s.rx_missed_errors,
                s.rx_packets,
            )
        })
        .collect()
}

fn tx_drops(ctx: &Context) -> Vec<Hit> {
    ctx.rates
        .links
        .iter()
        .filter_map(|l| {
            drop_ratio(
                &l.name,
                "tx_dropped",
                l.stats.tx_dropped,
                l.stats.tx_packets,
            )
        })
        .collect()
}

fn errors(ctx: &Context) -> Vec<Hit> {
    ctx.rates
        .links
        .iter()
        .filter_map(|l| {
            let rate = l.stats.rx_errors + l.stats.tx_errors;
            let severity = grade(rate, 1.0, Some(100.0))?;
            Some(
                Hit::new(
                    severity,
                    vec![
                        Evidence::new(
                            format!("{} rx_errors", l.name),
                            l.stats.rx_errors,
                            "per_s",
                            Some(1.0),
                        ),
                        Evidence::new(
                            format!("{} tx_errors", l.name),
                            l.stats.tx_errors,
                            "per_s",
                            Some(1.0),
                        ),
                    ],
                    rate,
                )
                .about(&l.name),
            )
        })
        .collect()
}

fn fifo_errors(ctx: &Context) -> Vec<Hit> {
    let secs = ctx.rates.interval_s;
    ctx.rates
        .links
        .iter()
        .filter_map(|l| {
            let rate = l.stats.rx_fifo_errors + l.stats.tx_fifo_errors + l.stats.rx_over_errors;
            (rate * secs >= 1.0).then(|| {
                Hit::new(
                    Severity::Warning,
                    vec![
                        Evidence::new(
                            format!("{} rx_fifo_errors", l.name),
                            l.stats.rx_fifo_errors,
                            "per_s",
                            Some(0.0),
                        ),
                        Evidence::new(
                            format!("{} tx_fifo_errors", l.name),
                            l.stats.tx_fifo_errors,
                            "per_s",
                            Some(0.0),
                        ),
                        Evidence::new(
                            format!("{} rx_over_errors", l.name),
                            l.stats.rx_over_errors,
                            "per_s",
                            Some(0.0),
                        ),
                    ],
                    1.0 + rate,
                )
                .about(&l.name)
            })
        })
        .collect()
}

fn crc_frame_errors(ctx: &Context) -> Vec<Hit> {
    let secs = ctx.rates.interval_s;
    ctx.rates
        .links
        .iter()
        .filter_map(|l| {
            let s = &l.stats;
            let rate = s.rx_crc_errors + s.rx_frame_errors + s.rx_length_errors;
            if rate * secs < 1.0 {
                return None;
            }
            let severity = if rate >= 10.0 {
                Severity::Critical
            } else {
                Severity::Warning
            };
            Some(
                Hit::new(
                    severity,
                    vec![
                        Evidence::new(
                            format!("{} rx_crc_errors", l.name),
                            s.rx_crc_errors,
                            "per_s",
                            Some(0.0),
                        ),
                        Evidence::new(
                            format!("{} rx_frame_errors", l.name),
                            s.rx_frame_errors,
                            "per_s",
                            Some(0.0),
                        ),
                        Evidence::new(
                            format!("{} rx_length_errors", l.name),
                            s.rx_length_errors,
                            "per_s",
                            Some(0.0),
                        ),
                    ],
                    1.0 + rate,
                )
                .about(&l.name),
            )
        })
        .collect()
}

/// The driver counters of `rule` that rose over the interval, per interface, as
/// per-second evidence.
fn driver_counter_rates<'a>(
    ctx: &'a Context,
    rule: &str,
) -> Vec<(&'a netsight_kernel::link::Link, Vec<Evidence>)> {
    use crate::inventory::{classify_driver_counter, Coverage};
    let mut out = Vec::new();
    for cur in &ctx.cur.links {
        let Some(prev) = ctx
            .prev
            .link(&cur.name)
            .filter(|p| p.ifindex == cur.ifindex)
        else {
            continue;
        };
        let (Some(now), Some(before)) =
            (cur.driver_stats.available(), prev.driver_stats.available())
        else {
            continue;
        };
        let evidence: Vec<Evidence> = now
            .iter()
            .filter(|(name, _)| {
                matches!(classify_driver_counter(name).1, Coverage::Rules(r) if r.contains(&rule))
            })
            .filter_map(|(name, &v)| {
                // ethtool -S values are u64s: a decrease is a driver reset, not loss.
                let increase = netsight_kernel::rates::increase(
                    netsight_kernel::rates::CounterKind::Monotonic64,
                    *before.get(name)?,
                    v,
                )?;
                (increase > 0).then(|| {
                    Evidence::new(
                        format!("{} {name}", cur.name),
                        increase as f64 / ctx.rates.interval_s,
                        "per_s",
                        Some(0.0),
                    )
                })
            })
            .collect();
        if !evidence.is_empty() {
            out.push((cur, evidence));
        }
    }
    out
}

fn driver_drops(ctx: &Context) -> Vec<Hit> {
    driver_counter_rates(ctx, "nic.driver_drops")
        .into_iter()
        .map(|(link, evidence)| {
            let total: f64 = evidence.iter().map(|e| e.value).sum();
            Hit::new(Severity::Warning, evidence, 1.0 + total).about(&link.name)
        })
        .collect()
}

/// Below this an XDP program's drops are context, not a warning.
const XDP_WARN_PER_S: f64 = 10.0;

fn xdp_drops(ctx: &Context) -> Vec<Hit> {
    driver_counter_rates(ctx, "nic.xdp_drops")
        .into_iter()
        .map(|(link, mut evidence)| {
            let total: f64 = evidence.iter().map(|e| e.value).sum();
            let mut extra_fix = Vec::new();
            if let Some(prog) = &link.xdp {
                evidence.push(Evidence::new(
                    format!("{} xdp program id ({} mode)", link.name, prog.mode),
                    prog.id as f64,
                    "id",
                    None,
                ));
                extra_fix.push(format!(
                    "The program is id {}: bpftool prog show id {}; detach with ip link set dev {} xdp off",
                    prog.id, prog.id, link.name
                ));
            }
            let severity = if total >= XDP_WARN_PER_S {
                Severity::Warning
            } else {
                Severity::Info
            };
            let mut hit = Hit::new(severity, evidence, total / XDP_WARN_PER_S).about(&link.name);
            hit.extra_fix = extra_fix;
            hit
        })
        .collect()
}

/// One end of a veth pair as `veth_mtu_mismatches` sees it: the namespace it is
/// in ("" for the one being diagnosed) and its link.
pub struct LinkEnd<'a> {
    pub namespace: &'a str,
    /// The namespace's inode, when known: what a resolved `peer_netns` names.
    pub inode: Option<u32>,
    pub link: &'a netsight_kernel::link::Link,
}

/// veth pairs whose ends have different MTUs, among `ends` (one namespace's links,
/// or every namespace's). An end's peer is the veth whose ifindex is its IFLA_LINK
/// and whose IFLA_LINK is its ifindex: in its own namespace when it has no
/// IFLA_LINK_NETNSID, in the namespace that id resolved to when it was resolved,
/// else in some other namespace. Ambiguous matches (ifindexes repeat across
/// namespaces) are skipped rather than guessed. Each pair once;
/// with `across_only`, only pairs that join two namespaces.
pub fn veth_mtu_mismatches(ends: &[LinkEnd], across_only: bool) -> Vec<Hit> {
    let veth = |e: &&LinkEnd| e.link.kind.as_deref() == Some("veth");
    let mut hits = Vec::new();
    for (i, a) in ends.iter().enumerate().filter(|(_, e)| veth(e)) {
        let (Some(index), Some(peer_index)) = (a.link.ifindex, a.link.peer_ifindex) else {
            continue;
        };
        let mut peers = ends.iter().enumerate().filter(|(_, b)| {
            veth(b)
                && b.link.ifindex == Some(peer_index)
                && b.link.peer_ifindex == Some(index)
                && in_peer_namespace(a, b)
                && in_peer_namespace(b, a)
        });
        let (Some((j, b)), None) = (peers.next(), peers.next()) else {
            continue;
        };
        let (Some(mtu_a), Some(mtu_b)) = (a.link.mtu, b.link.mtu) else {
            continue;
        };
        if j < i || mtu_a == mtu_b || (across_only && a.namespace == b.namespace) {
            continue;
        }
        let at = |e: &LinkEnd| {
            if e.namespace.is_empty() {
                e.link.name.clone()
            } else {
                format!("{} ({})", e.link.name, e.namespace)
            }
        };
        let (big, small) = if mtu_a > mtu_b { (a, b) } else { (b, a) };
        let mut hit = Hit::new(
            Severity::Warning,
            vec![
                Evidence::new(format!("{} mtu", at(a)), mtu_a as f64, "bytes", None),
                Evidence::new(format!("{} mtu", at(b)), mtu_b as f64, "bytes", None),
            ],
            1.0,
        )
        .about(format!("{} <-> {}", at(a), at(b)));
        hit.extra_fix.push(format!(
            "Frames over {} bytes sent from {} are dropped by {}: set both to the same MTU",
            small.link.mtu.unwrap_or_default(),
            at(big),
            at(small)
        ));
        hits.push(hit);
    }
    hits
}

/// Whether `b` is where `a`'s IFLA_LINK_NETNSID says its peer is.
fn in_peer_namespace(a: &LinkEnd, b: &LinkEnd) -> bool {
    match (a.link.peer_netnsid, a.link.peer_netns) {
        (None, _) => b.namespace == a.namespace,
        (Some(_), Some(inode)) => b.inode == Some(inode),
        (Some(_), None) => b.namespace != a.namespace,
    }
}

fn veth_mtu_mismatch(ctx: &Context) -> Vec<Hit> {
    let ends: Vec<LinkEnd> = ctx
        .cur
        .links
        .iter()
        .map(|link| LinkEnd {
            namespace: "",
            inode: None,
            link,
        })
        .collect();
    veth_mtu_mismatches(&ends, false)
}

fn no_carrier(ctx: &Context) -> Vec<Hit> {
    ctx.cur
        .links
        .iter()
        .filter(|l| l.admin_up && !l.lower_up && l.name != "lo")
        .filter(|l| matches!(l.operstate.as_deref(), Some("DOWN" | "LOWERLAYERDOWN")))
        .map(|l| {
            Hit::new(
                Severity::Warning,
                vec![Evidence::new(
                    format!("{} carrier", l.name),
                    0.0,
                    "bool",
                    Some(1.0),
                )],
                1.0,
            )
            .about(&l.name)
        })
        .collect()
}

fn half_duplex(ctx: &Context) -> Vec<Hit> {
    ctx.cur
        .links
        .iter()
        .filter(|l| l.duplex.as_deref() == Some("half"))
        .map(|l| {
            Hit::new(
                Severity::Warning,
                vec![Evidence::new(
                    format!("{} duplex half", l.name),
                    1.0,
                    "bool",
                    None,
                )],
                1.0,
            )
            .about(&l.name)
        })
        .collect()
}
