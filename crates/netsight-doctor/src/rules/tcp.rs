//! TCP: retransmissions and timeouts, listen and SYN queues, resets, memory,
//! orphans, TIME-WAIT, receive pruning, failed connects.

use super::{counter_must_not_rise, grade, Context, Hit, Rule};
use netsight_report::{Evidence, Layer, Severity, UseKind};

pub static RULES: &[Rule] = &[
    Rule {
        id: "tcp.retransmissions",
        layer: Layer::Tcp,
        kind: UseKind::Errors,
        title: "High TCP retransmission rate",
        thresholds: "RetransSegs / OutSegs >= 1 % with >= 100 segments/s out warns; >= 5 % critical",
        why: "Every retransmitted segment is a segment the network lost (or delayed past the RTO/dup-ACK threshold). Loss halves the congestion window of loss-based algorithms like CUBIC, so a few percent of loss cuts throughput by far more than a few percent.",
        confirm: &["netsight stat ETCP 1 10   (retrans/s)", "netsight sockets --sort retrans", "nstat -az TcpRetransSegs TcpExtTCPLostRetransmit TcpExtTCPTimeouts"],
        fix: &["Find where packets are lost: nic.*, softnet.*, qdisc.* findings on this host, then the path (mtr, switch counters)", "For lossy long paths consider BBR: sysctl -w net.ipv4.tcp_congestion_control=bbr"],
        reads: &["Tcp.RetransSegs", "Tcp.OutSegs"],
        check: retransmissions,
    },
    Rule {
        id: "tcp.rto_timeouts",
        layer: Layer::Tcp,
        kind: UseKind::Errors,
        title: "TCP retransmission timeouts",
        thresholds: "TcpExt.TCPTimeouts >= 1/s warns; >= 50/s critical",
        why: "An RTO fires when no ACK came back for a whole retransmission timeout (at least 200 ms): fast recovery could not repair the loss. The connection stalls for the timeout and restarts from a window of one segment; this is what users see as hangs.",
        confirm: &["nstat -az TcpExtTCPTimeouts TcpExtTCPSpuriousRTOs", "netsight sockets --sort retrans"],
        fix: &["Fix the loss first (see tcp.retransmissions)", "Tail loss: keep net.ipv4.tcp_early_retrans=3 (TLP) and SACK on"],
        reads: &["TcpExt.TCPTimeouts"],
        check: rto_timeouts,
    },
    Rule {
        id: "tcp.listen_overflows",
        layer: Layer::Tcp,
        kind: UseKind::Saturation,
        title: "Accept queue overflowed: connections dropped",
        thresholds: "any TcpExt.ListenOverflows increase warns (netdata: listen overflows); >= 10/s critical",
        why: "A completed handshake waits in the listener's accept queue until the application calls accept(). Its size is min(listen() backlog, net.core.somaxconn); when full, the kernel drops the final ACK (or the SYN) and the client retries after a second or more. The application is not accepting fast enough, or its backlog is too small.",
        confirm: &["netsight sockets --listening   (Recv-Q vs Send-Q per listener)", "nstat -az TcpExtListenOverflows TcpExtListenDrops"],
        fix: &["Make the application accept faster (more acceptor threads/processes, SO_REUSEPORT)", "Raise the backlog: the application's listen() argument and sysctl -w net.core.somaxconn=4096"],
        reads: &["TcpExt.ListenOverflows", "TcpExt.ListenDrops", "net.core.somaxconn"],
        check: listen_overflows,
    },
    Rule {
        id: "tcp.listen_drops",
        layer: Layer::Tcp,
        kind: UseKind::Errors,
        title: "Listeners dropped connection attempts (not overflows)",
        thresholds: "ListenDrops - ListenOverflows >= 1 in the interval warns",
        why: "ListenDrops counts every SYN or ACK a listener dropped; beyond accept-queue overflows this covers memory failures, no route for the reply, and SYN-queue (request) drops. They are connection attempts clients must retry.",
        confirm: &["nstat -az TcpExtListenDrops TcpExtListenOverflows TcpExtTCPReqQFullDrop"],
        fix: &["Check tcp.syn_queue_full and tcp.memory findings; check routes back to clients"],
        reads: &["TcpExt.ListenDrops", "TcpExt.ListenOverflows"],
        check: listen_drops,
    },
    Rule {
        id: "tcp.syn_queue_full",
        layer: Layer::Tcp,
        kind: UseKind::Saturation,
        title: "SYN queue full: SYNs dropped",
        thresholds: "any TcpExt.TCPReqQFullDrop increase warns; >= 10/s critical",
        why: "Half-open connections (SYN received, SYN-ACK sent) wait in the SYN queue, sized by net.ipv4.tcp_max_syn_backlog and the listen backlog. When it is full and syncookies are off, new SYNs are dropped: a SYN flood, or a burst bigger than the queue.",
        confirm: &["nstat -az TcpExtTCPReqQFullDrop TcpExtTCPReqQFullDoCookies", "netsight sockets --summary   (SYN-RECV per listener)"],
        fix: &["sysctl -w net.ipv4.tcp_syncookies=1", "sysctl -w net.ipv4.tcp_max_syn_backlog=8192 and raise the listen backlog", "Under attack: rate-limit SYNs per source (iptables -m hashlimit, nftables meter ... limit rate)"],
        reads: &["TcpExt.TCPReqQFullDrop", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_syncookies"],
        check: |ctx| counter_must_not_rise(ctx, "TcpExt", "TCPReqQFullDrop", Some(10.0)),
    },
    Rule {
        id: "tcp.syncookies_sent",
        layer: Layer::Tcp,
        kind: UseKind::Saturation,
        title: "SYN cookies in use (SYN queue overflow)",
        thresholds: "any TcpExt.SyncookiesSent increase warns (netdata: SYN cookies sent)",
        why: "The kernel sends SYN cookies only when a listener's SYN queue is full. Connections still succeed, but without window scaling/SACK details unless timestamps carry them. It means a SYN flood or a backlog too small for the connection rate.",
        confirm: &["nstat -az TcpExtSyncookiesSent TcpExtSyncookiesRecv TcpExtSyncookiesFailed TcpExtTCPReqQFullDoCookies"],
        fix: &["If legitimate load: sysctl -w net.ipv4.tcp_max_syn_backlog=8192 and raise the listen backlog", "If a flood: filter the sources (iptables -m hashlimit, nftables meters, upstream scrubbing)"],
        reads: &["TcpExt.SyncookiesSent", "TcpExt.TCPReqQFullDoCookies"],
        check: |ctx| counter_must_not_rise(ctx, "TcpExt", "SyncookiesSent", Some(100.0)),
    },
    Rule {
        id: "tcp.resets_sent",
        layer: Layer::Tcp,
        kind: UseKind::Errors,
        title: "Many TCP resets sent",
        thresholds: "Tcp.OutRsts >= 10/s and >= 2 % of OutSegs warns (netdata: reset spikes); >= 100/s critical",
        why: "We send RST for segments to closed ports, to connections the application aborted (close with unread data, SO_LINGER 0), and on memory or orphan limits. A spike means clients hitting a dead service or the host killing connections.",
        confirm: &["nstat -az TcpOutRsts TcpExtTCPAbortOnData TcpExtTCPAbortOnClose TcpExtTCPAbortOnMemory", "tcpdump -ni any 'tcp[tcpflags] & tcp-rst != 0'"],
        fix: &["Closed-port RSTs: start the service or fix the clients", "AbortOnData/Close: the application closes with unread data; fix its shutdown path"],
        reads: &["Tcp.OutRsts", "Tcp.OutSegs"],
        check: resets_sent,
    },
    Rule {
        id: "tcp.resets_received",
        layer: Layer::Tcp,
        kind: UseKind::Errors,
        title: "Established connections reset by peers",
        thresholds: "Tcp.EstabResets >= 10/s warns; >= 100/s critical",
        why: "EstabResets counts established (or close-wait) connections that ended by a reset instead of a close: peers crashing, load balancers or firewalls timing out idle flows, or middleboxes killing connections.",
        confirm: &["nstat -az TcpEstabResets TcpExtTCPAbortOnTimeout", "netsight trace life --duration 30s"],
        fix: &["Idle-timeout resets from middleboxes: enable keepalives below their idle timeout (net.ipv4.tcp_keepalive_time=600 and SO_KEEPALIVE)"],
        reads: &["Tcp.EstabResets"],
        check: resets_received,
    },
    Rule {
        id: "tcp.memory",
        layer: Layer::Tcp,
        kind: UseKind::Saturation,
        title: "TCP memory under pressure",
        thresholds: "TCP memory >= tcp_mem pressure threshold (2nd value) or any TCPMemoryPressures warns; >= tcp_mem max (3rd value) or any TCPAbortOnMemory critical",
        why: "All TCP sockets share net.ipv4.tcp_mem pages. Past the pressure threshold the kernel shrinks buffers (throughput drops); at the maximum it refuses memory, drops packets and aborts orphaned connections.",
        confirm: &["cat /proc/net/sockstat   (TCP mem, in pages)", "sysctl net.ipv4.tcp_mem", "nstat -az TcpExtTCPMemoryPressures TcpExtTCPAbortOnMemory"],
        fix: &["Find who holds memory: netsight sockets --sort queue (large Recv-Q: slow readers)", "Raise net.ipv4.tcp_mem if RAM allows (values in pages)"],
        reads: &["sockstat TCP mem", "net.ipv4.tcp_mem", "TcpExt.TCPMemoryPressures", "TcpExt.TCPAbortOnMemory"],
        check: memory,
    },
    Rule {
        id: "tcp.orphans",
        layer: Layer::Tcp,
        kind: UseKind::Saturation,
        title: "Many orphaned TCP sockets",
        thresholds: "orphans >= 25 % of net.ipv4.tcp_max_orphans warns, >= 50 % critical (netdata's thresholds)",
        why: "An orphan is a connection the application closed that the kernel still finishes (FIN-WAIT, LAST-ACK). Each holds memory; past tcp_max_orphans the kernel resets them ('too many orphaned sockets').",
        confirm: &["cat /proc/net/sockstat   (orphan)", "netsight sockets --state fin-wait-1 --state last-ack"],
        fix: &["Shorten their life: sysctl -w net.ipv4.tcp_fin_timeout=15 and net.ipv4.tcp_orphan_retries=2", "Raise net.ipv4.tcp_max_orphans if memory allows"],
        reads: &["sockstat TCP orphan", "net.ipv4.tcp_max_orphans"],
        check: orphans,
    },
    Rule {
        id: "tcp.time_wait",
        layer: Layer::Tcp,
        kind: UseKind::Saturation,
        title: "TIME-WAIT sockets near a limit",
        thresholds: "TIME-WAIT >= 75 % of net.ipv4.tcp_max_tw_buckets, or TIME-WAIT holding ephemeral ports to one destination >= 50 % of the local port range (destinations tcp_tw_reuse covers excepted: 1 all, 2 loopback; without the socket table, all TIME-WAIT unless tcp_tw_reuse=1), or any TCPTimeWaitOverflow warns; >= 95 % of either limit critical",
        why: "The side that closes first keeps the connection in TIME-WAIT for 60 s. Many short connections to the same peer can exhaust the ephemeral ports (connect() fails with EADDRNOTAVAIL) or the TIME-WAIT table (the kernel then skips TIME-WAIT, risking stale segments).",
        confirm: &["netsight sockets --summary   (TIME-WAIT by peer)", "sysctl net.ipv4.ip_local_port_range net.ipv4.tcp_max_tw_buckets"],
        fix: &["Reuse connections (HTTP keep-alive, pools)", "sysctl -w net.ipv4.tcp_tw_reuse=1 (outgoing connections)", "Widen the port range: sysctl -w net.ipv4.ip_local_port_range='1024 65535'"],
        reads: &["sockstat TCP tw", "net.ipv4.tcp_max_tw_buckets", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_tw_reuse", "TcpExt.TCPTimeWaitOverflow", "sockets (TIME-WAIT by destination)"],
        check: time_wait,
    },
    Rule {
        id: "tcp.receive_pruning",
        layer: Layer::Tcp,
        kind: UseKind::Saturation,
        title: "Receive queues pruned or full: data dropped",
        thresholds: "any increase of PruneCalled, RcvPruned, OfoPruned, TCPRcvQDrop or TCPZeroWindowDrop warns; RcvPruned/OfoPruned/TCPRcvQDrop >= 10/s critical",
        why: "When a socket's receive buffer is over its limit the kernel first collapses queued data (PruneCalled), then drops it (RcvPruned, OfoPruned, RcvQDrop) and the sender must retransmit. The application reads too slowly or the buffer is too small for the flow's bandwidth-delay product.",
        confirm: &["nstat -az TcpExtPruneCalled TcpExtRcvPruned TcpExtOfoPruned TcpExtTCPRcvQDrop TcpExtTCPZeroWindowDrop", "netsight sockets --sort queue"],
        fix: &["Read faster in the application, or give it a bigger buffer", "Raise the autotuning ceiling: sysctl -w net.ipv4.tcp_rmem='4096 131072 16777216' net.core.rmem_max=16777216"],
        reads: &["TcpExt.PruneCalled", "TcpExt.RcvPruned", "TcpExt.OfoPruned", "TcpExt.TCPRcvQDrop", "TcpExt.TCPZeroWindowDrop", "net.ipv4.tcp_rmem"],
        check: receive_pruning,
    },
    Rule {
        id: "tcp.connect_failures",
        layer: Layer::Tcp,
        kind: UseKind::Errors,
        title: "Outgoing connections failing",
        thresholds: "Tcp.AttemptFails >= 10/s and >= 10 % of ActiveOpens warns; >= 50 % critical",
        why: "AttemptFails counts connections that went from SYN-SENT or SYN-RECV straight to CLOSED: refused (RST to our SYN) or timed out. Clients see connection errors and retries.",
        confirm: &["nstat -az TcpAttemptFails TcpActiveOpens", "netsight sockets --state syn-sent"],
        fix: &["Check the target service is up and listening; check firewalls between (DROP gives timeouts, REJECT gives refusals)"],
        reads: &["Tcp.AttemptFails", "Tcp.ActiveOpens"],
        check: connect_failures,
    },
    Rule {
        id: "tcp.syn_retransmits",
        layer: Layer::Tcp,
        kind: UseKind::Errors,
        title: "SYNs going unanswered",
        thresholds: "TcpExt.TCPSynRetrans >= 1/s warns; >= 100/s critical",
        why: "A SYN (or SYN-ACK) is retransmitted when no answer came within the initial RTO of 1 s, then 2, 4, 8 s... Connections take seconds or time out. Typical causes: a firewall that DROPs instead of REJECTing, a host or service that is down, or a full SYN queue at the peer.",
        confirm: &["nstat -az TcpExtTCPSynRetrans TcpAttemptFails", "netsight sockets --state syn-sent", "tcpdump -ni any 'tcp[tcpflags] & tcp-syn != 0'"],
        fix: &["Find the silent hop: is the service up, does a firewall DROP the port (REJECT fails fast instead)?", "For the peer's SYN queue see tcp.syn_queue_full on that host"],
        reads: &["TcpExt.TCPSynRetrans"],
        check: syn_retransmits,
    },
    Rule {
        id: "tcp.delayed_ack_stalls",
        layer: Layer::Tcp,
        kind: UseKind::Saturation,
        title: "Request/response traffic waiting on delayed ACKs (Nagle)",
        thresholds: "TcpExt.DelayedACKs >= 10/s, >= 10 % of Tcp.InSegs and >= 5 x new connections/s warns (churn of short connections delays ACKs of FINs, not requests)",
        why: "The receiver delays ACKs up to 40 ms hoping to piggyback them; a sender with Nagle's algorithm holds a small segment until the previous one is ACKed. An application that writes a request in several small pieces then waits for the answer stalls 40 ms per request. Many delayed-ACK timer expirations relative to segments show this pattern.",
        confirm: &["nstat -az TcpExtDelayedACKs TcpInSegs", "netsight sockets --sort rtt   (small segments, ato 40 ms)", "strace -e trace=write,sendto -p PID   (several small writes per request)"],
        fix: &["Write each request in one call (writev, buffering) or set TCP_NODELAY on the sender", "On the receiver, TCP_QUICKACK for request/response sockets"],
        reads: &["TcpExt.DelayedACKs", "Tcp.InSegs", "Tcp.PassiveOpens", "Tcp.ActiveOpens"],
        check: delayed_ack_stalls,
    },
];

fn syn_retransmits(ctx: &Context) -> Vec<Hit> {
    let rate = ctx.rate("TcpExt", "TCPSynRetrans");
    let Some(severity) = grade(rate, 1.0, Some(100.0)) else {
        return Vec::new();
    };
    let mut evidence = vec![Evidence::new(
        "TcpExt.TCPSynRetrans",
        rate,
        "per_s",
        Some(1.0),
    )];
    let fails = ctx.rate("Tcp", "AttemptFails");
    if fails > 0.0 {
        evidence.push(Evidence::new("Tcp.AttemptFails", fails, "per_s", None));
    }
    vec![Hit::new(severity, evidence, rate)]
}

fn delayed_ack_stalls(ctx: &Context) -> Vec<Hit> {
    let (delayed, in_segs) = (ctx.rate("TcpExt", "DelayedACKs"), ctx.rate("Tcp", "InSegs"));
    if delayed < 10.0 {
        return Vec::new();
    }
    let percent = delayed * 100.0 / in_segs.max(delayed);
    let opens = ctx.rate("Tcp", "ActiveOpens") + ctx.rate("Tcp", "PassiveOpens");
    if percent < 10.0 || delayed < 5.0 * opens {
        return Vec::new();
    }
    vec![Hit::new(
        Severity::Warning,
        vec![
            Evidence::new("TcpExt.DelayedACKs", delayed, "per_s", Some(10.0)),
            Evidence::new(
                "TcpExt.DelayedACKs / Tcp.InSegs",
                percent,
                "percent",
                Some(10.0),
            ),
        ],
        delayed / 10.0,
    )]
}

fn retransmissions(ctx: &Context) -> Vec<Hit> {
    let (retrans, out) = (ctx.rate("Tcp", "RetransSegs"), ctx.rate("Tcp", "OutSegs"));
    if out < 100.0 {
        return Vec::new();
    }
    let percent = retrans * 100.0 / out;
    let Some(severity) = grade(percent, 1.0, Some(5.0)) else {
        return Vec::new();
    };
    vec![Hit::new(
        severity,
        vec![
            Evidence::new(
                "Tcp.RetransSegs / Tcp.OutSegs",
                percent,
                "percent",
                Some(1.0),
            ),
            Evidence::new("Tcp.RetransSegs", retrans, "per_s", None),
            Evidence::new("Tcp.OutSegs", out, "per_s", Some(100.0)),
        ],
        percent,
    )]
}

fn rto_timeouts(ctx: &Context) -> Vec<Hit> {
    let rate = ctx.rate("TcpExt", "TCPTimeouts");
    let Some(severity) = grade(rate, 1.0, Some(50.0)) else {
        return Vec::new();
    };
    vec![Hit::new(
        severity,
        vec![Evidence::new(
            "TcpExt.TCPTimeouts",
            rate,
            "per_s",
            Some(1.0),
        )],
        rate,
    )]
}

fn listen_overflows(ctx: &Context) -> Vec<Hit> {
    let mut hits = counter_must_not_rise(ctx, "TcpExt", "ListenOverflows", Some(10.0));
    let (Some(hit), Some(somaxconn)) = (hits.first_mut(), ctx.sysctl("net.core.somaxconn")) else {
        return hits;
    };
    hit.evidence.push(Evidence::new(
        "net.core.somaxconn",
        somaxconn as f64,
        "connections",
        None,
    ));
    let full = ctx
        .sockets
        .and_then(|s| s.listeners.iter().find(|l| l.fill_percent >= 100.0));
    let Some(full) = full else {
        // No full listener seen at the end: the overflows came in bursts.
        if somaxconn < 4096 {
            hit.extra_fix
                .push("sysctl -w net.core.somaxconn=4096".into());
        }
        return hits;
    };
    let listener = format!("listener {}:{}", full.local_addr, full.local_port);
    let owner = match (&full.comm, full.pid) {
        (Some(comm), Some(pid)) => format!("{comm} (pid {pid})"),
        _ => "the application".to_string(),
    };
    hit.subject = Some(format!("{listener} {owner}"));
    hit.evidence.push(Evidence::new(
        format!("{listener} accept queue"),
        f64::from(full.accept_queue),
        "connections",
        Some(f64::from(full.backlog)),
    ));
    hit.evidence.push(Evidence::new(
        format!("{listener} listen() backlog (min of the application's and somaxconn)"),
        f64::from(full.backlog),
        "connections",
        None,
    ));
    // While the queue overflows, SYNs keep arriving: every accept() frees a slot
    // that a new connection fills at once, and each one counts in PassiveOpens.
    // None counted means no slot was freed: nothing was accepted.
    let passive = ctx.increase("Tcp", "PassiveOpens");
    hit.evidence.push(Evidence::new(
        "Tcp.PassiveOpens increase",
        passive,
        "count",
        None,
    ));
    if passive < 1.0 {
        hit.extra_fix.push(format!(
            "The queue is full and no connection entered it during the interval (Tcp.PassiveOpens did not rise): {owner} made no accept() calls. Check that it is alive and not blocked: strace -f -p PID -e trace=accept,accept4; a thread dump of the accept loop"
        ));
    } else {
        hit.extra_fix.push(format!(
            "{owner} accepts slower than connections arrive: accept in more threads or processes (SO_REUSEPORT), or shed load before it reaches this listener"
        ));
    }
    // Which limit bites (the listen() argument or somaxconn) is said by
    // sockets.accept_queue_full, grouped under this finding.
    if i64::from(full.backlog) >= somaxconn && somaxconn < 4096 {
        hit.extra_fix
            .push("sysctl -w net.core.somaxconn=4096, and a listen() backlog to match".into());
    }
    hits
}

fn listen_drops(ctx: &Context) -> Vec<Hit> {
    let other = ctx.increase("TcpExt", "ListenDrops") - ctx.increase("TcpExt", "ListenOverflows");
    if other < 1.0 {
        return Vec::new();
    }
    let rate = other / ctx.rates.interval_s;
    vec![Hit::new(
        Severity::Warning,
        vec![Evidence::new(
            "TcpExt.ListenDrops - TcpExt.ListenOverflows",
            rate,
            "per_s",
            Some(0.0),
        )],
        1.0 + rate,
    )]
}

fn resets_sent(ctx: &Context) -> Vec<Hit> {
    let (rsts, out) = (ctx.rate("Tcp", "OutRsts"), ctx.rate("Tcp", "OutSegs"));
    if rsts < 10.0 || rsts * 100.0 / out.max(rsts) < 2.0 {
        return Vec::new();
    }
    let severity = if rsts >= 100.0 {
        Severity::Critical
    } else {
        Severity::Warning
    };
    vec![Hit::new(
        severity,
        vec![
            Evidence::new("Tcp.OutRsts", rsts, "per_s", Some(10.0)),
            Evidence::new(
                "Tcp.OutRsts / Tcp.OutSegs",
                rsts * 100.0 / out.max(rsts),
                "percent",
                Some(2.0),
            ),
        ],
        rsts / 10.0,
    )]
}

fn resets_received(ctx: &Context) -> Vec<Hit> {
    let rate = ctx.rate("Tcp", "EstabResets");
    let Some(severity) = grade(rate, 10.0, Some(100.0)) else {
        return Vec::new();
    };
    vec![Hit::new(
        severity,
        vec![Evidence::new("Tcp.EstabResets", rate, "per_s", Some(10.0))],
        rate / 10.0,
    )]
}

fn memory(ctx: &Context) -> Vec<Hit> {
    let mut evidence = Vec::new();
    let mut severity = None;
    let limits = ctx.sysctl_values("net.ipv4.tcp_mem");
    if let (Some(mem), [_, pressure, max]) = (ctx.sockstat("TCP", "mem"), limits.as_slice()) {
        let (mem, pressure, max) = (mem as f64, *pressure as f64, *max as f64);
        if let Some(s) = grade(mem, pressure, Some(max)) {
            severity = Some(s);
            evidence.push(Evidence::new(
                "sockstat TCP mem",
                mem,
                "pages",
                Some(pressure),
            ));
            evidence.push(Evidence::new("net.ipv4.tcp_mem max", max, "pages", None));
        }
    }
    if ctx.increase("TcpExt", "TCPMemoryPressures") >= 1.0 {
        severity = severity.max(Some(Severity::Warning));
        evidence.push(Evidence::new(
            "TcpExt.TCPMemoryPressures",
            ctx.rate("TcpExt", "TCPMemoryPressures"),
            "per_s",
            Some(0.0),
        ));
    }
    if ctx.increase("TcpExt", "TCPAbortOnMemory") >= 1.0 {
        severity = Some(Severity::Critical);
        evidence.push(Evidence::new(
            "TcpExt.TCPAbortOnMemory",
            ctx.rate("TcpExt", "TCPAbortOnMemory"),
            "per_s",
            Some(0.0),
        ));
    }
    severity
        .map(|s| vec![Hit::new(s, evidence, 1.0)])
        .unwrap_or_default()
}

fn orphans(ctx: &Context) -> Vec<Hit> {
    let (Some(orphans), Some(max)) = (
        ctx.sockstat("TCP", "orphan"),
        ctx.sysctl("net.ipv4.tcp_max_orphans"),
    ) else {
        return Vec::new();
    };
    if max <= 0 {
        return Vec::new();
    }
    let percent = orphans as f64 * 100.0 / max as f64;
    let Some(severity) = grade(percent, 25.0, Some(50.0)) else {
        return Vec::new();
    };
    vec![Hit::new(
        severity,
        vec![
            Evidence::new(
                "sockstat TCP orphan / tcp_max_orphans",
                percent,
                "percent",
                Some(25.0),
            ),
            Evidence::new("sockstat TCP orphan", orphans as f64, "sockets", None),
        ],
        percent / 25.0,
    )]
}

fn time_wait(ctx: &Context) -> Vec<Hit> {
    let Some(tw) = ctx.sockstat("TCP", "tw").map(|v| v as f64) else {
        return Vec::new();
    };
    let mut evidence = Vec::new();
    let mut worst: Option<Severity> = None;
    let mut impact: f64 = 0.0;
    if let Some(buckets) = ctx.sysctl("net.ipv4.tcp_max_tw_buckets").filter(|b| *b > 0) {
        let percent = tw * 100.0 / buckets as f64;
        if let Some(s) = grade(percent, 75.0, Some(95.0)) {
            worst = worst.max(Some(s));
            impact = impact.max(percent / 75.0);
            evidence.push(Evidence::new(
                "TIME-WAIT / tcp_max_tw_buckets",
                percent,
                "percent",
                Some(75.0),
            ));
        }
    }
    if let [low, high] = ctx.sysctl_values("net.ipv4.ip_local_port_range").as_slice() {
        let ports = (high - low + 1).max(1) as f64;
        // Ports run out per destination, and only for connections this host made.
        // tcp_tw_reuse lets a new outgoing connection take a TIME-WAIT port (1: any
        // destination, 2 — the default — loopback only), so those do not count.
        let reuse = ctx.sysctl("net.ipv4.tcp_tw_reuse").unwrap_or(0);
        let holding = match ctx.sockets {
            Some(summary) => summary
                .ephemeral_time_wait_by_destination
                .iter()
                .find(|d| match reuse {
                    1 => false,
                    2 => !d.peer.is_loopback(),
                    _ => true,
                })
                .map(|d| (d.count as f64, Some(format!("{}:{}", d.peer, d.port)))),
            // Without the socket table: every TIME-WAIT socket might hold a port,
            // unless reuse covers every destination.
            None => (reuse != 1).then_some((tw, None)),
        };
        if let Some((count, destination)) = holding {
            let percent = count * 100.0 / ports;
            if let Some(s) = grade(percent, 50.0, Some(95.0)) {
                worst = worst.max(Some(s));
                impact = impact.max(percent / 50.0);
                let metric = match destination {
                    Some(d) => {
                        format!("TIME-WAIT holding ephemeral ports to {d} / local port range")
                    }
                    None => "TIME-WAIT / local port range".to_string(),
                };
                evidence.push(Evidence::new(metric, percent, "percent", Some(50.0)));
            }
        }
    }
    if ctx.increase("TcpExt", "TCPTimeWaitOverflow") >= 1.0 {
        worst = worst.max(Some(Severity::Warning));
        impact = impact.max(1.0);
        evidence.push(Evidence::new(
            "TcpExt.TCPTimeWaitOverflow",
            ctx.rate("TcpExt", "TCPTimeWaitOverflow"),
            "per_s",
            Some(0.0),
        ));
    }
    let Some(severity) = worst else {
        return Vec::new();
    };
    evidence.push(Evidence::new("sockstat TCP tw", tw, "sockets", None));
    if let Some(top) = ctx.sockets.and_then(|s| s.time_wait_by_peer.first()) {
        evidence.push(Evidence::new(
            format!("TIME-WAIT to {}", top.peer),
            top.count as f64,
            "sockets",
            None,
        ));
    }
    vec![Hit::new(severity, evidence, impact)]
}

fn receive_pruning(ctx: &Context) -> Vec<Hit> {
    let names = [
        "PruneCalled",
        "RcvPruned",
        "OfoPruned",
        "TCPRcvQDrop",
        "TCPZeroWindowDrop",
    ];
    let evidence: Vec<Evidence> = names
        .iter()
        .filter(|n| ctx.increase("TcpExt", n) >= 1.0)
        .map(|n| {
            Evidence::new(
                format!("TcpExt.{n}"),
                ctx.rate("TcpExt", n),
                "per_s",
                Some(0.0),
            )
        })
        .collect();
    if evidence.is_empty() {
        return Vec::new();
    }
    let dropping = ctx.rate("TcpExt", "RcvPruned")
        + ctx.rate("TcpExt", "OfoPruned")
        + ctx.rate("TcpExt", "TCPRcvQDrop");
    let severity = if dropping >= 10.0 {
        Severity::Critical
    } else {
        Severity::Warning
    };
    vec![Hit::new(severity, evidence, 1.0 + dropping)]
}

fn connect_failures(ctx: &Context) -> Vec<Hit> {
    let (fails, opens) = (
        ctx.rate("Tcp", "AttemptFails"),
        ctx.rate("Tcp", "ActiveOpens"),
    );
    if fails < 10.0 {
        return Vec::new();
    }
    let percent = fails * 100.0 / opens.max(fails);
    let Some(severity) = grade(percent, 10.0, Some(50.0)) else {
        return Vec::new();
    };
    vec![Hit::new(
        severity,
        vec![
            Evidence::new(
                "Tcp.AttemptFails / Tcp.ActiveOpens",
                percent,
                "percent",
                Some(10.0),
            ),
            Evidence::new("Tcp.AttemptFails", fails, "per_s", Some(10.0)),
        ],
        percent / 10.0,
    )]
}
