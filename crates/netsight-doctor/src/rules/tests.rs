//! Each rule fires at its threshold and stays silent just below it, on
//! synthetic pairs built from a recorded quiet host (10 s apart).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use netsight_kernel::qdisc::{Qdisc, QdiscCounters};
use netsight_kernel::snapshot::Conntrack;
use netsight_kernel::sockets::{ProcessRef, Protocol, Socket, SocketTable, TcpState};
use netsight_kernel::{Snapshot, Support};

use super::test_support::{bump, pair, quiet, run, severity_of};
use netsight_report::Severity::{self, Critical, Info, Warning};

fn link<'a>(s: &'a mut Snapshot, name: &str) -> &'a mut netsight_kernel::link::Link {
    s.links
        .iter_mut()
        .find(|l| l.name == name)
        .expect("link in fixture")
}

/// (rule, group, counter, per-second rate that makes it critical)
const MUST_NOT_RISE: &[(&str, &str, &str, Option<f64>)] = &[
    ("ip.reassembly_failures", "Ip", "ReasmFails", Some(10.0)),
    ("ip.fragmentation_failures", "Ip", "FragFails", Some(10.0)),
    ("ip.no_route", "Ip", "OutNoRoutes", None),
    (
        "tcp.listen_overflows",
        "TcpExt",
        "ListenOverflows",
        Some(10.0),
    ),
    (
        "tcp.syn_queue_full",
        "TcpExt",
        "TCPReqQFullDrop",
        Some(10.0),
    ),
    (
        "tcp.syncookies_sent",
        "TcpExt",
        "SyncookiesSent",
        Some(100.0),
    ),
    (
        "udp.receive_buffer_errors",
        "Udp",
        "RcvbufErrors",
        Some(100.0),
    ),
    (
        "udp.receive_buffer_errors",
        "Udp6",
        "RcvbufErrors",
        Some(100.0),
    ),
    ("udp.send_buffer_errors", "Udp", "SndbufErrors", Some(100.0)),
    ("udp.checksum_errors", "Udp", "InCsumErrors", None),
];

#[test]
fn counters_that_must_not_rise() {
    for &(id, group, name, crit) in MUST_NOT_RISE {
        assert_eq!(
            severity_of(id, |_| {}),
            None,
            "{id} silent when {name} is flat"
        );
        assert_eq!(
            severity_of(id, |s| bump(s, group, name, 1)),
            Some(Warning),
            "{id}: one {name}"
        );
        if let Some(c) = crit {
            let just_below = (c * 10.0) as i64 - 1;
            assert_eq!(
                severity_of(id, |s| bump(s, group, name, just_below)),
                Some(Warning),
                "{id} below crit"
            );
            assert_eq!(
                severity_of(id, |s| bump(s, group, name, (c * 10.0) as i64)),
                Some(Critical),
                "{id} crit"
            );
        }
    }
}

#[test]
fn nic_rules() {
    let util = |percent: f64, duplex: &str| {
        severity_of("nic.utilization", |s| {
            let l = link(s, "eth0");
            l.speed_mbps = Some(1000);
            l.duplex = Some(duplex.into());
            l.stats.tx_bytes += (1000e6 / 8.0 * 10.0 * percent / 100.0) as u64;
        })
    };
    assert_eq!(util(79.9, "full"), None);
    assert_eq!(util(80.0, "full"), Some(Warning));
    assert_eq!(util(95.0, "full"), Some(Critical));
    assert_eq!(
        severity_of("nic.utilization", |s| link(s, "eth0").stats.tx_bytes +=
            10_000_000_000),
        None,
        "no speed, no verdict"
    );

    let rx = |drops: u64| {
        severity_of("nic.rx_drops", |s| {
            let l = link(s, "eth0");
            l.stats.rx_packets += 1000;
            l.stats.rx_dropped += drops;
        })
    };
    assert_eq!(rx(20), None, "1.96 %");
    assert_eq!(rx(21), Some(Warning), "2.06 %");
    assert_eq!(rx(112), Some(Critical), "10.07 %");
    assert_eq!(
        severity_of("nic.rx_drops", |s| link(s, "eth0").stats.rx_dropped += 9),
        None,
        "under 1 drop/s"
    );
    let tx = |drops: u64| {
        severity_of("nic.tx_drops", |s| {
            let l = link(s, "eth0");
            l.stats.tx_packets += 1000;
            l.stats.tx_dropped += drops;
        })
    };
    assert_eq!((tx(20), tx(21)), (None, Some(Warning)));

    let errors = |n: u64| severity_of("nic.errors", |s| link(s, "eth0").stats.rx_errors += n);
    assert_eq!(
        (errors(9), errors(10), errors(1000)),
        (None, Some(Warning), Some(Critical))
    );
    assert_eq!(
        severity_of("nic.fifo_errors", |s| link(s, "eth0")
            .stats
            .rx_fifo_errors += 1),
        Some(Warning)
    );
    assert_eq!(severity_of("nic.fifo_errors", |_| {}), None);
    let crc = |n: u64| {
        severity_of("nic.crc_frame_errors", |s| {
            link(s, "eth0").stats.rx_crc_errors += n
        })
    };
    assert_eq!(
        (crc(0), crc(1), crc(100)),
        (None, Some(Warning), Some(Critical))
    );

    let carrier = |lower_up: bool| {
        severity_of("nic.no_carrier", |s| {
            let l = link(s, "eth0");
            l.admin_up = true;
            l.lower_up = lower_up;
            l.operstate = Some(if lower_up { "UP" } else { "DOWN" }.into());
        })
    };
    assert_eq!((carrier(true), carrier(false)), (None, Some(Warning)));
    assert_eq!(
        severity_of("nic.half_duplex", |s| link(s, "eth0").duplex =
            Some("half".into())),
        Some(Warning)
    );
    assert_eq!(
        severity_of("nic.half_duplex", |s| link(s, "eth0").duplex =
            Some("full".into())),
        None
    );
}

