//! The receive path: backlog, NAPI budget, busy polling.

use super::*;

pub(super) fn receive_path(a: &mut Auditor) {
    let secs = a.activity.interval_s;
    let dropped = a.activity.softnet_dropped;
    let squeezed = a.activity.time_squeeze;
    let backlog = a.number("net.core.netdev_max_backlog").unwrap_or(1000);
    let want = if dropped > 0 {
        backlog.saturating_mul(2).max(4096)
    } else if a.wants(&[Profile::Throughput]) {
        8192
    } else {
        0
    };
    a.at_least(
        "net.core.netdev_max_backlog",
        want,
        format!("per-CPU input queue (RPS, veth, loopback); {dropped} packets dropped when it was full in {secs:.1} s (softnet_stat)"),
        None,
    );
    // A squeeze now and then is normal; a steady rate (10/s) means softirq rounds end early.
    let squeezing = secs > 0.0 && squeezed as f64 / secs >= 10.0;
    let (budget_want, usecs_want) = if squeezing || a.wants(&[Profile::Throughput]) {
        (600, 4000)
    } else {
        (0, 0)
    };
    a.at_least(
        "net.core.netdev_budget",
        budget_want,
        format!("packets one softirq round may process; it ran out of budget or time {squeezed} times in {secs:.1} s (time_squeeze)"),
        None,
    );
    a.at_least(
        "net.core.netdev_budget_usecs",
        usecs_want,
        "time limit of one softirq round (µs), raised together with netdev_budget".into(),
        None,
    );
}
