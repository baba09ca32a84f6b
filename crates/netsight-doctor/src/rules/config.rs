//! Configuration risks: settings that are wrong before any load shows it.

use super::{Context, Hit, Rule};
use netsight_report::{Evidence, Layer, Severity, UseKind};

pub static RULES: &[Rule] = &[
    Rule {
        id: "config.tcp_tw_recycle",
        layer: Layer::Config,
        kind: UseKind::Configuration,
        title: "tcp_tw_recycle is enabled",
        thresholds: "net.ipv4.tcp_tw_recycle = 1 (the knob was removed in Linux 4.12)",
        why: "tcp_tw_recycle drops SYNs whose timestamps go backwards per source address, which breaks clients behind NAT (their timestamps differ): random connection failures for whole offices or carrier NATs.",
        confirm: &["sysctl net.ipv4.tcp_tw_recycle", "nstat -az TcpExtPAWSPassive"],
        fix: &["sysctl -w net.ipv4.tcp_tw_recycle=0 (and remove it from /etc/sysctl.d); use tcp_tw_reuse for outgoing connections instead"],
        reads: &["net.ipv4.tcp_tw_recycle"],
        check: tw_recycle,
    },
    Rule {
        id: "config.syncookies_off",
        layer: Layer::Config,
        kind: UseKind::Configuration,
        title: "SYN cookies are disabled",
        thresholds: "net.ipv4.tcp_syncookies = 0",
        why: "Without SYN cookies a full SYN queue means dropped connection attempts; with them the host keeps accepting legitimate clients during a SYN flood or a burst. The default (1) sends cookies only when the queue overflows.",
        confirm: &["sysctl net.ipv4.tcp_syncookies"],
        fix: &["sysctl -w net.ipv4.tcp_syncookies=1"],
        reads: &["net.ipv4.tcp_syncookies"],
        check: syncookies_off,
    },
    Rule {
        id: "config.somaxconn_small",
        layer: Layer::Config,
        kind: UseKind::Configuration,
        title: "somaxconn caps accept queues that are overflowing",
        thresholds: "net.core.somaxconn < 4096 while ListenOverflows rose in the interval",
        why: "The accept queue is min(listen backlog, net.core.somaxconn). Before Linux 5.4 the default was 128, too small for bursty servers; with overflows happening, a small cap is a likely cause.",
        confirm: &["sysctl net.core.somaxconn", "netsight sockets --listening"],
        fix: &["sysctl -w net.core.somaxconn=4096, and a listen() backlog to match"],
        reads: &["net.core.somaxconn", "TcpExt.ListenOverflows"],
        check: somaxconn_small,
    },
    Rule {
        id: "config.keepalive_default",
        layer: Layer::Config,
        kind: UseKind::Configuration,
        title: "TCP keepalive waits two hours",
        thresholds: "net.ipv4.tcp_keepalive_time >= 7200 s (the default) is info",
        why: "Keepalive probes start after tcp_keepalive_time of idleness. Firewalls, NATs and load balancers usually forget idle flows after 5-60 minutes, so long-idle connections are reset or black-holed before the first probe.",
        confirm: &["sysctl net.ipv4.tcp_keepalive_time net.ipv4.tcp_keepalive_intvl net.ipv4.tcp_keepalive_probes"],
        fix: &["sysctl -w net.ipv4.tcp_keepalive_time=600 net.ipv4.tcp_keepalive_intvl=30 net.ipv4.tcp_keepalive_probes=5 (applies to sockets with SO_KEEPALIVE)"],
        reads: &["net.ipv4.tcp_keepalive_time"],
        check: keepalive,
    },
    Rule {
        id: "config.buffers_vs_link_speed",
        layer: Layer::Config,
        kind: UseKind::Configuration,
        title: "TCP buffer ceiling below the bandwidth-delay product",
        thresholds: "max of tcp_rmem/tcp_wmem < BDP of the fastest physical NIC at a 10 ms RTT: info (virtual links such as veth report a nominal speed and are skipped)",
        why: "A single TCP flow can carry at most window / RTT. The window is capped by the third value of tcp_rmem (receive) and tcp_wmem (send), so a ceiling below bandwidth x RTT leaves the link idle between ACKs.",
        confirm: &["sysctl net.ipv4.tcp_rmem net.ipv4.tcp_wmem net.core.rmem_max net.core.wmem_max", "netsight sockets --sort bytes   (limited by rwnd/sndbuf)"],
        fix: &["Raise the ceilings to at least the BDP (see the computed value above)"],
        reads: &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "/sys/class/net/IFACE/speed"],
        check: buffers_vs_link_speed,
    },
    Rule {
        id: "config.tcp_features_off",
        layer: Layer::Config,
        kind: UseKind::Configuration,
        title: "Core TCP features disabled",
        thresholds: "any of net.ipv4.tcp_window_scaling, tcp_sack, tcp_timestamps = 0 warns",
        why: "Window scaling allows windows above 64 KiB (without it a 100 ms path tops out near 5 Mbit/s); SACK repairs several losses per round trip; timestamps give RTT samples and PAWS protection. Turning them off costs throughput and loss recovery.",
        confirm: &["sysctl net.ipv4.tcp_window_scaling net.ipv4.tcp_sack net.ipv4.tcp_timestamps"],
        fix: &["sysctl -w net.ipv4.tcp_window_scaling=1 net.ipv4.tcp_sack=1 net.ipv4.tcp_timestamps=1"],
        reads: &["net.ipv4.tcp_window_scaling", "net.ipv4.tcp_sack", "net.ipv4.tcp_timestamps"],
        check: tcp_features_off,
    },
    Rule {
        id: "config.rp_filter_strict",
        layer: Layer::Config,
        kind: UseKind::Configuration,
        title: "Strict reverse-path filtering with several interfaces",
        thresholds: "rp_filter = 1 (strict) in conf.all or conf.default and two or more non-loopback interfaces up: info",
        why: "Strict reverse-path filtering drops packets that arrive on an interface other than the one the reply would leave by. With asymmetric routing (multi-homing, policy routing, some tunnels) legitimate traffic disappears without a counter most people look at (IpExt/ RP filter drops show in kfree_skb reasons).",
        confirm: &["sysctl -a 2>/dev/null | grep '\\.rp_filter'", "netsight trace drops --duration 10s: reason IP_RPFILTER"],
        fix: &["Use loose mode where routing is asymmetric: sysctl -w net.ipv4.conf.all.rp_filter=2"],
        reads: &["net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"],
        check: rp_filter,
    },
    Rule {
        id: "config.bbr_without_fq",
        layer: Layer::Config,
        kind: UseKind::Configuration,
        title: "BBR congestion control without the fq qdisc",
        thresholds: "tcp_congestion_control = bbr and net.core.default_qdisc is not fq: info",
        why: "BBR paces its sending rate. Since Linux 4.13 TCP can pace by itself, but the fq qdisc does it more cheaply and precisely; with a plain FIFO default qdisc BBR works with more CPU and burstier output.",
        confirm: &["sysctl net.ipv4.tcp_congestion_control net.core.default_qdisc", "tc qdisc show"],
        fix: &["sysctl -w net.core.default_qdisc=fq where the kernel has sch_fq (it is missing on some minimal kernels: keep internal pacing then)"],
        reads: &["net.ipv4.tcp_congestion_control", "net.core.default_qdisc"],
        check: bbr_without_fq,
    },
    Rule {
        id: "config.port_range_narrow",
        layer: Layer::Config,
        kind: UseKind::Configuration,
        title: "Narrow ephemeral port range",
        thresholds: "net.ipv4.ip_local_port_range spans < 16384 ports: info",
        why: "Each outgoing connection to the same destination needs its own local port, held through TIME-WAIT (60 s). A narrow range caps the sustainable new-connection rate per destination at range / 60 s.",
        confirm: &["sysctl net.ipv4.ip_local_port_range", "netsight sockets --summary   (TIME-WAIT by peer)"],
        fix: &["sysctl -w net.ipv4.ip_local_port_range='1024 65535'"],
        reads: &["net.ipv4.ip_local_port_range"],
        check: port_range_narrow,
    },
];