#[test]
fn driver_drop_counters() {
    let with_stats = |before: u64, after: u64| {
        let (mut prev, mut cur) = pair(|_| {});
        let stats = |v: u64| {
            Support::Available(BTreeMap::from([
                ("rx_queue_0_drops".to_string(), v),
                ("rx_bytes".to_string(), v * 100),
            ]))
        };
        link(&mut prev, "eth0").driver_stats = stats(before);
        link(&mut cur, "eth0").driver_stats = stats(after);
        run("nic.driver_drops", &prev, &cur)
            .iter()
            .map(|h| h.severity)
            .max()
    };
    assert_eq!(with_stats(5, 5), None);
    assert_eq!(with_stats(5, 6), Some(Warning));
}

/// Driver counters by what they are: a loss counter with no drop word (ena's
/// allowance) warns; an XDP drop belongs to nic.xdp_drops, not to driver_drops;
/// a driver reset (a decrease) is no loss.
fn driver_counter_hits(
    rule: &str,
    name: &str,
    before: u64,
    after: u64,
    xdp: bool,
) -> Vec<super::Hit> {
    let (mut prev, mut cur) = pair(|_| {});
    let stats = |v: u64| Support::Available(BTreeMap::from([(name.to_string(), v)]));
    link(&mut prev, "eth0").driver_stats = stats(before);
    link(&mut cur, "eth0").driver_stats = stats(after);
    if xdp {
        link(&mut cur, "eth0").xdp = Some(netsight_kernel::link::XdpProgram {
            id: 42,
            mode: "driver".into(),
        });
    }
    run(rule, &prev, &cur)
}

#[test]
fn driver_counters_are_read_by_what_they_mean() {
    let worst = |hits: Vec<super::Hit>| hits.iter().map(|h| h.severity).max();
    let driver = |name: &str, before, after| {
        worst(driver_counter_hits(
            "nic.driver_drops",
            name,
            before,
            after,
            false,
        ))
    };
    assert_eq!(driver("pps_allowance_exceeded", 0, 50), Some(Warning));
    assert_eq!(driver("rx_out_of_buffer", 10, 11), Some(Warning));
    assert_eq!(driver("tx0_tx_timeouts", 0, 1), Some(Warning));
    assert_eq!(driver("rx_queue_0_xdp_drops", 0, 1000), None);
    assert_eq!(driver("rx_kicks", 0, 1000), None);
    assert_eq!(driver("rx_drops", 1000, 3), None);
    // A name no entry has: classified by its words.
    assert_eq!(driver("fancy_ring_7_discarded", 0, 1), Some(Warning));
    let xdp = |name: &str, after, with_prog| {
        driver_counter_hits("nic.xdp_drops", name, 0, after, with_prog)
    };
    // Rates are per second over the pair's interval.
    let secs = {
        let (prev, cur) = pair(|_| {});
        netsight_kernel::delta::delta(&prev, &cur).interval_s
    };
    let many = (20.0 * secs) as u64;
    assert_eq!(
        worst(xdp("rx_queue_0_xdp_drops", many, true)),
        Some(Warning)
    );
    assert_eq!(worst(xdp("rx3_xdp_drops", 1, false)), Some(Info));
    assert_eq!(worst(xdp("rx_queue_0_xdp_packets", many, true)), None);
    assert_eq!(worst(xdp("rx_queue_0_drops", many, true)), None);
    let hit = &xdp("tx_queue_1_xdp_xmit_errors", many, true)[0];
    assert!(hit
        .evidence
        .iter()
        .any(|e| e.metric.contains("xdp program id") && e.value == 42.0));
    assert!(hit
        .extra_fix
        .iter()
        .any(|f| f.contains("bpftool prog show id 42")));
}

#[test]
fn softnet_rules() {
    let drop = |n: u64| severity_of("softnet.dropped", |s| s.softnet[0].dropped += n);
    assert_eq!(
        (drop(0), drop(1), drop(999), drop(1000)),
        (None, Some(Warning), Some(Warning), Some(Critical))
    );
    let squeeze = |n: u64| severity_of("softnet.time_squeeze", |s| s.softnet[1].time_squeeze += n);
    assert_eq!(
        (squeeze(99), squeeze(100), squeeze(5000)),
        (None, Some(Warning), Some(Critical))
    );
    let flow = |n: u64| {
        severity_of("softnet.flow_limit", |s| {
            s.softnet[0].flow_limit_count = Some(n)
        })
    };
    assert_eq!((flow(0), flow(1)), (None, Some(Warning)));
}

