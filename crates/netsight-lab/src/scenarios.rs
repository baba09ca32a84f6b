//! The scenarios: each builds on the shared topology, injects one fault, drives
//! bounded traffic and names the doctor rule that must detect it.

use serde::Serialize;

use crate::topology::{Background, HostSysctl, Role, Topology, SERVER_ADDR};
use netsight_report::Report;

use crate::{AgentLauncher, LabError};

#[derive(Debug, Serialize)]
pub struct Scenario {
    pub name: &'static str,
    pub summary: &'static str,
    pub expected_rule: &'static str,
    /// The namespace whose counters show the fault: doctor runs there.
    pub observe: Role,
    pub doctor_interval_s: f64,
    /// Changes host-wide settings (restored when the guards drop).
    pub changes_host: bool,
    /// How `netsight tune` repairs it, for `lab run --fix`.
    pub fix: Option<Fix>,
    /// What `netsight analyze` must diagnose in a capture of the run, for `lab run --capture`.
    pub packets: Option<PacketCheck>,
    /// Injects the fault; host-wide changes come back as guards held for the run.
    #[serde(skip)]
    pub setup: fn(&Topology) -> Result<Vec<HostSysctl>, LabError>,
    /// Starts the load; what it returns is kept running until doctor is done.
    #[serde(skip)]
    pub drive: fn(&Topology, &AgentLauncher) -> Result<Vec<Background>, LabError>,
}

/// `lab run --capture DIR` captures the run on `capture_in`'s eth0 and runs `netsight analyze`
/// on it: `diagnosis` must be among the packet diagnoses.
#[derive(Debug, Serialize)]
pub struct PacketCheck {
    pub capture_in: Role,
    pub diagnosis: &'static str,
}

/// The repair `lab run --fix` checks: `netsight tune apply --profile PROFILE` in
/// `role`'s namespace, then the same load again; the finding must be gone and the
/// metric (read from doctor's workload) must improve.
#[derive(Debug, Serialize)]
pub struct Fix {
    pub role: Role,
    pub profile: &'static str,
    /// The path tune sizes buffers for, as a user states it (a veth reports no real speed).
    pub link: &'static [&'static str],
    /// What the metric is, with its unit.
    pub metric: &'static str,
    #[serde(skip)]
    pub measure: fn(&Report) -> Option<f64>,
    pub higher_is_better: bool,
}

fn passive_opens_per_s(report: &Report) -> Option<f64> {
    Some(report.workload.tcp_passive_opens_per_s)
}

/// The busiest socket's receive-window-limited share. Throughput itself cannot show
/// the fix here: with no netem the namespaces' RTT is tens of µs, so even a 16 KiB
/// window fills the 100 Mbit/s tbf and only the time spent waiting on it changes.
fn rwnd_limited_percent(report: &Report) -> Option<f64> {
    report
        .workload
        .top_sockets_by_bytes
        .first()?
        .rwnd_limited_percent
}

const TCP_PORT: &str = "8080";
const UDP_PORT: &str = "9000";
/// An address on the client's subnet that nobody holds.
const DEAD_NEIGHBOUR: &str = "10.77.1.99";

fn no_setup(_: &Topology) -> Result<Vec<HostSysctl>, LabError> {
    Ok(Vec::new())
}

/// Gives a just-started listener time to bind.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(300));
}

