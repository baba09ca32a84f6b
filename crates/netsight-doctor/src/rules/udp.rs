//! UDP: receive/send buffer overflows, checksum errors, closed ports.

use super::{Context, Hit, Rule};
use netsight_report::{Evidence, Layer, Severity, UseKind};

pub static RULES: &[Rule] = &[
    Rule {
        id: "udp.receive_buffer_errors",
        layer: Layer::Udp,
        kind: UseKind::Saturation,
        title: "UDP datagrams dropped: receive buffer full",
        thresholds: "any Udp/Udp6 RcvbufErrors increase warns (netdata: UDP receive buffer errors); >= 100/s critical",
        why: "Each UDP socket queues datagrams up to its receive buffer (SO_RCVBUF, default net.core.rmem_default, capped by net.core.rmem_max). If the application reads slower than datagrams arrive, the kernel drops them: silent loss for DNS, syslog, metrics, QUIC.",
        confirm: &["nstat -az UdpRcvbufErrors Udp6RcvbufErrors UdpInErrors", "netsight sockets --udp --sort queue   (Recv-Q near the buffer; skmem drops)"],
        fix: &["Read faster (more reader threads, SO_REUSEPORT, recvmmsg)", "Give the socket a bigger buffer: the application's SO_RCVBUF, after sysctl -w net.core.rmem_max=26214400"],
        reads: &["Udp.RcvbufErrors", "Udp6.RcvbufErrors", "net.core.rmem_max", "net.core.rmem_default"],
        check: receive_buffer_errors,
    },
    Rule {
        id: "udp.send_buffer_errors",
        layer: Layer::Udp,
        kind: UseKind::Saturation,
        title: "UDP sends failed: send buffer full",
        thresholds: "any Udp/Udp6 SndbufErrors increase warns; >= 100/s critical",
        why: "A UDP send fails with ENOBUFS/EAGAIN when the socket's send buffer (or the device queue behind it) is full; the datagram is never sent.",
        confirm: &["nstat -az UdpSndbufErrors Udp6SndbufErrors", "tc -s qdisc   (drops behind it)"],
        fix: &["Raise SO_SNDBUF (after net.core.wmem_max) or pace the sender", "Check qdisc.* findings on the egress interface"],
        reads: &["Udp.SndbufErrors", "Udp6.SndbufErrors", "net.core.wmem_max"],
        check: send_buffer_errors,
    },
    Rule {
        id: "udp.checksum_errors",
        layer: Layer::Udp,
        kind: UseKind::Errors,
        title: "UDP checksum errors",
        thresholds: "any Udp/Udp6 InCsumErrors increase warns",
        why: "Datagrams that arrived corrupted. With checksum offload this points at the NIC, driver or a middlebox rewriting packets.",
        confirm: &["nstat -az UdpInCsumErrors Udp6InCsumErrors", "ethtool -k IFACE | grep checksum"],
        fix: &["Look for corruption below (nic.* findings); test with rx checksum offload off: ethtool -K IFACE rx off"],
        reads: &["Udp.InCsumErrors", "Udp6.InCsumErrors"],
        check: checksum_errors,
    },
    Rule {
        id: "udp.no_port",
        layer: Layer::Udp,
        kind: UseKind::Errors,
        title: "UDP datagrams to closed ports",
        thresholds: ">= 10/s (Udp + Udp6 NoPorts) is info; >= 1000/s warns",
        why: "Datagrams for a port nobody listens on are dropped (and answered with ICMP port unreachable). Usually clients of a stopped service, or scans.",
        confirm: &["nstat -az UdpNoPorts Udp6NoPorts", "tcpdump -ni any 'icmp[0] == 3 and icmp[1] == 3'"],
        fix: &["Start the service or fix the clients' target"],
        reads: &["Udp.NoPorts", "Udp6.NoPorts"],
        check: no_port,
    },
];

/// The sum over Udp and Udp6 of one counter: (rate per s, increase).
fn both(ctx: &Context, name: &str) -> (f64, f64) {
    (
        ctx.rate("Udp", name) + ctx.rate("Udp6", name),
        ctx.increase("Udp", name) + ctx.increase("Udp6", name),
    )
}