fn qdisc(counters: QdiscCounters, backlog_bytes: u64, qlen: u64) -> Qdisc {
    Qdisc {
        ifindex: 2,
        link: Some("eth0".into()),
        kind: "pfifo_fast".into(),
        handle: "0:".into(),
        parent: "root".into(),
        counters,
        backlog_bytes,
        qlen,
    }
}

fn qdisc_severity(id: &str, after: QdiscCounters, backlog: u64, qlen: u64) -> Option<Severity> {
    let (mut prev, mut cur) = pair(|_| {});
    prev.qdiscs.push(qdisc(QdiscCounters::default(), 0, 0));
    cur.qdiscs.push(qdisc(after, backlog, qlen));
    run(id, &prev, &cur).iter().map(|h| h.severity).max()
}

#[test]
fn qdisc_rules() {
    let c = |packets, drops, overlimits, requeues| QdiscCounters {
        bytes: 0,
        packets,
        drops,
        overlimits,
        requeues,
    };
    assert_eq!(
        qdisc_severity("qdisc.drops", c(1000, 10, 0, 0), 0, 0),
        None,
        "0.99 %"
    );
    assert_eq!(
        qdisc_severity("qdisc.drops", c(1000, 11, 0, 0), 0, 0),
        Some(Warning)
    );
    assert_eq!(
        qdisc_severity("qdisc.drops", c(1000, 112, 0, 0), 0, 0),
        Some(Critical)
    );
    const MIB: u64 = 1 << 20;
    assert_eq!(
        qdisc_severity("qdisc.standing_queue", c(0, 0, 0, 0), MIB - 1, 999),
        None
    );
    assert_eq!(
        qdisc_severity("qdisc.standing_queue", c(0, 0, 0, 0), MIB, 0),
        Some(Warning)
    );
    assert_eq!(
        qdisc_severity("qdisc.standing_queue", c(0, 0, 0, 0), 0, 1000),
        Some(Warning)
    );
    assert_eq!(
        qdisc_severity("qdisc.standing_queue", c(0, 0, 0, 0), 8 * MIB, 0),
        Some(Critical)
    );
    assert_eq!(
        qdisc_severity("qdisc.overlimits", c(0, 0, 999, 0), 0, 0),
        None
    );
    assert_eq!(
        qdisc_severity("qdisc.overlimits", c(0, 0, 1000, 0), 0, 0),
        Some(Info)
    );
    assert_eq!(qdisc_severity("qdisc.requeues", c(0, 0, 0, 99), 0, 0), None);
    assert_eq!(
        qdisc_severity("qdisc.requeues", c(0, 0, 0, 100), 0, 0),
        Some(Info)
    );
    assert_eq!(
        qdisc_severity("qdisc.requeues", c(0, 0, 0, 10_000), 0, 0),
        Some(Warning)
    );
}

#[test]
fn ip_rules() {
    let input = |discards: i64| {
        severity_of("ip.input_errors", |s| {
            bump(s, "Ip", "InReceives", 1000);
            bump(s, "Ip", "InDiscards", discards);
        })
    };
    assert_eq!(
        (input(9), input(10), input(50)),
        (None, Some(Warning), Some(Critical))
    );
    let icmp = |n: i64| {
        severity_of("ip.icmp_unreachable", |s| {
            bump(s, "Icmp", "OutDestUnreachs", n)
        })
    };
    assert_eq!(
        (icmp(99), icmp(100), icmp(1000)),
        (None, Some(Info), Some(Warning))
    );
}