pub static SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "listen-overflow",
        summary: "net.core.somaxconn is 1 in the server's namespace, so a server asking for a backlog of 4096 gets 2; it never calls accept(); 50 clients connect.",
        expected_rule: "tcp.listen_overflows",
        changes_host: false,
        fix: Some(Fix {
            role: Role::Server,
            profile: "balanced",
            link: &[],
            metric: "handshakes completed into the accept queue per second (server)",
            measure: passive_opens_per_s,
            higher_is_better: true,
        }),
        observe: Role::Server,
        packets: None,
        doctor_interval_s: 4.0,
        setup: |t| {
            // somaxconn is per network namespace: this stands for an undersized host setting.
            t.exec_ok(Role::Server, "sysctl", &["-qw", "net.core.somaxconn=1"])?;
            Ok(Vec::new())
        },
        drive: |t, a| {
            let server = a.start(t, Role::Server, &["listen", TCP_PORT, "4096", "noaccept", "10"])?;
            settle();
            let clients = a.start(t, Role::Client, &["connect", SERVER_ADDR, TCP_PORT, "50", "hold", "10"])?;
            Ok(vec![server, clients])
        },
    },
    Scenario {
        name: "udp-buffer-overflow",
        summary: "A UDP receiver with a 4 KiB buffer that never reads; 5000 datagrams arrive.",
        expected_rule: "udp.receive_buffer_errors",
        changes_host: false,
        fix: None,
        observe: Role::Server,
        packets: None,
        doctor_interval_s: 3.0,
        setup: no_setup,
        drive: |t, a| {
            let sink = a.start(t, Role::Server, &["udp-sink", UDP_PORT, "4096", "10"])?;
            settle();
            a.run(t, Role::Client, &["udp-blast", SERVER_ADDR, UDP_PORT, "5000", "1000"])?;
            Ok(vec![sink])
        },
    },
    Scenario {
        name: "close-wait-leak",
        summary: "The server accepts 200 connections and never closes them after the clients do.",
        expected_rule: "sockets.close_wait_leak",
        changes_host: false,
        fix: None,
        observe: Role::Server,
        packets: None,
        doctor_interval_s: 3.0,
        setup: no_setup,
        drive: |t, a| {
            let server = a.start(t, Role::Server, &["listen", TCP_PORT, "512", "hold", "10"])?;
            settle();
            a.run(t, Role::Client, &["connect", SERVER_ADDR, TCP_PORT, "200", "close", "5"])?;
            Ok(vec![server])
        },
    },
    Scenario {
        name: "random-loss",
        summary: "The router drops 5 % of the forwarded data segments at random (iptables -m statistic, packets of 200 bytes or more: the handshake and pure ACKs pass, so the loss is the transfer's, not a SYN's second of backoff); a bulk TCP transfer crosses it.",
        expected_rule: "tcp.retransmissions",
        changes_host: false,
        fix: None,
        observe: Role::Client,
        packets: Some(PacketCheck {
            capture_in: Role::Client,
            diagnosis: "tcp-retransmissions",
        }),
        doctor_interval_s: 4.0,
        setup: |t| {
            t.exec_ok(Role::Router, "iptables", &["-A", "FORWARD", "-m", "length", "--length", "200:65535", "-m", "statistic", "--mode", "random", "--probability", "0.05", "-j", "DROP"])?;
            Ok(Vec::new())
        },
        drive: |t, a| {
            let sink = a.start(t, Role::Server, &["listen", TCP_PORT, "16", "sink", "10"])?;
            settle();
            let bulk = a.start(t, Role::Client, &["bulk", SERVER_ADDR, TCP_PORT, "6"])?;
            Ok(vec![sink, bulk])
        },
    },
    Scenario {
        name: "qdisc-drops",
        summary: "The router shapes towards the server with tbf (5 Mbit/s, 10 KB queue); a UDP burst overruns it.",
        expected_rule: "qdisc.drops",
        changes_host: false,
        fix: None,
        observe: Role::Router,
        packets: None,
        doctor_interval_s: 3.0,
        setup: |t| {
            t.exec_ok(Role::Router, "tc", &["qdisc", "add", "dev", "to-server", "root", "tbf", "rate", "5mbit", "burst", "10kb", "limit", "10kb"])?;
            Ok(Vec::new())
        },
        drive: |t, a| {
            a.run(t, Role::Client, &["udp-blast", SERVER_ADDR, UDP_PORT, "5000", "1000"])?;
            Ok(vec![])
        },
    },
    Scenario {
        name: "bufferbloat",
        summary: "The same shaper with a 20 MB queue: nothing is dropped, a standing queue builds instead; a bulk TCP transfer through it sees its RTT grow with the queue.",
        expected_rule: "qdisc.standing_queue",
        changes_host: false,
        fix: None,
        observe: Role::Router,
        packets: Some(PacketCheck {
            capture_in: Role::Client,
            diagnosis: "bufferbloat",
        }),
        doctor_interval_s: 2.0,
        setup: |t| {
            t.exec_ok(Role::Router, "tc", &["qdisc", "add", "dev", "to-server", "root", "tbf", "rate", "5mbit", "burst", "10kb", "limit", "20mb"])?;
            Ok(Vec::new())
        },
        drive: |t, a| {
            let sink = a.start(t, Role::Server, &["listen", TCP_PORT, "16", "sink", "5"])?;
            settle();
            let bulk = a.start(t, Role::Client, &["bulk", SERVER_ADDR, TCP_PORT, "2"])?;
            // TCP alone first: its own queue shows as RTT growing with bytes in flight.
            std::thread::sleep(std::time::Duration::from_millis(1000));
            a.run(t, Role::Client, &["udp-blast", SERVER_ADDR, UDP_PORT, "8000", "1000"])?;
            Ok(vec![sink, bulk])
        },
    },
    Scenario {
        name: "time-wait-exhaustion",
        summary: "The client's ephemeral port range is 501 ports; 400 short connections leave it in TIME-WAIT.",
        expected_rule: "tcp.time_wait",
        changes_host: false,
        fix: None,
        observe: Role::Client,
        packets: None,
        doctor_interval_s: 4.0,
        setup: |t| {
            t.exec_ok(Role::Client, "sysctl", &["-qw", "net.ipv4.ip_local_port_range=40000 40500"])?;
            Ok(Vec::new())
        },
        drive: |t, a| {
            let server = a.start(t, Role::Server, &["listen", TCP_PORT, "512", "sink", "10"])?;
            settle();
            a.run(t, Role::Client, &["connect", SERVER_ADDR, TCP_PORT, "400", "close", "5"])?;
            Ok(vec![server])
        },
    },
    Scenario {
        name: "firewall-reject",
        summary: "The router rejects connections to the service with TCP resets (iptables REJECT): connects fail fast.",
        expected_rule: "tcp.connect_failures",
        changes_host: false,
        fix: None,
        observe: Role::Client,
        packets: Some(PacketCheck {
            capture_in: Role::Client,
            diagnosis: "syn-refused",
        }),
        doctor_interval_s: 3.0,
        setup: |t| {
            t.exec_ok(Role::Router, "iptables", &["-A", "FORWARD", "-p", "tcp", "--dport", TCP_PORT, "-j", "REJECT", "--reject-with", "tcp-reset"])?;
            Ok(Vec::new())
        },
        drive: |t, a| {
            let server = a.start(t, Role::Server, &["listen", TCP_PORT, "128", "sink", "10"])?;
            settle();
            a.run(t, Role::Client, &["connect", SERVER_ADDR, TCP_PORT, "100", "close", "2"])?;
            Ok(vec![server])
        },
    },
    Scenario {
        name: "firewall-drop",
        summary: "The router silently drops SYNs to the service (iptables DROP): clients retransmit SYNs and time out.",
        expected_rule: "tcp.syn_retransmits",
        changes_host: false,
        fix: None,
        observe: Role::Client,
        packets: Some(PacketCheck {
            capture_in: Role::Client,
            diagnosis: "syn-unanswered",
        }),
        doctor_interval_s: 4.0,
        setup: |t| {
            t.exec_ok(Role::Router, "iptables", &["-A", "FORWARD", "-p", "tcp", "--dport", TCP_PORT, "-j", "DROP"])?;
            Ok(Vec::new())
        },
        drive: |t, a| {
            let clients = a.start(t, Role::Client, &["connect", SERVER_ADDR, TCP_PORT, "30", "hold", "6"])?;
            Ok(vec![clients])
        },
    },
    Scenario {
        name: "pmtu-blackhole",
        summary: "The router's link to the server has MTU 1400, the server still advertises MSS 1460, and the router's ICMP frag-needed is filtered: full-size DF segments die at the router.",
        expected_rule: "ip.fragmentation_failures",
        changes_host: false,
        fix: None,
        observe: Role::Router,
        packets: Some(PacketCheck {
            capture_in: Role::Client,
            diagnosis: "pmtu-black-hole",
        }),
        doctor_interval_s: 3.0,
        setup: |t| {
            t.exec_ok(Role::Router, "ip", &["link", "set", "to-server", "mtu", "1400"])?;
            t.exec_ok(Role::Server, "ip", &["link", "set", "eth0", "mtu", "1400"])?;
            // The server lies about its MSS, as a host behind a smaller hop would not know.
            t.exec_ok(Role::Server, "ip", &["route", "replace", "default", "via", "10.77.2.1", "advmss", "1460"])?;
            t.exec_ok(Role::Router, "iptables", &["-A", "OUTPUT", "-p", "icmp", "--icmp-type", "fragmentation-needed", "-j", "DROP"])?;
            Ok(Vec::new())
        },
        drive: |t, a| {
            let sink = a.start(t, Role::Server, &["listen", TCP_PORT, "16", "sink", "10"])?;
            settle();
            let bulk = a.start(t, Role::Client, &["bulk", SERVER_ADDR, TCP_PORT, "5"])?;
            Ok(vec![sink, bulk])
        },
    },
    Scenario {
        name: "nagle-delayed-ack",
        summary: "Requests written in two small pieces without TCP_NODELAY: Nagle holds the second piece until the server's delayed ACK fires.",
        expected_rule: "tcp.delayed_ack_stalls",
        changes_host: false,
        fix: None,
        observe: Role::Server,
        packets: None,
        doctor_interval_s: 3.0,
        setup: no_setup,
        drive: |t, a| {
            let server = a.start(t, Role::Server, &["listen", TCP_PORT, "16", "echo", "10"])?;
            settle();
            let client = a.start(t, Role::Client, &["rr", SERVER_ADDR, TCP_PORT, "5"])?;
            Ok(vec![server, client])
        },
    },
    Scenario {
        name: "syn-flood-no-cookies",
        summary: "Spoofed SYNs (raw socket) flood a listener with a backlog of 64 while tcp_syncookies=0: the SYN queue fills and SYNs are dropped.",
        expected_rule: "tcp.syn_queue_full",
        changes_host: false,
        fix: None,
        observe: Role::Server,
        packets: Some(PacketCheck {
            capture_in: Role::Server,
            diagnosis: "syn-flood",
        }),
        doctor_interval_s: 3.0,
        setup: |t| {
            t.exec_ok(Role::Server, "sysctl", &["-qw", "net.ipv4.tcp_syncookies=0"])?;
            Ok(Vec::new())
        },
        drive: syn_flood,
    },
    Scenario {
        name: "syn-flood-cookies",
        summary: "The same flood with tcp_syncookies=1: the listener answers with SYN cookies and keeps serving.",
        expected_rule: "tcp.syncookies_sent",
        changes_host: false,
        fix: None,
        observe: Role::Server,
        packets: Some(PacketCheck {
            capture_in: Role::Server,
            diagnosis: "syn-flood",
        }),
        doctor_interval_s: 3.0,
        setup: |t| {
            t.exec_ok(Role::Server, "sysctl", &["-qw", "net.ipv4.tcp_syncookies=1"])?;
            Ok(Vec::new())
        },
        drive: syn_flood,
    },
    Scenario {
        name: "small-window",
        summary: "The server's tcp_rmem caps its receive window at 16 KiB behind a 100 Mbit/s tbf: the client's bulk transfer waits on window updates.",
        expected_rule: "sockets.window_limited",
        changes_host: false,
        fix: Some(Fix {
            role: Role::Server,
            profile: "throughput",
            // The scenario's tbf rate; the namespaces' RTT is well under a millisecond.
            link: &["--link-speed", "100M", "--rtt", "1ms"],
            metric: "receive-window-limited share of the bulk sender's busy time (%)",
            measure: rwnd_limited_percent,
            higher_is_better: false,
        }),
        observe: Role::Client,
        packets: None,
        doctor_interval_s: 3.0,
        setup: |t| {
            t.exec_ok(Role::Server, "sysctl", &["-qw", "net.ipv4.tcp_rmem=4096 8192 16384"])?;
            t.exec_ok(Role::Router, "tc", &["qdisc", "add", "dev", "to-server", "root", "tbf", "rate", "100mbit", "burst", "32kb", "limit", "1mb"])?;
            Ok(Vec::new())
        },
        drive: |t, a| {
            let sink = a.start(t, Role::Server, &["listen", TCP_PORT, "16", "sink", "10"])?;
            settle();
            let bulk = a.start(t, Role::Client, &["bulk", SERVER_ADDR, TCP_PORT, "6"])?;
            Ok(vec![sink, bulk])
        },
    },
    Scenario {
        name: "softnet-backlog",
        summary: "The host's net.core.netdev_max_backlog is cut to 4 (host-wide, restored after); RPS steers the server's receive work to CPU 1 while a sender pinned to CPU 0 floods UDP: CPU 1's backlog overflows.",
        expected_rule: "softnet.dropped",
        changes_host: true,
        fix: None,
        observe: Role::Server,
        packets: None,
        doctor_interval_s: 3.0,
        setup: |t| {
            if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
                return Err(LabError::Unsupported("softnet-backlog needs two CPUs (RPS to another CPU)".into()));
            }
            // A backlog only overflows when another CPU fills it faster than it drains.
            // The lab runs from the netsight binary: its agent writes the mask in the namespace.
            let exe = std::env::current_exe().map_err(|e| LabError::Agent(format!("netsight binary: {e}")))?;
            t.exec_ok(Role::Server, &exe.to_string_lossy(), &["lab", "agent", "rps", "eth0", "rx-0", "2"])?;
            Ok(vec![HostSysctl::set("net.core.netdev_max_backlog", "4")?])
        },
        drive: |t, a| {
            a.run_pinned(t, Role::Client, 0, &["udp-blast", SERVER_ADDR, UDP_PORT, "30000", "200"])?;
            Ok(vec![])
        },
    },
    Scenario {
        name: "conntrack-full",
        summary: "The router tracks connections (iptables conntrack match) and net.netfilter.nf_conntrack_max is cut to 64 (host-wide, restored after); 150 connections cross it.",
        expected_rule: "conntrack.table_fill",
        changes_host: true,
        fix: None,
        observe: Role::Router,
        packets: None,
        doctor_interval_s: 3.0,
        setup: |t| {
            t.exec_ok(Role::Router, "iptables", &["-A", "FORWARD", "-m", "conntrack", "--ctstate", "NEW,ESTABLISHED,RELATED", "-j", "ACCEPT"])?;
            Ok(vec![HostSysctl::set("net.netfilter.nf_conntrack_max", "64")?])
        },
        drive: |t, a| {
            let server = a.start(t, Role::Server, &["listen", TCP_PORT, "512", "hold", "10"])?;
            settle();
            let clients = a.start(t, Role::Client, &["connect", SERVER_ADDR, TCP_PORT, "150", "hold", "6"])?;
            Ok(vec![server, clients])
        },
    },
    Scenario {
        name: "server-firewall-drop",
        summary: "The server's own firewall drops the UDP service port (iptables INPUT DROP) while clients send to it: no counter-based rule reads netfilter, the rule's counter and the kernel's NETFILTER_DROP name it.",
        expected_rule: "filter.rule_drops",
        changes_host: false,
        fix: None,
        observe: Role::Server,
        packets: None,
        doctor_interval_s: 3.0,
        setup: |t| {
            t.exec_ok(Role::Server, "iptables", &["-A", "INPUT", "-p", "udp", "--dport", UDP_PORT, "-j", "DROP"])?;
            Ok(Vec::new())
        },
        drive: blast_the_udp_service,
    },
    Scenario {
        name: "server-xdp-drop",
        summary: "An XDP program on the server's interface drops the UDP service port in native mode, before the stack: no netfilter counter or socket sees it; the veth's XDP drop counter and the attached program's id name it.",
        expected_rule: "nic.xdp_drops",
        changes_host: false,
        fix: None,
        observe: Role::Server,
        packets: None,
        doctor_interval_s: 3.0,
        setup: |t| {
            attach_xdp_drop_udp(t, Role::Server, "eth0")?;
            Ok(Vec::new())
        },
        drive: blast_the_udp_service,
    },
    Scenario {
        name: "server-legacy-firewall-drop",
        summary: "The server's firewall is iptables-legacy (x_tables, invisible to nftables' netlink) and drops the UDP service port: the legacy rule's counter (IPT_SO_GET_ENTRIES) names it by table, chain and position.",
        expected_rule: "filter.rule_drops",
        changes_host: false,
        fix: None,
        observe: Role::Server,
        packets: None,
        doctor_interval_s: 3.0,
        setup: |t| {
            t.exec_ok(Role::Server, "iptables-legacy", &["-A", "INPUT", "-p", "udp", "--dport", UDP_PORT, "-j", "DROP"])?;
            Ok(Vec::new())
        },
        drive: blast_the_udp_service,
    },
    Scenario {
        name: "dead-next-hop",
        summary: "The client sends to a neighbour on its own subnet that does not exist: ARP never resolves, after three unanswered probes (about 3 s) the kernel drops every packet queued for it (NEIGH_FAILED).",
        expected_rule: "drops.neigh_failed",
        changes_host: false,
        fix: None,
        observe: Role::Client,
        packets: None,
        doctor_interval_s: 5.0,
        setup: |_| Ok(Vec::new()),
        drive: |t, a| {
            a.run(t, Role::Client, &["udp-blast", DEAD_NEIGHBOUR, UDP_PORT, "3000", "64", "1", "3000"])?;
            Ok(Vec::new())
        },
    },
];

