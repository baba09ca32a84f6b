//! Connection setup: accept and SYN queues, ephemeral ports, TIME-WAIT, keepalive.

use super::*;

pub(super) fn connection_setup(a: &mut Auditor) {
    let secs = a.activity.interval_s;
    let overflows = a.activity.listen_overflows;
    // ListenDrops counts every drop at a listener, accept-queue overflows included:
    // only the rest can be a full SYN queue, which tcp_max_syn_backlog sizes.
    let syn_queue_drops = a.activity.listen_drops.saturating_sub(overflows);
    let somaxconn = a.number("net.core.somaxconn").unwrap_or(0);
    let want_somaxconn = if a.wants(&[Profile::Connections]) {
        8192
    } else {
        4096
    };
    let reason = if overflows > 0 && somaxconn >= want_somaxconn {
        format!(
            "{overflows} accept-queue overflows in {secs:.1} s (TcpExt ListenOverflows), with somaxconn already {somaxconn}: the application's listen() backlog is small or it accepts too slowly (netsight sockets --listening shows each listener's queue)"
        )
    } else if overflows > 0 {
        format!("{overflows} accept-queue overflows in {secs:.1} s (TcpExt ListenOverflows); somaxconn caps every listen() backlog")
    } else {
        format!("caps every listen() backlog; {want_somaxconn} (the default since 5.4 is 4096) lets busy servers queue bursts")
    };
    a.at_least("net.core.somaxconn", want_somaxconn, reason, None);

    let syn_target = if syn_queue_drops > 0 || a.wants(&[Profile::Connections]) {
        8192
    } else {
        1024
    };
    a.at_least(
        "net.ipv4.tcp_max_syn_backlog",
        syn_target,
        format!(
            "half-open connections per listener before SYN cookies or drops; {syn_queue_drops} SYN-queue drops in {secs:.1} s (ListenDrops minus accept-queue overflows)"
        ),
        None,
    );

    let tw = a
        .snap
        .sockstat
        .get("TCP")
        .and_then(|g| g.get("tw"))
        .copied()
        .unwrap_or(0)
        .max(0) as u64;
    let ports = a
        .snap
        .sysctls
        .get("net.ipv4.ip_local_port_range")
        .and_then(|v| netsight_kernel::sysctl::port_range_size(v))
        .unwrap_or(0);
    let churn = a.wants(&[Profile::Connections]) || (ports > 0 && tw * 2 > ports);
    let target = (churn && ports < 50_000).then(|| "10000 65535".to_string());
    a.sysctl(
        "net.ipv4.ip_local_port_range",
        target,
        format!(
            "{ports} ephemeral ports for outgoing connections, {tw} in TIME-WAIT now; each (destination, port) pair needs a free one. Starting at 10000 keeps clear of most fixed service ports"
        ),
        None,
    );
    let target = (churn && a.number("net.ipv4.tcp_tw_reuse") != Some(1)).then(|| "1".to_string());
    a.sysctl(
        "net.ipv4.tcp_tw_reuse",
        target,
        "1 lets new outgoing connections reuse TIME-WAIT ports when timestamps prove safety (2, the default, allows it on loopback only)".into(),
        None,
    );
    let fin = a.number("net.ipv4.tcp_fin_timeout");
    let target =
        (a.wants(&[Profile::Connections]) && fin.is_some_and(|f| f > 30)).then(|| "30".to_string());
    a.sysctl(
        "net.ipv4.tcp_fin_timeout",
        target,
        "how long an orphaned connection waits in FIN-WAIT-2 for the peer's FIN; 30 s frees memory sooner under churn".into(),
        None,
    );
    for (key, value, what) in [
        ("net.ipv4.tcp_keepalive_time", 600u64, "idle seconds before the first probe (default 7200: a dead peer goes unnoticed for two hours)"),
        ("net.ipv4.tcp_keepalive_intvl", 30, "seconds between probes"),
        ("net.ipv4.tcp_keepalive_probes", 5, "unanswered probes before the connection is dropped"),
    ] {
        let target = (a.wants(&[Profile::Connections]) && a.number(key).is_some_and(|c| c > value)).then(|| value.to_string());
        a.sysctl(key, target, format!("for sockets with SO_KEEPALIVE: {what}; 600/30/5 finds dead peers in ~13 min"), None);
    }
    let fastopen = a.number("net.ipv4.tcp_fastopen").unwrap_or(0);
    let target = (a.wants(&[Profile::Latency, Profile::Connections]) && fastopen & 3 != 3)
        .then(|| (fastopen | 3).to_string());
    a.sysctl(
        "net.ipv4.tcp_fastopen",
        target,
        "3 enables TCP Fast Open for clients and servers: data in the SYN saves one RTT on repeat connections (applications must opt in)".into(),
        Some(TUNED_LATENCY_FASTOPEN),
    );
}