#[test]
fn tcp_rules() {
    let retrans = |out: i64, re: i64| {
        severity_of("tcp.retransmissions", |s| {
            bump(s, "Tcp", "OutSegs", out);
            bump(s, "Tcp", "RetransSegs", re);
        })
    };
    assert_eq!(retrans(1000, 9), None, "0.9 %");
    assert_eq!(retrans(1000, 10), Some(Warning), "1 %");
    assert_eq!(retrans(1000, 50), Some(Critical), "5 %");
    assert_eq!(
        retrans(990, 500),
        None,
        "under 100 segments/s: too little traffic to judge"
    );

    let rto = |n: i64| severity_of("tcp.rto_timeouts", |s| bump(s, "TcpExt", "TCPTimeouts", n));
    assert_eq!(
        (rto(9), rto(10), rto(500)),
        (None, Some(Warning), Some(Critical))
    );
    let drops = |d: i64, o: i64| {
        severity_of("tcp.listen_drops", |s| {
            bump(s, "TcpExt", "ListenDrops", d);
            bump(s, "TcpExt", "ListenOverflows", o);
        })
    };
    assert_eq!((drops(5, 5), drops(6, 5)), (None, Some(Warning)));
    let rst = |n: i64| {
        severity_of("tcp.resets_sent", |s| {
            bump(s, "Tcp", "OutSegs", 1000);
            bump(s, "Tcp", "OutRsts", n);
        })
    };
    assert_eq!(
        (rst(99), rst(100), rst(1000)),
        (None, Some(Warning), Some(Critical))
    );
    let estab = |n: i64| severity_of("tcp.resets_received", |s| bump(s, "Tcp", "EstabResets", n));
    assert_eq!(
        (estab(99), estab(100), estab(1000)),
        (None, Some(Warning), Some(Critical))
    );

    let mem = |pages: i64| {
        severity_of("tcp.memory", |s| {
            s.sockstat
                .get_mut("TCP")
                .unwrap()
                .insert("mem".into(), pages);
        })
    };
    assert_eq!(
        (mem(383_866), mem(383_867), mem(575_796)),
        (None, Some(Warning), Some(Critical))
    );
    assert_eq!(
        severity_of("tcp.memory", |s| bump(s, "TcpExt", "TCPMemoryPressures", 1)),
        Some(Warning)
    );
    assert_eq!(
        severity_of("tcp.memory", |s| bump(s, "TcpExt", "TCPAbortOnMemory", 1)),
        Some(Critical)
    );

    let orphans = |n: i64| {
        severity_of("tcp.orphans", |s| {
            s.sockstat
                .get_mut("TCP")
                .unwrap()
                .insert("orphan".into(), n);
        })
    };
    assert_eq!(
        (orphans(32_767), orphans(32_768), orphans(65_536)),
        (None, Some(Warning), Some(Critical))
    );

    // 28232 local ports: TIME-WAIT at half of them warns, at 95 % is critical.
    let tw = |n: i64| {
        severity_of("tcp.time_wait", |s| {
            s.sockstat.get_mut("TCP").unwrap().insert("tw".into(), n);
        })
    };
    assert_eq!(
        (tw(14_115), tw(14_116), tw(26_821)),
        (None, Some(Warning), Some(Critical))
    );
    assert_eq!(
        severity_of("tcp.time_wait", |s| bump(
            s,
            "TcpExt",
            "TCPTimeWaitOverflow",
            1
        )),
        Some(Warning)
    );

    assert_eq!(
        severity_of("tcp.receive_pruning", |s| bump(
            s,
            "TcpExt",
            "PruneCalled",
            1
        )),
        Some(Warning)
    );
    assert_eq!(
        severity_of("tcp.receive_pruning", |s| bump(
            s,
            "TcpExt",
            "RcvPruned",
            100
        )),
        Some(Critical)
    );
    assert_eq!(severity_of("tcp.receive_pruning", |_| {}), None);

    let fails = |n: i64| {
        severity_of("tcp.connect_failures", |s| {
            bump(s, "Tcp", "ActiveOpens", 1000);
            bump(s, "Tcp", "AttemptFails", n);
        })
    };
    assert_eq!(
        (fails(99), fails(100), fails(500)),
        (None, Some(Warning), Some(Critical))
    );
}

#[test]
fn syn_and_delayed_ack_rules() {
    let syn = |n: i64| {
        severity_of("tcp.syn_retransmits", |s| {
            bump(s, "TcpExt", "TCPSynRetrans", n)
        })
    };
    assert_eq!(
        (syn(9), syn(10), syn(1000)),
        (None, Some(Warning), Some(Critical))
    );
    let delayed = |acks: i64, segs: i64| {
        severity_of("tcp.delayed_ack_stalls", |s| {
            bump(s, "TcpExt", "DelayedACKs", acks);
            bump(s, "Tcp", "InSegs", segs);
        })
    };
    assert_eq!(delayed(99, 100), None, "under 10/s");
    assert_eq!(delayed(100, 1000), Some(Warning), "10 %");
    assert_eq!(
        delayed(100, 1001),
        None,
        "bulk traffic: delayed ACKs are a small share"
    );
    let churn = severity_of("tcp.delayed_ack_stalls", |s| {
        bump(s, "TcpExt", "DelayedACKs", 600);
        bump(s, "Tcp", "InSegs", 1800);
        bump(s, "Tcp", "PassiveOpens", 600);
    });
    assert_eq!(churn, None, "short-connection churn is not a Nagle stall");
}

#[test]
fn udp_no_port() {
    let n = |v: i64| severity_of("udp.no_port", |s| bump(s, "Udp", "NoPorts", v));
    assert_eq!(
        (n(99), n(100), n(10_000)),
        (None, Some(Info), Some(Warning))
    );
}

fn socket(state: TcpState, local_port: u16, recv_q: u32, send_q: u32, pid: u32) -> Socket {
    Socket {
        protocol: Protocol::Tcp,
        ip_version: 4,
        state,
        local_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        local_port,
        remote_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)),
        remote_port: 40000,
        interface: 0,
        recv_q,
        send_q,
        uid: 0,
        inode: 1,
        timer: 0,
        timer_expires_ms: 0,
        tcp_info: None,
        tcp_info_len: None,
        skmem: None,
        congestion_control: None,
        tos: None,
        shutdown: None,
        process: Some(ProcessRef {
            pid,
            comm: Arc::from("app"),
        }),
    }
}

fn with_sockets(id: &str, sockets: Vec<Socket>) -> Option<Severity> {
    severity_of(id, |s| {
        s.sockets = Some(SocketTable {
            sockets,
            unix_counts: BTreeMap::new(),
            owners_complete: true,
        })
    })
}