/// 3000 datagrams at 1500/s from the client to the server's UDP service port.
fn blast_the_udp_service(t: &Topology, a: &AgentLauncher) -> Result<Vec<Background>, LabError> {
    a.run(
        t,
        Role::Client,
        &[
            "udp-blast",
            SERVER_ADDR,
            UDP_PORT,
            "3000",
            "200",
            "2",
            "1500",
        ],
    )?;
    Ok(Vec::new())
}

/// The lab's XDP program (bpf/xdp_drop_udp.bpf.c): drops IPv4 UDP to port 9000.
const XDP_DROP_UDP: &[u8] = include_bytes!("../bpf/xdp_drop_udp.bpf.o");

/// Attaches XDP_DROP_UDP in native mode to `dev` in `role`'s namespace. The object
/// goes to `ip` as an inherited memfd: no file is left behind. The program goes
/// with the namespace's interface when the lab tears the namespace down.
fn attach_xdp_drop_udp(t: &Topology, role: Role, dev: &str) -> Result<(), LabError> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let io = |e: std::io::Error| LabError::Spawn {
        command: "memfd for the XDP object".into(),
        source: e,
    };
    // No MFD_CLOEXEC: the `ip` child inherits it and opens /proc/self/fd/N.
    let fd = rustix::fs::memfd_create("netsight-lab-xdp", rustix::fs::MemfdFlags::empty())
        .map_err(|e| io(e.into()))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(XDP_DROP_UDP).map_err(io)?;
    let path = format!("/proc/self/fd/{}", file.as_raw_fd());
    crate::topology::run_ok(
        "ip",
        &[
            "-n",
            t.ns(role),
            "link",
            "set",
            "dev",
            dev,
            "xdpdrv",
            "obj",
            &path,
            "sec",
            "xdp",
        ],
    )?;
    Ok(())
}

fn syn_flood(t: &Topology, a: &AgentLauncher) -> Result<Vec<Background>, LabError> {
    let server = a.start(
        t,
        Role::Server,
        &["listen", TCP_PORT, "64", "noaccept", "10"],
    )?;
    settle();
    a.run(
        t,
        Role::Client,
        &["syn-flood", SERVER_ADDR, TCP_PORT, "3000"],
    )?;
    Ok(vec![server])
}