fn must_not_rise(ctx: &Context, name: &str, crit_per_s: Option<f64>) -> Vec<Hit> {
    let (rate, increase) = both(ctx, name);
    super::events_must_not_happen(
        &format!("Udp.{name} + Udp6.{name}"),
        rate,
        increase,
        crit_per_s,
    )
}

fn receive_buffer_errors(ctx: &Context) -> Vec<Hit> {
    let mut hits = must_not_rise(ctx, "RcvbufErrors", Some(100.0));
    let Some(hit) = hits.first_mut() else {
        return hits;
    };
    // The culprits: UDP sockets whose own drop counter (sock_diag skmem) is not zero.
    let mut culprits: Vec<&netsight_kernel::sockets::Socket> = ctx
        .cur
        .sockets
        .iter()
        .flat_map(|t| t.sockets.iter())
        .filter(|s| s.protocol == netsight_kernel::sockets::Protocol::Udp)
        .filter(|s| s.skmem.is_some_and(|m| m.drops > 0))
        .collect();
    culprits.sort_by_key(|s| std::cmp::Reverse(s.skmem.map_or(0, |m| m.drops)));
    for s in culprits.iter().take(3) {
        let m = s.skmem.unwrap_or_default();
        hit.evidence.push(Evidence::new(
            format!(
                "udp socket {}:{}{} dropped since it opened (receive buffer {} bytes)",
                s.local_addr,
                s.local_port,
                s.process
                    .as_ref()
                    .map(|p| format!(" of {}[{}]", p.comm, p.pid))
                    .unwrap_or_default(),
                m.rcvbuf
            ),
            f64::from(m.drops),
            "count",
            None,
        ));
    }
    let default = ctx.sysctl("net.core.rmem_default");
    let small = culprits.first().and_then(|s| {
        let rcvbuf = u64::from(s.skmem?.rcvbuf);
        (rcvbuf > 0 && default.is_some_and(|d| i64::try_from(rcvbuf).is_ok_and(|r| r < d)))
            .then_some((s, rcvbuf))
    });
    if let Some((s, rcvbuf)) = small {
        let who = s
            .process
            .as_ref()
            .map_or("its application".to_string(), |p| {
                format!("{} (pid {})", p.comm, p.pid)
            });
        hit.subject = Some(format!("udp {}:{}", s.local_addr, s.local_port));
        hit.extra_fix.push(format!(
            "The socket's buffer ({rcvbuf} bytes) is below net.core.rmem_default: {who} sets SO_RCVBUF itself; raise it there (system limits do not change a buffer the application chose)"
        ));
    } else if let Some(s) = culprits.first() {
        hit.subject = Some(format!("udp {}:{}", s.local_addr, s.local_port));
    }
    if let Some(max) = ctx.sysctl("net.core.rmem_max") {
        hit.evidence.push(Evidence::new(
            "net.core.rmem_max",
            max as f64,
            "bytes",
            None,
        ));
        if max < 26_214_400 && small.is_none() {
            hit.extra_fix
                .push("sysctl -w net.core.rmem_max=26214400 net.core.rmem_default=1048576".into());
        }
    }
    hits
}

fn send_buffer_errors(ctx: &Context) -> Vec<Hit> {
    must_not_rise(ctx, "SndbufErrors", Some(100.0))
}

fn checksum_errors(ctx: &Context) -> Vec<Hit> {
    must_not_rise(ctx, "InCsumErrors", None)
}

fn no_port(ctx: &Context) -> Vec<Hit> {
    let (rate, _) = both(ctx, "NoPorts");
    let severity = if rate >= 1000.0 {
        Severity::Warning
    } else if rate >= 10.0 {
        Severity::Info
    } else {
        return Vec::new();
    };
    vec![Hit::new(
        severity,
        vec![Evidence::new(
            "Udp.NoPorts + Udp6.NoPorts",
            rate,
            "per_s",
            Some(10.0),
        )],
        rate / 10.0,
    )]
}