#[test]
fn time_wait_counts_the_ports_a_destination_can_run_out_of() {
    // 20,000 TIME-WAIT sockets: 71 % of the 28,232 local ports, if they all held one.
    let tw =
        |per_destination: usize, destinations: u8, local_port: u16, peer: [u8; 4], reuse: &str| {
            severity_of("tcp.time_wait", |s| {
                s.sysctls
                    .insert("net.ipv4.tcp_tw_reuse".into(), reuse.into());
                s.sysctls
                    .insert("net.ipv4.ip_local_port_range".into(), "32768\t60999".into());
                let n = per_destination * destinations as usize;
                s.sockstat
                    .get_mut("TCP")
                    .unwrap()
                    .insert("tw".into(), n as i64);
                let sockets = (0..n)
                    .map(|i| Socket {
                        remote_addr: IpAddr::V4(Ipv4Addr::new(
                            peer[0],
                            peer[1],
                            peer[2],
                            peer[3] + (i % destinations as usize) as u8,
                        )),
                        ..socket(TcpState::TimeWait, local_port, 0, 0, 0)
                    })
                    .collect();
                s.sockets = Some(SocketTable {
                    sockets,
                    unix_counts: BTreeMap::new(),
                    owners_complete: true,
                })
            })
        };
    // Connections out to one remote server: its ports are running out.
    assert_eq!(tw(20_000, 1, 40_000, [10, 0, 0, 9], "2"), Some(Warning));
    assert_eq!(tw(27_000, 1, 40_000, [10, 0, 0, 9], "0"), Some(Critical));
    // Loopback with the default tcp_tw_reuse=2, or any peer with 1: ports are reused.
    assert_eq!(tw(20_000, 1, 40_000, [127, 0, 0, 1], "2"), None);
    assert_eq!(tw(20_000, 1, 40_000, [10, 0, 0, 9], "1"), None);
    assert_eq!(tw(20_000, 1, 40_000, [127, 0, 0, 1], "0"), Some(Warning));
    // The server's side: TIME-WAIT on the listening port holds no ephemeral port.
    assert_eq!(tw(20_000, 1, 80, [10, 0, 0, 9], "0"), None);
    // Spread over two destinations: 35 % of the range each.
    assert_eq!(tw(10_000, 2, 40_000, [10, 0, 0, 9], "0"), None);
}

#[test]
fn socket_rules() {
    let cw = |n: usize| {
        with_sockets(
            "sockets.close_wait_leak",
            (0..n)
                .map(|_| socket(TcpState::CloseWait, 80, 0, 0, 42))
                .collect(),
        )
    };
    assert_eq!(
        (cw(99), cw(100), cw(1000)),
        (None, Some(Warning), Some(Critical))
    );
    assert_eq!(
        severity_of("sockets.close_wait_leak", |_| {}),
        None,
        "no socket table, no verdict"
    );

    let listener = |q: u32| {
        with_sockets(
            "sockets.accept_queue_full",
            vec![socket(TcpState::Listen, 80, q, 128, 7)],
        )
    };
    assert_eq!(
        (listener(102), listener(103), listener(128)),
        (None, Some(Info), Some(Warning))
    );

    let syn = |n: usize| {
        let mut v = vec![socket(TcpState::Listen, 80, 0, 128, 7)];
        v.extend((0..n).map(|_| socket(TcpState::NewSynRecv, 80, 0, 0, 0)));
        with_sockets("sockets.syn_backlog", v)
    };
    assert_eq!(
        (syn(1023), syn(1024), syn(1844)),
        (None, Some(Warning), Some(Critical))
    );
}

#[test]
fn window_limited_sockets() {
    let limited = |busy_us: u64, rwnd_us: u64| {
        let mut sock = socket(TcpState::Established, 40000, 0, 0, 1);
        sock.tcp_info = Some(netsight_kernel::sockets::TcpInfo {
            busy_time_us: busy_us,
            rwnd_limited_us: rwnd_us,
            ..Default::default()
        });
        with_sockets("sockets.window_limited", vec![sock])
    };
    assert_eq!(limited(1_000_000, 499_999), None);
    assert_eq!(limited(1_000_000, 500_000), Some(Warning));
    assert_eq!(
        limited(400_000, 400_000),
        None,
        "too little busy time to judge"
    );
    // Limited once, quiet for an hour: nothing to say about now.
    let mut quiet = socket(TcpState::Established, 40000, 0, 0, 1);
    quiet.tcp_info = Some(netsight_kernel::sockets::TcpInfo {
        busy_time_us: 1_000_000,
        rwnd_limited_us: 900_000,
        last_data_sent_ms: 3_600_000,
        ..Default::default()
    });
    assert_eq!(with_sockets("sockets.window_limited", vec![quiet]), None);
    // Many limited connections are one finding that counts them and names the worst.
    let many: Vec<Socket> = (0..40u16)
        .map(|i| {
            let mut sock = socket(TcpState::Established, 40000 + i, 0, 0, 1);
            sock.tcp_info = Some(netsight_kernel::sockets::TcpInfo {
                busy_time_us: 1_000_000,
                rwnd_limited_us: 500_000 + u64::from(i) * 1000,
                ..Default::default()
            });
            sock
        })
        .collect();
    let (prev, cur) = pair(|s| {
        s.sockets = Some(SocketTable {
            sockets: many,
            unix_counts: BTreeMap::new(),
            owners_complete: true,
        })
    });
    let hits = run("sockets.window_limited", &prev, &cur);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].subject.as_deref(), Some("40 connections"));
    assert_eq!(hits[0].evidence[0].value, 40.0);
    assert_eq!(hits[0].evidence.len(), 1 + 3 * 5);
    assert!(
        hits[0].evidence[1].metric.contains(":40039 "),
        "the worst first: {:?}",
        hits[0].evidence[1]
    );
}

