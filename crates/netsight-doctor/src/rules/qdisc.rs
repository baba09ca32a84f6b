//! Queueing disciplines: drops, standing queues (bufferbloat), throttling, requeues.

use super::{grade, Context, Hit, Rule};
use netsight_report::{Evidence, Layer, Severity, UseKind};

pub static RULES: &[Rule] = &[
    Rule {
        id: "qdisc.drops",
        layer: Layer::Qdisc,
        kind: UseKind::Saturation,
        title: "Queueing discipline drops packets",
        thresholds: ">= 1 drop/s and >= 1 % of the qdisc's packets warns; >= 10 % critical",
        why: "A qdisc drops when its queue is full (pfifo/tbf limit) or when an AQM decides to. Local TCP senders back off on each drop; for forwarded traffic it is plain loss.",
        confirm: &["tc -s qdisc show dev IFACE", "netsight stat QDISC 1 10"],
        fix: &["If a shaper (tbf/htb) is the bottleneck, raise its rate or accept the drops as intended", "Raise the queue limit moderately, or better use an AQM qdisc (fq_codel/cake) where the kernel has it", "Find the senders: netsight sockets --sort bytes"],
        reads: &["tc drops", "tc packets"],
        check: drops,
    },
    Rule {
        id: "qdisc.standing_queue",
        layer: Layer::Qdisc,
        kind: UseKind::Saturation,
        title: "Standing queue in a qdisc (bufferbloat)",
        thresholds: "backlog >= 1 MiB or >= 1000 packets at the end of the interval warns; >= 8 MiB critical",
        why: "A queue that stays full adds its length divided by the link rate to every packet's latency (1 MiB at 100 Mbit/s is 84 ms). Big FIFO queues keep TCP's congestion window inflated instead of signalling early: bufferbloat.",
        confirm: &["tc -s qdisc show dev IFACE   (backlog)", "ping the peer under load and watch RTT rise"],
        fix: &["Use an AQM: tc qdisc replace dev IFACE root fq_codel (or cake) where available", "Otherwise shrink the FIFO limit (tc ... limit) or txqueuelen so queues cannot hold seconds of data"],
        reads: &["tc backlog", "tc qlen", "txqueuelen"],
        check: standing_queue,
    },
    Rule {
        id: "qdisc.overlimits",
        layer: Layer::Qdisc,
        kind: UseKind::Saturation,
        title: "Shaper throttling traffic",
        thresholds: ">= 100 overlimits/s is reported as info (a shaper doing its job); with drops see qdisc.drops",
        why: "Overlimits count packets a shaping qdisc (tbf, htb) had to delay because the class was over its rate. It confirms the shaper is the bottleneck of that path.",
        confirm: &["tc -s class show dev IFACE"],
        fix: &["If the limit is unintended, raise the rate of the class or remove the shaper"],
        reads: &["tc overlimits"],
        check: overlimits,
    },
    Rule {
        id: "qdisc.requeues",
        layer: Layer::Qdisc,
        kind: UseKind::Saturation,
        title: "Driver pushing packets back to the qdisc",
        thresholds: ">= 10 requeues/s is info; >= 1000/s warns",
        why: "A requeue happens when the driver's transmit ring is full and the packet goes back to the qdisc. Many requeues mean the NIC transmit side is the bottleneck.",
        confirm: &["tc -s qdisc show dev IFACE   (requeues)", "ethtool -g IFACE"],
        fix: &["Grow the transmit ring: ethtool -G IFACE tx <max>", "Enable TSO/GSO so fewer, larger packets use the ring: ethtool -K IFACE tso on gso on"],
        reads: &["tc requeues"],
        check: requeues,
    },
];

fn name(q: &netsight_kernel::delta::QdiscRates) -> String {
    format!(
        "{} {} {}",
        q.link.as_deref().unwrap_or("?"),
        q.kind,
        q.handle
    )
}

fn drops(ctx: &Context) -> Vec<Hit> {
    ctx.rates
        .qdiscs
        .iter()
        .filter_map(|q| {
            let d = q.rates.drops;
            if d < 1.0 {
                return None;
            }
            let percent = d * 100.0 / (q.rates.packets + d).max(1.0);
            let severity = grade(percent, 1.0, Some(10.0))?;
            let subject = name(q);
            Some(
                Hit::new(
                    severity,
                    vec![
                        Evidence::new(format!("{subject} drops"), percent, "percent", Some(1.0)),
                        Evidence::new(format!("{subject} drops rate"), d, "per_s", None),
                    ],
                    percent,
                )
                .about(subject),
            )
        })
        .collect()
}

fn standing_queue(ctx: &Context) -> Vec<Hit> {
    const MIB: f64 = 1024.0 * 1024.0;
    ctx.rates
        .qdiscs
        .iter()
        .filter_map(|q| {
            let bytes = q.backlog_bytes as f64;
            let by_bytes = grade(bytes / MIB, 1.0, Some(8.0));
            let by_packets = grade(q.qlen as f64, 1000.0, None);
            let severity = by_bytes.max(by_packets)?;
            let subject = name(q);
            Some(
                Hit::new(
                    severity,
                    vec![
                        Evidence::new(format!("{subject} backlog"), bytes, "bytes", Some(MIB)),
                        Evidence::new(
                            format!("{subject} qlen"),
                            q.qlen as f64,
                            "packets",
                            Some(1000.0),
                        ),
                    ],
                    (bytes / MIB).max(q.qlen as f64 / 1000.0),
                )
                .about(subject),
            )
        })
        .collect()
}

fn overlimits(ctx: &Context) -> Vec<Hit> {
    ctx.rates
        .qdiscs
        .iter()
        .filter(|q| q.rates.overlimits >= 100.0)
        .map(|q| {
            let subject = name(q);
            Hit::new(
                Severity::Info,
                vec![Evidence::new(
                    format!("{subject} overlimits"),
                    q.rates.overlimits,
                    "per_s",
                    Some(100.0),
                )],
                q.rates.overlimits / 100.0,
            )
            .about(subject)
        })
        .collect()
}

fn requeues(ctx: &Context) -> Vec<Hit> {
    ctx.rates
        .qdiscs
        .iter()
        .filter_map(|q| {
            let r = q.rates.requeues;
            let severity = if r >= 1000.0 {
                Severity::Warning
            } else if r >= 10.0 {
                Severity::Info
            } else {
                return None;
            };
            let subject = name(q);
            Some(
                Hit::new(
                    severity,
                    vec![Evidence::new(
                        format!("{subject} requeues"),
                        r,
                        "per_s",
                        Some(10.0),
                    )],
                    r / 10.0,
                )
                .about(subject),
            )
        })
        .collect()
}
