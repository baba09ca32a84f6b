//! softirq/NAPI: the per-CPU backlog (softnet_stat).

use super::{Context, Hit, Rule};
use netsight_report::{Evidence, Layer, Severity, UseKind};

pub static RULES: &[Rule] = &[
    Rule {
        id: "softnet.dropped",
        layer: Layer::Softirq,
        kind: UseKind::Saturation,
        title: "Packets dropped because the per-CPU backlog was full",
        thresholds: "any softnet drop in the interval warns (netdata: softnet dropped > 0); >= 100/s critical",
        why: "Before protocol processing, received packets wait in a per-CPU backlog of net.core.netdev_max_backlog packets (RPS, veth, loopback, non-NAPI drivers). When it is full the kernel drops them silently: the NIC counters look clean, the loss is here.",
        confirm: &["netsight stat SOFT 1 10 --per-cpu", "cat /proc/net/softnet_stat   (2nd column, hex)"],
        fix: &["Spread the load with RPS/RFS so one CPU is not the bottleneck"],
        reads: &["softnet_stat.dropped", "net.core.netdev_max_backlog"],
        check: dropped,
    },
    Rule {
        id: "softnet.time_squeeze",
        layer: Layer::Softirq,
        kind: UseKind::Saturation,
        title: "NAPI polling ran out of budget with work left",
        thresholds: ">= 10 squeezes/s summed over CPUs warns; >= 500/s critical",
        why: "net_rx_action processes at most net.core.netdev_budget packets or netdev_budget_usecs per run; a time squeeze means it stopped with packets still waiting. Occasional squeezes are normal; sustained ones mean receive processing cannot keep up and latency and drops follow.",
        confirm: &["netsight stat SOFT 1 10 --per-cpu   (squeezd/s)", "mpstat -P ALL 1   (%soft per CPU)"],
        fix: &["Spread receive work: more NIC queues (ethtool -L), RPS, irqbalance"],
        reads: &["softnet_stat.time_squeeze", "net.core.netdev_budget", "net.core.netdev_budget_usecs"],
        check: time_squeeze,
    },
    Rule {
        id: "softnet.flow_limit",
        layer: Layer::Softirq,
        kind: UseKind::Saturation,
        title: "RPS flow limit dropped packets of heavy flows",
        thresholds: "any flow_limit_count increase warns",
        why: "With net.core.flow_limit_cpu_bitmap set, the backlog drops packets of the few flows that fill it so that other flows still get through. A rising count means some flows are big enough to saturate a CPU's backlog.",
        confirm: &["netsight stat SOFT 1 10 --per-cpu   (flw_lim/s)"],
        fix: &["Raise net.core.flow_limit_table_len or net.core.netdev_max_backlog, or spread the flows (RSS/RPS)"],
        reads: &["softnet_stat.flow_limit_count"],
        check: flow_limit,
    },
];

fn dropped(ctx: &Context) -> Vec<Hit> {
    let rate: f64 = ctx.rates.softnet.iter().map(|c| c.dropped).sum();
    if rate * ctx.rates.interval_s < 1.0 {
        return Vec::new();
    }
    let backlog = ctx.sysctl("net.core.netdev_max_backlog");
    let mut evidence = vec![Evidence::new(
        "softnet_stat dropped",
        rate,
        "per_s",
        Some(0.0),
    )];
    for c in ctx.rates.softnet.iter().filter(|c| c.dropped > 0.0) {
        evidence.push(Evidence::new(
            format!("cpu{} dropped", c.cpu),
            c.dropped,
            "per_s",
            None,
        ));
    }
    if let Some(b) = backlog {
        evidence.push(Evidence::new(
            "net.core.netdev_max_backlog",
            b as f64,
            "packets",
            None,
        ));
    }
    let severity = if rate >= 100.0 {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let suggested = backlog.map_or(16384, |b| b.saturating_mul(4).clamp(16384, 262144));
    vec![Hit::new(severity, evidence, 1.0 + rate)
        .fix_first(format!("sysctl -w net.core.netdev_max_backlog={suggested}"))]
}

fn time_squeeze(ctx: &Context) -> Vec<Hit> {
    let rate: f64 = ctx.rates.softnet.iter().map(|c| c.time_squeeze).sum();
    let Some(severity) = super::grade(rate, 10.0, Some(500.0)) else {
        return Vec::new();
    };
    let budget = ctx.sysctl("net.core.netdev_budget");
    let mut evidence = vec![Evidence::new(
        "softnet_stat time_squeeze",
        rate,
        "per_s",
        Some(10.0),
    )];
    if let Some(b) = budget {
        evidence.push(Evidence::new(
            "net.core.netdev_budget",
            b as f64,
            "packets",
            None,
        ));
    }
    let suggested = budget.map_or(600, |b| (b * 2).clamp(600, 2000));
    vec![Hit::new(severity, evidence, rate / 10.0).fix_first(format!(
        "sysctl -w net.core.netdev_budget={suggested} net.core.netdev_budget_usecs=8000"
    ))]
}

fn flow_limit(ctx: &Context) -> Vec<Hit> {
    let rate: f64 = ctx
        .rates
        .softnet
        .iter()
        .filter_map(|c| c.flow_limit_count)
        .sum();
    if rate * ctx.rates.interval_s < 1.0 {
        return Vec::new();
    }
    vec![Hit::new(
        Severity::Warning,
        vec![Evidence::new(
            "softnet_stat flow_limit_count",
            rate,
            "per_s",
            Some(0.0),
        )],
        1.0 + rate,
    )]
}