#[test]
fn conntrack_rules() {
    let fill = |count: u64| {
        severity_of("conntrack.table_fill", |s| {
            s.conntrack = Some(Conntrack {
                count: Some(count),
                max: Some(1000),
                stats: BTreeMap::new(),
            })
        })
    };
    assert_eq!(
        (fill(799), fill(800), fill(900)),
        (None, Some(Warning), Some(Critical))
    );
    let drops = |n: u64| {
        let (mut prev, mut cur) = pair(|_| {});
        let ct = |v: u64| {
            Some(Conntrack {
                count: Some(1),
                max: Some(1000),
                stats: BTreeMap::from([("drop".to_string(), v)]),
            })
        };
        prev.conntrack = ct(0);
        cur.conntrack = ct(n);
        run("conntrack.drops", &prev, &cur)
            .iter()
            .map(|h| h.severity)
            .max()
    };
    assert_eq!(
        (drops(0), drops(1), drops(100)),
        (None, Some(Warning), Some(Critical))
    );
}

fn sysctl_severity(id: &str, settings: &[(&str, &str)]) -> Option<Severity> {
    severity_of(id, |s| {
        for (k, v) in settings {
            s.sysctls.insert(k.to_string(), v.to_string());
        }
    })
}

#[test]
fn config_rules() {
    assert_eq!(sysctl_severity("config.tcp_tw_recycle", &[]), None);
    assert_eq!(
        sysctl_severity("config.tcp_tw_recycle", &[("net.ipv4.tcp_tw_recycle", "1")]),
        Some(Critical)
    );
    assert_eq!(
        sysctl_severity("config.syncookies_off", &[("net.ipv4.tcp_syncookies", "0")]),
        Some(Warning)
    );
    assert_eq!(sysctl_severity("config.syncookies_off", &[]), None);
    assert_eq!(
        sysctl_severity(
            "config.keepalive_default",
            &[("net.ipv4.tcp_keepalive_time", "7200")]
        ),
        Some(Info)
    );
    assert_eq!(
        sysctl_severity(
            "config.keepalive_default",
            &[("net.ipv4.tcp_keepalive_time", "7199")]
        ),
        None
    );
    assert_eq!(
        sysctl_severity("config.tcp_features_off", &[("net.ipv4.tcp_sack", "0")]),
        Some(Warning)
    );
    assert_eq!(sysctl_severity("config.tcp_features_off", &[]), None);
    assert_eq!(
        sysctl_severity(
            "config.bbr_without_fq",
            &[("net.ipv4.tcp_congestion_control", "bbr")]
        ),
        Some(Info)
    );
    assert_eq!(
        sysctl_severity(
            "config.bbr_without_fq",
            &[
                ("net.ipv4.tcp_congestion_control", "bbr"),
                ("net.core.default_qdisc", "fq")
            ]
        ),
        None
    );
    assert_eq!(
        sysctl_severity(
            "config.port_range_narrow",
            &[("net.ipv4.ip_local_port_range", "50000 60000")]
        ),
        Some(Info)
    );
    assert_eq!(sysctl_severity("config.port_range_narrow", &[]), None);

    let somaxconn = |value: &str, overflows: i64| {
        severity_of("config.somaxconn_small", |s| {
            s.sysctls.insert("net.core.somaxconn".into(), value.into());
            bump(s, "TcpExt", "ListenOverflows", overflows);
        })
    };
    assert_eq!(
        (
            somaxconn("128", 1),
            somaxconn("4096", 1),
            somaxconn("128", 0)
        ),
        (Some(Warning), None, None)
    );

    let buffers = |speed: u64| {
        severity_of("config.buffers_vs_link_speed", |s| {
            link(s, "eth0").speed_mbps = Some(speed)
        })
    };
    assert_eq!(buffers(1000), None, "1 Gbit/s x 10 ms = 1.25 MB fits");
    assert_eq!(
        buffers(5000),
        Some(Info),
        "6.25 MB exceeds tcp_wmem's 4 MiB"
    );
    assert_eq!(buffers(10_000), Some(Info));
    let veth = severity_of("config.buffers_vs_link_speed", |s| {
        let l = link(s, "eth0");
        l.speed_mbps = Some(10_000);
        l.kind = Some("veth".into());
    });
    assert_eq!(veth, None, "virtual links report nominal speeds");

    let rp = |strict: &str| {
        severity_of("config.rp_filter_strict", |s| {
            s.sysctls
                .insert("net.ipv4.conf.all.rp_filter".into(), strict.into());
            for name in ["eth0", "ifb0"] {
                let l = link(s, name);
                l.admin_up = true;
                l.lower_up = true;
            }
        })
    };
    assert_eq!((rp("1"), rp("2")), (Some(Info), None));
}

