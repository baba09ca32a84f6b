//! Sockets (from the socket table, when collected): CLOSE-WAIT leaks, full
//! accept queues, SYN-queue pressure per listener.

use super::{Context, Hit, Rule};
use netsight_kernel::sockets::summary::{WindowLimited, WINDOW_LIMITED_PERCENT};
use netsight_report::{Evidence, Layer, Severity, UseKind};

pub static RULES: &[Rule] = &[
    Rule {
        id: "sockets.close_wait_leak",
        layer: Layer::Sockets,
        kind: UseKind::Saturation,
        title: "Process piling up CLOSE-WAIT connections",
        thresholds: ">= 100 CLOSE-WAIT sockets in one process warns; >= 1000 critical",
        why: "CLOSE-WAIT means the peer closed and our application has not called close(). They never time out: a growing pile is a file-descriptor and memory leak in the application, which ends in 'too many open files'.",
        confirm: &["netsight sockets --state close-wait --process PID", "ls /proc/PID/fd | wc -l"],
        fix: &["Fix the application to close sockets on EOF/errors (check its error paths and connection pools)", "Short term: restart the process"],
        reads: &["CLOSE-WAIT sockets"],
        check: close_wait_leak,
    },
    Rule {
        id: "sockets.accept_queue_full",
        layer: Layer::Sockets,
        kind: UseKind::Saturation,
        title: "Listener's accept queue is full",
        thresholds: "accept queue (Recv-Q) >= backlog (Send-Q) warns; >= 80 % is info",
        why: "Connections completed by the kernel are waiting for the application's accept(). A full queue makes the kernel drop new handshakes (see tcp.listen_overflows): the application is too slow to accept, or its backlog too small.",
        confirm: &["netsight sockets --listening", "ss -lnt"],
        fix: &["Accept faster (more workers, SO_REUSEPORT) or raise the listen() backlog together with net.core.somaxconn"],
        reads: &["listener Recv-Q", "listener Send-Q", "net.core.somaxconn"],
        check: accept_queue_full,
    },
    Rule {
        id: "sockets.syn_backlog",
        layer: Layer::Sockets,
        kind: UseKind::Saturation,
        title: "Many half-open connections on a listener",
        thresholds: "SYN-RECV sockets of one listener >= 50 % of net.ipv4.tcp_max_syn_backlog warns; >= 90 % critical",
        why: "Half-open connections wait for the client's final ACK. Many of them mean a SYN flood (spoofed sources never answer) or clients on a very lossy path; when the queue fills, SYNs are dropped or answered with cookies.",
        confirm: &["netsight sockets --summary   (syn-recv per listener)", "netsight sockets --state syn-recv --port PORT"],
        fix: &["Keep net.ipv4.tcp_syncookies=1; raise net.ipv4.tcp_max_syn_backlog", "Under attack: filter sources upstream or with XDP"],
        reads: &["SYN-RECV sockets", "net.ipv4.tcp_max_syn_backlog"],
        check: syn_backlog,
    },
    Rule {
        id: "sockets.window_limited",
        layer: Layer::Sockets,
        kind: UseKind::Saturation,
        title: "Connections held back by the receiver's window",
        thresholds: "an established socket busy >= 500 ms whose sending was rwnd-limited >= 50 % of that time warns (tcp_info busy_time / rwnd_limited)",
        why: "TCP can have at most one receive window in flight per round trip. When the peer advertises a small window (a small tcp_rmem/SO_RCVBUF, or an application that reads slowly), the sender idles waiting for window updates and throughput is window / RTT, whatever the link could carry.",
        confirm: &["netsight sockets --sort bytes   (LIMIT column: rwnd)", "ss -ti   (rwnd_limited:...ms(N%))", "on the receiver: sysctl net.ipv4.tcp_rmem"],
        fix: &["On the receiving host raise the window ceiling to the bandwidth-delay product: sysctl -w net.ipv4.tcp_rmem='4096 131072 16777216' (and net.core.rmem_max for SO_RCVBUF users)", "Make the receiving application read faster"],
        reads: &["tcp_info rwnd_limited", "tcp_info busy_time", "net.ipv4.tcp_rmem"],
        check: window_limited,
    },
];

/// Connections named in the finding; the rest are counted.
const WINDOW_LIMITED_SHOWN: usize = 5;

