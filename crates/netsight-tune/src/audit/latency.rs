//! Congestion control, queueing discipline and latency settings.

use super::*;

pub(super) fn congestion_and_latency(a: &mut Auditor) {
    let pacing = a.wants(&[Profile::Throughput, Profile::Latency]);
    let qdisc = a.current("net.core.default_qdisc");
    let target = (pacing && qdisc.as_deref() != Some("fq")).then(|| "fq".to_string());
    a.sysctl(
        "net.core.default_qdisc",
        target,
        "fq paces each flow (BBR relies on it) and isolates flows from each other; it applies to interfaces set up afterwards (or `tc qdisc replace dev IF root fq`). fq_codel, the usual default, suits routers".into(),
        None,
    );
    let available = a
        .current("net.ipv4.tcp_available_congestion_control")
        .unwrap_or_default();
    let cc = a.current("net.ipv4.tcp_congestion_control");
    let has_bbr = available.split(' ').any(|c| c == "bbr");
    let target = (a.wants(&[Profile::Throughput]) && has_bbr && cc.as_deref() != Some("bbr"))
        .then(|| "bbr".to_string());
    let reason = if has_bbr {
        "BBR models bandwidth and RTT instead of reacting to loss: far better throughput on long or lossy paths (use with fq)".to_string()
    } else {
        format!("BBR is not available here (available: {available}); `modprobe tcp_bbr` (kernel 4.9+) first, then set bbr")
    };
    a.sysctl("net.ipv4.tcp_congestion_control", target, reason, None);

    let target = (a.wants(&[Profile::Throughput, Profile::Latency])
        && a.number("net.ipv4.tcp_slow_start_after_idle") != Some(0))
    .then(|| "0".to_string());
    a.sysctl(
        "net.ipv4.tcp_slow_start_after_idle",
        target,
        "1 (default) collapses the congestion window after an idle RTO: long-lived connections with bursts (HTTP/2, RPC) restart slowly".into(),
        None,
    );
    let target = (a.wants(&[Profile::Latency])
        && a.number("net.ipv4.tcp_notsent_lowat")
            .is_some_and(|v| v > 131_072))
    .then(|| "131072".to_string());
    a.sysctl(
        "net.ipv4.tcp_notsent_lowat",
        target,
        "limits data queued but not yet sent per socket: writers block sooner and send the freshest data (HTTP/2 prioritisation, lower memory)".into(),
        None,
    );
    for key in ["net.core.busy_read", "net.core.busy_poll"] {
        let target =
            (a.wants(&[Profile::Latency]) && a.number(key) == Some(0)).then(|| "50".to_string());
        a.sysctl(
            key,
            target,
            "µs a blocking receive/poll spins on the NIC queue before sleeping: lower, steadier latency at the cost of CPU".into(),
            Some(TUNED_LATENCY_BUSY),
        );
    }
}