#[test]
fn quiet_host_has_no_warning_or_critical() {
    let (prev, cur) = pair(|_| {});
    let report = crate::diagnose(&prev, &cur);
    let loud: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.severity >= Warning)
        .map(|f| &f.rule_id)
        .collect();
    assert!(loud.is_empty(), "{loud:?}");
    assert!(report.rules_run >= 30);
}

#[test]
fn findings_rank_by_severity_then_impact() {
    let (prev, cur) = pair(|s| {
        bump(s, "Udp", "RcvbufErrors", 1); // warning, impact ~1.1
        bump(s, "TcpExt", "ListenOverflows", 200); // critical
        bump(s, "TcpExt", "TCPTimeouts", 300); // warning, impact 30
    });
    let report = crate::diagnose(&prev, &cur);
    let ids: Vec<&str> = report.findings.iter().map(|f| f.rule_id.as_str()).collect();
    // The RTOs are the overflowing listener's SYN retries: grouped under it.
    assert_eq!(
        &ids[..2],
        ["tcp.listen_overflows", "udp.receive_buffer_errors"]
    );
    assert_eq!(report.findings[0].symptoms[0].rule_id, "tcp.rto_timeouts");
    assert_eq!(report.worst(), Some(Critical));
    let _ = quiet();
}

#[test]
fn every_rule_is_documented() {
    let rules = super::all();
    assert!(rules.len() >= 30, "{} rules", rules.len());
    let mut ids: Vec<&str> = rules.iter().map(|r| r.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), rules.len(), "rule ids are unique");
    for r in rules {
        assert!(
            !r.why.is_empty()
                && !r.thresholds.is_empty()
                && !r.fix.is_empty()
                && !r.confirm.is_empty(),
            "{}",
            r.id
        );
    }
}

#[test]
fn filter_rule_drops_at_its_edges() {
    use netsight_kernel::nftables::NfRule;
    let rule = |verdict: &str, packets: u64| NfRule {
        family: "ip".into(),
        table: "filter".into(),
        chain: "INPUT".into(),
        position: 3,
        handle: 7,
        verdict: verdict.into(),
        packets: Some(packets),
        legacy: false,
    };
    // 10 s apart: the increase over 10 is the rate.
    let at = |verdict: &str, increase: u64| {
        let mut prev = quiet();
        prev.netfilter_rules = vec![rule(verdict, 1000)];
        let (_, mut cur) = pair(|_| {});
        cur.netfilter_rules = vec![rule(verdict, 1000 + increase)];
        let hits = run("filter.rule_drops", &prev, &cur);
        hits.first().map(|h| (h.severity, h.subject.clone()))
    };
    assert_eq!(at("drop", 0), None);
    assert_eq!(at("drop", 1).map(|h| h.0), Some(Info));
    assert_eq!(at("drop", 99).map(|h| h.0), Some(Info));
    let (severity, subject) = at("reject", 100).unwrap();
    assert_eq!(severity, Warning);
    assert_eq!(
        subject.as_deref(),
        Some("ip filter INPUT rule #3 (handle 7)")
    );
    assert_eq!(at("accept", 100_000), None, "accepting rules are not drops");
    // A rule that appeared during the interval has no earlier count: not rated.
    let mut prev = quiet();
    prev.netfilter_rules = vec![];
    let (_, mut cur) = pair(|_| {});
    cur.netfilter_rules = vec![rule("drop", 5000)];
    assert!(run("filter.rule_drops", &prev, &cur).is_empty());
}

#[test]
fn udp_overflow_names_the_socket_and_the_buffer_it_chose() {
    use netsight_kernel::sockets::SkMemInfo;
    let udp = |port: u16, rcvbuf: u32, drops: u32| Socket {
        protocol: Protocol::Udp,
        state: TcpState::Close,
        skmem: Some(SkMemInfo {
            rcvbuf,
            drops,
            ..SkMemInfo::default()
        }),
        ..socket(TcpState::Close, port, 0, 0, 4242)
    };
    let (prev, cur) = pair(|s| {
        bump(s, "Udp", "RcvbufErrors", 500);
        s.sysctls
            .insert("net.core.rmem_default".into(), "212992".into());
        s.sockets = Some(SocketTable {
            sockets: vec![
                udp(53, 212992, 3),
                udp(9000, 4608, 480),
                udp(123, 212992, 0),
            ],
            unix_counts: BTreeMap::new(),
            owners_complete: true,
        });
    });
    let hits = run("udp.receive_buffer_errors", &prev, &cur);
    let hit = &hits[0];
    assert_eq!(hit.subject.as_deref(), Some("udp 127.0.0.1:9000"));
    assert!(hit
        .evidence
        .iter()
        .any(|e| e.metric.contains("127.0.0.1:9000 of app[4242]") && e.value == 480.0));
    assert!(
        !hit.evidence.iter().any(|e| e.metric.contains(":123")),
        "no drops, not a culprit"
    );
    assert!(
        hit.extra_fix[0].contains("sets SO_RCVBUF itself"),
        "{:?}",
        hit.extra_fix
    );
    assert!(
        !hit.extra_fix.iter().any(|f| f.contains("rmem_max=")),
        "a bigger system limit does not help a socket that chose its buffer"
    );
}