fn setting(name: &str, value: f64) -> Evidence {
    Evidence::new(name, value, "setting", None)
}

fn tw_recycle(ctx: &Context) -> Vec<Hit> {
    match ctx.sysctl("net.ipv4.tcp_tw_recycle") {
        Some(v) if v != 0 => vec![Hit::new(
            Severity::Critical,
            vec![setting("net.ipv4.tcp_tw_recycle", v as f64)],
            1.0,
        )],
        _ => Vec::new(),
    }
}

fn syncookies_off(ctx: &Context) -> Vec<Hit> {
    match ctx.sysctl("net.ipv4.tcp_syncookies") {
        Some(0) => vec![Hit::new(
            Severity::Warning,
            vec![setting("net.ipv4.tcp_syncookies", 0.0)],
            1.0,
        )],
        _ => Vec::new(),
    }
}

fn somaxconn_small(ctx: &Context) -> Vec<Hit> {
    let (Some(somaxconn), overflows) = (
        ctx.sysctl("net.core.somaxconn"),
        ctx.increase("TcpExt", "ListenOverflows"),
    ) else {
        return Vec::new();
    };
    if somaxconn >= 4096 || overflows < 1.0 {
        return Vec::new();
    }
    vec![Hit::new(
        Severity::Warning,
        vec![
            Evidence::new(
                "net.core.somaxconn",
                somaxconn as f64,
                "connections",
                Some(4096.0),
            ),
            Evidence::new("TcpExt.ListenOverflows increase", overflows, "count", None),
        ],
        4096.0 / somaxconn.max(1) as f64,
    )]
}