/// One finding for every window-limited connection that sent data in the
/// interval (tcp_info's shares are over the socket's life: one that went quiet
/// long ago says nothing about now, and ten thousand of them are one problem,
/// not ten thousand). The summary lists the limited ones, most first.
fn window_limited(ctx: &Context) -> Vec<Hit> {
    let Some(summary) = ctx.sockets else {
        return Vec::new();
    };
    let recent_ms = (ctx.rates.interval_s * 1000.0).max(1000.0);
    let sending: Vec<&WindowLimited> = summary
        .window_limited
        .iter()
        .filter(|w| f64::from(w.last_data_sent_ms) <= recent_ms)
        .collect();
    let Some(worst) = sending.first() else {
        return Vec::new();
    };
    let subject_of = |w: &WindowLimited| {
        format!(
            "{}:{} -> {}:{}",
            w.local_addr, w.local_port, w.remote_addr, w.remote_port
        )
    };
    let count = sending.len();
    let mut evidence = vec![Evidence::new(
        "window-limited connections sending in the interval",
        count as f64,
        "connections",
        None,
    )];
    for w in sending.iter().take(WINDOW_LIMITED_SHOWN) {
        let subject = subject_of(w);
        evidence.push(Evidence::new(
            format!("{subject} rwnd_limited share"),
            w.rwnd_limited_percent,
            "percent",
            Some(WINDOW_LIMITED_PERCENT),
        ));
        evidence.push(Evidence::new(
            format!("{subject} peer window"),
            f64::from(w.snd_wnd),
            "bytes",
            None,
        ));
        evidence.push(Evidence::new(
            format!("{subject} rtt"),
            f64::from(w.rtt_us) / 1000.0,
            "ms",
            None,
        ));
    }
    let subject = if count == 1 {
        subject_of(worst)
    } else {
        format!("{count} connections")
    };
    vec![Hit::new(
        Severity::Warning,
        evidence,
        worst.rwnd_limited_percent / WINDOW_LIMITED_PERCENT,
    )
    .about(subject)]
}

fn close_wait_leak(ctx: &Context) -> Vec<Hit> {
    let Some(summary) = ctx.sockets else {
        return Vec::new();
    };
    summary
        .close_wait_by_process
        .iter()
        .filter_map(|p| {
            let count = p.count as f64;
            let severity = super::grade(count, 100.0, Some(1000.0))?;
            let who = match (&p.comm, p.pid) {
                (Some(c), Some(pid)) => format!("{c}/{pid}"),
                _ => "unknown process".to_string(),
            };
            Some(
                Hit::new(
                    severity,
                    vec![Evidence::new(
                        format!("CLOSE-WAIT sockets of {who}"),
                        count,
                        "sockets",
                        Some(100.0),
                    )],
                    count / 100.0,
                )
                .about(who),
            )
        })
        .collect()
}

fn accept_queue_full(ctx: &Context) -> Vec<Hit> {
    let Some(summary) = ctx.sockets else {
        return Vec::new();
    };
    summary
        .listeners
        .iter()
        .filter(|l| l.backlog > 0)
        .filter_map(|l| {
            let severity = if l.fill_percent >= 100.0 {
                Severity::Warning
            } else if l.fill_percent >= 80.0 {
                Severity::Info
            } else {
                return None;
            };
            let subject = match (&l.comm, l.pid) {
                (Some(c), Some(pid)) => format!("{}:{} ({c}/{pid})", l.local_addr, l.local_port),
                _ => format!("{}:{}", l.local_addr, l.local_port),
            };
            let mut hit = Hit::new(
                severity,
                vec![
                    Evidence::new(
                        format!("{subject} accept queue"),
                        f64::from(l.accept_queue),
                        "connections",
                        Some(f64::from(l.backlog)),
                    ),
                    Evidence::new(
                        format!("{subject} fill"),
                        l.fill_percent,
                        "percent",
                        Some(100.0),
                    ),
                ],
                l.fill_percent / 100.0,
            );
            // Which limit bites: the application's listen() argument, or somaxconn capping it.
            match ctx.sysctl("net.core.somaxconn") {
                Some(max) if i64::from(l.backlog) < max => hit.extra_fix.push(format!(
                    "The application called listen() with a backlog of {} (net.core.somaxconn is {max} and does not limit it): raise the application's backlog, and make it accept() faster; the queue holds {} connections it has not accepted",
                    l.backlog, l.accept_queue
                )),
                Some(max) => hit.extra_fix.push(format!(
                    "The backlog is capped by net.core.somaxconn ({max}): raise it together with the application's listen() argument"
                )),
                None => {}
            }
            Some(hit.about(subject))
        })
        .collect()
}

fn syn_backlog(ctx: &Context) -> Vec<Hit> {
    let (Some(summary), Some(max)) = (ctx.sockets, ctx.sysctl("net.ipv4.tcp_max_syn_backlog"))
    else {
        return Vec::new();
    };
    if max <= 0 {
        return Vec::new();
    }
    summary
        .listeners
        .iter()
        .filter_map(|l| {
            let percent = l.syn_recv as f64 * 100.0 / max as f64;
            let severity = super::grade(percent, 50.0, Some(90.0))?;
            let subject = format!("{}:{}", l.local_addr, l.local_port);
            Some(
                Hit::new(
                    severity,
                    vec![
                        Evidence::new(
                            format!("{subject} SYN-RECV"),
                            l.syn_recv as f64,
                            "sockets",
                            Some(max as f64 / 2.0),
                        ),
                        Evidence::new("net.ipv4.tcp_max_syn_backlog", max as f64, "sockets", None),
                    ],
                    percent / 50.0,
                )
                .about(subject),
            )
        })
        .collect()
}