#[test]
fn a_full_accept_queue_says_which_limit_bites() {
    let fix_for = |backlog: u32, somaxconn: &str| {
        let (prev, cur) = pair(|s| {
            s.sysctls
                .insert("net.core.somaxconn".into(), somaxconn.into());
            s.sockets = Some(SocketTable {
                sockets: vec![socket(TcpState::Listen, 8080, backlog, backlog, 7)],
                unix_counts: BTreeMap::new(),
                owners_complete: true,
            });
        });
        run("sockets.accept_queue_full", &prev, &cur)[0]
            .extra_fix
            .join(" ")
    };
    // The observed fault: listen(fd, 1) with somaxconn 4096 — say so, and no somaxconn advice.
    let small = fix_for(1, "4096");
    assert!(small.contains("listen() with a backlog of 1"), "{small}");
    assert!(small.contains("does not limit it"), "{small}");
    let capped = fix_for(4096, "4096");
    assert!(
        capped.contains("capped by net.core.somaxconn (4096)"),
        "{capped}"
    );
}

#[test]
fn an_overflowing_listener_says_whether_the_application_accepts() {
    let overflow = |passive: i64| {
        let (prev, cur) = pair(|s| {
            s.sysctls.insert("net.core.somaxconn".into(), "4096".into());
            s.sockets = Some(SocketTable {
                sockets: vec![socket(TcpState::Listen, 8080, 2, 1, 7)],
                unix_counts: BTreeMap::new(),
                owners_complete: true,
            });
            bump(s, "TcpExt", "ListenOverflows", 50);
            bump(s, "Tcp", "PassiveOpens", passive);
        });
        run("tcp.listen_overflows", &prev, &cur).remove(0)
    };
    let none = overflow(0);
    let fixes = none.extra_fix.join(" ");
    assert!(fixes.contains("made no accept() calls"), "{fixes}");
    assert!(
        !fixes.contains("somaxconn=4096"),
        "somaxconn is not the limit: {fixes}"
    );
    assert!(
        none.evidence
            .iter()
            .any(|e| e.metric.contains("listen() backlog") && e.value == 1.0),
        "{:?}",
        none.evidence
    );
    let some = overflow(30).extra_fix.join(" ");
    assert!(
        some.contains("accepts slower than connections arrive"),
        "{some}"
    );
    assert!(!some.contains("made no accept"), "{some}");
}

fn veth(
    name: &str,
    ifindex: u32,
    peer: u32,
    netnsid: Option<i32>,
    mtu: u32,
) -> netsight_kernel::link::Link {
    let (_, mut cur) = pair(|_| {});
    let mut l = link(&mut cur, "eth0").clone();
    l.name = name.into();
    l.kind = Some("veth".into());
    l.ifindex = Some(ifindex);
    l.peer_ifindex = Some(peer);
    l.peer_netnsid = netnsid;
    l.mtu = Some(mtu);
    l
}

#[test]
fn veth_ends_are_paired_only_when_unambiguous() {
    use super::nic::{veth_mtu_mismatches, LinkEnd};
    let end = |namespace, link| LinkEnd {
        namespace,
        inode: None,
        link,
    };
    // Same namespace: 2 <-> 3, MTUs differ.
    let (a, b) = (veth("a", 2, 3, None, 9000), veth("b", 3, 2, None, 1500));
    let hits = veth_mtu_mismatches(&[end("", &a), end("", &b)], false);
    assert_eq!(hits.len(), 1, "each pair once");
    assert!(
        hits[0].extra_fix[0].contains("over 1500 bytes sent from a"),
        "{:?}",
        hits[0].extra_fix
    );
    assert!(veth_mtu_mismatches(&[end("", &a), end("", &b)], true).is_empty());
    let same = veth("b", 3, 2, None, 9000);
    assert!(veth_mtu_mismatches(&[end("", &a), end("", &same)], false).is_empty());
    // Across namespaces: each end has a netnsid for the other; the same ifindexes
    // in the wrong place (a third namespace's pair of its own) do not match.
    let (x, y) = (
        veth("x", 2, 3, Some(0), 9000),
        veth("y", 3, 2, Some(1), 1500),
    );
    let local_y = veth("y2", 3, 2, None, 1500);
    let hits = veth_mtu_mismatches(&[end("n1", &x), end("n2", &y), end("n3", &local_y)], true);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].subject.as_deref(), Some("x (n1) <-> y (n2)"));
    // Two candidates with the same ifindexes: not guessed.
    let other_y = veth("y3", 3, 2, Some(4), 1500);
    let ends = [end("n1", &x), end("n2", &y), end("n4", &other_y)];
    assert!(veth_mtu_mismatches(&ends, true).is_empty());
    // Resolved ids (doctor --netns) tell the two apart.
    let mut resolved = x.clone();
    resolved.peer_netns = Some(22);
    let ends = [
        end("n1", &resolved),
        LinkEnd {
            namespace: "n2",
            inode: Some(22),
            link: &y,
        },
        LinkEnd {
            namespace: "n4",
            inode: Some(44),
            link: &other_y,
        },
    ];
    let hits = veth_mtu_mismatches(&ends, true);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].subject.as_deref(), Some("x (n1) <-> y (n2)"));
}