fn keepalive(ctx: &Context) -> Vec<Hit> {
    match ctx.sysctl("net.ipv4.tcp_keepalive_time") {
        Some(t) if t >= 7200 => vec![Hit::new(
            Severity::Info,
            vec![Evidence::new(
                "net.ipv4.tcp_keepalive_time",
                t as f64,
                "s",
                Some(7200.0),
            )],
            0.1,
        )],
        _ => Vec::new(),
    }
}

/// BDP in bytes of `speed_mbps` at `rtt_ms`.
pub fn bdp_bytes(speed_mbps: u64, rtt_ms: f64) -> f64 {
    speed_mbps as f64 * 1e6 / 8.0 * rtt_ms / 1e3
}

fn buffers_vs_link_speed(ctx: &Context) -> Vec<Hit> {
    // Real line rates only: veth, bridges and tunnels report nominal speeds.
    let physical = ctx.cur.links.iter().filter(|l| l.is_physical());
    let Some(link) = physical.max_by_key(|l| l.line_rate_mbps().unwrap_or(0)) else {
        return Vec::new();
    };
    let Some(speed) = link.line_rate_mbps() else {
        return Vec::new();
    };
    let bdp = bdp_bytes(speed, 10.0);
    let ceilings = [("net.ipv4.tcp_rmem", 2), ("net.ipv4.tcp_wmem", 2)];
    let evidence: Vec<Evidence> = ceilings
        .iter()
        .filter_map(|(name, idx)| {
            let max = *ctx.sysctl_values(name).get(*idx)? as f64;
            (max < bdp).then(|| Evidence::new(format!("{name} max"), max, "bytes", Some(bdp)))
        })
        .collect();
    if evidence.is_empty() {
        return Vec::new();
    }
    // Info, not a warning: whether any flow has a 10 ms RTT is not known from counters.
    let severity = Severity::Info;
    let target = (bdp as u64).next_power_of_two();
    vec![Hit::new(severity, evidence, 1.0)
        .about(format!("{} at {} Mbit/s, 10 ms RTT", link.name, speed))
        .fix_first(format!(
            "sysctl -w net.core.rmem_max={target} net.core.wmem_max={target} net.ipv4.tcp_rmem='4096 131072 {target}' net.ipv4.tcp_wmem='4096 16384 {target}'"
        ))]
}

fn tcp_features_off(ctx: &Context) -> Vec<Hit> {
    let evidence: Vec<Evidence> = [
        "net.ipv4.tcp_window_scaling",
        "net.ipv4.tcp_sack",
        "net.ipv4.tcp_timestamps",
    ]
    .iter()
    .filter(|n| ctx.sysctl(n) == Some(0))
    .map(|n| setting(n, 0.0))
    .collect();
    if evidence.is_empty() {
        return Vec::new();
    }
    vec![Hit::new(Severity::Warning, evidence, 1.0)]
}

fn rp_filter(ctx: &Context) -> Vec<Hit> {
    let strict: Vec<Evidence> = [
        "net.ipv4.conf.all.rp_filter",
        "net.ipv4.conf.default.rp_filter",
    ]
    .iter()
    .filter(|n| ctx.sysctl(n) == Some(1))
    .map(|n| setting(n, 1.0))
    .collect();
    let up = ctx
        .cur
        .links
        .iter()
        .filter(|l| l.name != "lo" && l.admin_up && l.lower_up)
        .count();
    if strict.is_empty() || up < 2 {
        return Vec::new();
    }
    vec![Hit::new(Severity::Info, strict, 0.1)]
}

fn bbr_without_fq(ctx: &Context) -> Vec<Hit> {
    let (Some("bbr"), Some(qdisc)) = (
        ctx.sysctl_str("net.ipv4.tcp_congestion_control"),
        ctx.sysctl_str("net.core.default_qdisc"),
    ) else {
        return Vec::new();
    };
    if qdisc == "fq" {
        return Vec::new();
    }
    let fact = format!("net.core.default_qdisc = {qdisc} with tcp_congestion_control = bbr");
    vec![Hit::new(
        Severity::Info,
        vec![Evidence::new(fact, 1.0, "text", None)],
        0.1,
    )]
}

fn port_range_narrow(ctx: &Context) -> Vec<Hit> {
    let Some(ports) = ctx
        .sysctl_str("net.ipv4.ip_local_port_range")
        .and_then(netsight_kernel::sysctl::port_range_size)
    else {
        return Vec::new();
    };
    if ports >= 16384 {
        return Vec::new();
    }
    vec![Hit::new(
        Severity::Info,
        vec![Evidence::new(
            "net.ipv4.ip_local_port_range size",
            ports as f64,
            "ports",
            Some(16384.0),
        )],
        16384.0 / ports.max(1) as f64,
    )]
}
