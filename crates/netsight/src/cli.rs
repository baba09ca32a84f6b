//! The command line, kept in one module: clap types only, no logic.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "netsight",
    version,
    about = "See, explain and fix Linux network performance",
    long_about = "netsight reads what the kernel counts (procfs, sysctl, sysfs, rtnetlink, ethtool), \
                  reports it sar-style, and saves it to bundles for offline diagnosis.",
    after_help = "Examples:\n  netsight stat ALL 1 5        every keyword, five one-second intervals\n  netsight snapshot --json     one snapshot as JSON\n  netsight snapshot -o host.nsb --interval 5\n                               two snapshots five seconds apart, saved as a bundle"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Diagnose: two snapshots an interval apart, every USE rule, ranked findings with fixes.
    #[command(
        after_help = "Exit status: 0 no problem (or info only), 1 warning, 2 critical, 3 doctor could not run.\n\nExamples:\n  netsight doctor                      5-second interval, text report\n  netsight doctor --interval 10 --json\n  netsight snapshot -o host.nsb --interval 5 --sockets && netsight doctor --from host.nsb\n  netsight doctor --list-rules"
    )]
    Doctor(DoctorArgs),

    /// eBPF tracers (needs root or CAP_BPF + CAP_PERFMON, and kernel BTF).
    #[command(subcommand)]
    Trace(TraceCommand),

    /// Reproducible fault scenarios in network namespaces, diagnosed by doctor.
    #[command(subcommand)]
    Lab(LabCommand),

    /// What a kernel counter, softnet_stat column or sysctl means, and the fixes it calls for.
    #[command(
        after_help = "Names: TcpExt.ListenOverflows, nstat's TcpExtListenOverflows, a bare ListenOverflows,\nsoftnet_stat.time_squeeze, net.core.somaxconn (or just somaxconn).\n\nExamples:\n  netsight explain ListenOverflows\n  netsight explain Udp6RcvbufErrors --json\n  netsight explain net.ipv4.tcp_rmem"
    )]
    Explain(ExplainArgs),

    /// Take a snapshot of every kernel network source; print it or save it as a bundle.
    #[command(
        after_help = "Examples:\n  netsight snapshot                     summary of what was read\n  netsight snapshot --json | jq '.mib.TcpExt.ListenOverflows'\n  netsight snapshot -o host.nsb         save raw inputs for `--from`\n  netsight snapshot -o host.nsb --interval 5 --count 2\n  netsight snapshot --from host.nsb --json"
    )]
    Snapshot(SnapshotArgs),

    /// Every TCP/UDP socket with tcp_info, queues, memory and owner; filters and summaries.
    #[command(
        after_help = "Examples:\n  netsight sockets                          all TCP and UDP sockets\n  netsight sockets --state estab --sort rtt the slowest connections first\n  netsight sockets --port 443 --peer 10.0.0.0/8\n  netsight sockets --process nginx --json\n  netsight sockets --listening              listeners with accept-queue fill\n  netsight sockets --summary                states, TIME-WAIT by peer, CLOSE-WAIT by process"
    )]
    Sockets(SocketsArgs),

    /// sar-style interval reports: DEV EDEV IP EIP TCP ETCP UDP SOCK SOFT QDISC CONNTRACK ALL.
    #[command(
        after_help = "Keywords follow `sar -n` (same columns, same meanings) plus QDISC and CONNTRACK.\n\nExamples:\n  netsight stat                   DEV, one 1-second interval\n  netsight stat DEV EDEV 1 10     ten 1-second intervals\n  netsight stat TCP ETCP 5        every 5 seconds until Ctrl-C\n  netsight stat ALL 1 3 --json    one JSON object per interval\n  netsight stat ALL --from host.nsb"
    )]
    Stat(StatArgs),
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Counter, softnet_stat column or sysctl.
    pub name: String,
    /// As JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Seconds between the two snapshots.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub interval: f64,
    /// The report as JSON: {"findings": [...], "workload": {...}, "skipped": [...]}.
    #[arg(long)]
    pub json: bool,
    /// Diagnose a bundle (its first and last snapshots) instead of this host.
    #[arg(long, value_name = "BUNDLE")]
    pub from: Option<PathBuf>,
    /// List the rules with their thresholds instead of diagnosing.
    #[arg(long)]
    pub list_rules: bool,
    /// Do not dump sockets (the sockets.* rules and top-socket lists are skipped).
    #[arg(long)]
    pub no_sockets: bool,
    /// Also trace drops and retransmissions (eBPF) for SECONDS, used as the interval,
    /// and attach the top drop reasons and retransmitting flows to matching findings.
    #[arg(long, value_name = "SECONDS", conflicts_with = "from")]
    pub deep: Option<f64>,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Print the snapshot as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write a bundle (gzip tar of every raw input) to FILE instead of printing.
    #[arg(short = 'o', long, value_name = "FILE", conflicts_with = "from")]
    pub output: Option<PathBuf>,
    /// Seconds between snapshots when taking more than one (with -o).
    #[arg(long, value_name = "SECONDS", requires = "output")]
    pub interval: Option<f64>,
    /// Number of snapshots to store (default 2 with --interval, else 1).
    #[arg(long, value_name = "N", requires = "output")]
    pub count: Option<usize>,
    /// Read snapshots from a bundle instead of the running kernel.
    #[arg(long, value_name = "BUNDLE")]
    pub from: Option<PathBuf>,
    /// Include every TCP/UDP socket (sock_diag) and its owner.
    #[arg(long)]
    pub sockets: bool,
}

#[derive(Debug, Args)]
pub struct StatArgs {
    /// Keywords, then optional INTERVAL (seconds) and COUNT, as with sar.
    #[arg(value_name = "KEYWORDS|INTERVAL|COUNT")]
    pub args: Vec<String>,
    /// One JSON object per interval, one per line.
    #[arg(long)]
    pub json: bool,
    /// SOFT: one row per CPU as well as "all" (sar -P ALL).
    #[arg(long)]
    pub per_cpu: bool,
    /// Report the intervals between consecutive snapshots of a bundle.
    #[arg(long, value_name = "BUNDLE")]
    pub from: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SocketsArgs {
    /// Only these states (ss names: estab, syn-sent, syn-recv, fin-wait-1, fin-wait-2,
    /// time-wait, unconn, close-wait, last-ack, listen, closing); repeat or comma-separate.
    #[arg(long, value_delimiter = ',')]
    pub state: Vec<String>,
    /// Only sockets whose local or remote port is PORT.
    #[arg(long)]
    pub port: Option<u16>,
    /// Only sockets whose peer address is in CIDR (10.0.0.0/8, ::1/128, or one address).
    #[arg(long, value_name = "CIDR")]
    pub peer: Option<String>,
    /// Only sockets owned by this process name (comm) or PID.
    #[arg(long, value_name = "NAME|PID")]
    pub process: Option<String>,
    /// Only listening sockets.
    #[arg(long)]
    pub listening: bool,
    /// Only TCP.
    #[arg(long, conflicts_with = "udp")]
    pub tcp: bool,
    /// Only UDP.
    #[arg(long)]
    pub udp: bool,
    /// Sort, largest first.
    #[arg(long, value_enum)]
    pub sort: Option<SocketSort>,
    /// Skip finding each socket's process (one readlink per open fd of every
    /// process; the dominant cost with tens of thousands of sockets).
    #[arg(long)]
    pub no_process: bool,
    /// Print at most N sockets.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Counts by state, TIME-WAIT by peer, CLOSE-WAIT by process, listener queues, memory.
    #[arg(long)]
    pub summary: bool,
    /// A JSON list of sockets (or the summary object with --summary).
    #[arg(long)]
    pub json: bool,
    /// Read the sockets from a bundle (taken with `snapshot -o FILE --sockets`).
    #[arg(long, value_name = "BUNDLE")]
    pub from: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SocketSort {
    /// Smoothed round-trip time.
    Rtt,
    /// Total retransmitted segments.
    Retrans,
    /// Bytes acked + received.
    Bytes,
    /// Recv-Q + Send-Q.
    Queue,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// The scenarios, with the doctor rule each must trigger.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Build a scenario (client - router - server namespaces), drive it, run doctor inside it.
    #[command(
        after_help = "Needs root (network namespaces), iproute2, tc and iptables.\n\nExamples:\n  netsight lab run listen-overflow\n  netsight lab run all --json\n  netsight lab run random-loss --keep    (then inspect: ip netns exec nsl-... ss -ti)"
    )]
    Run {
        /// Scenario name, or "all".
        name: String,
        #[arg(long)]
        json: bool,
        /// Leave the namespaces in place for inspection (`netsight lab down` removes them).
        #[arg(long)]
        keep: bool,
    },
    /// Remove every lab namespace left behind.
    Down,
    /// Traffic agent run inside a namespace by the lab itself.
    #[command(hide = true)]
    Agent {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Every TCP connection when it ends: pid/comm, endpoints, bytes each way, lifetime (like tcplife).
    #[command(
        after_help = "Examples:\n  sudo netsight trace life --duration 30\n  sudo netsight trace life --json | jq -c 'select(.duration_ms > 1000)'"
    )]
    Life {
        #[command(flatten)]
        common: TraceOptions,
    },
    /// Outgoing connections with their handshake latency (SYN sent to established) or failure.
    #[command(
        after_help = "Examples:\n  sudo netsight trace connect --duration 10\n  sudo netsight trace connect --port 443 --json"
    )]
    Connect {
        #[command(flatten)]
        common: TraceOptions,
    },
    /// Accepted connections with their handshake latency (SYN received to established).
    #[command(after_help = "Examples:\n  sudo netsight trace accept --port 8080")]
    Accept {
        #[command(flatten)]
        common: TraceOptions,
    },
    /// Smoothed-RTT histogram per peer, aggregated in the kernel from tcp:tcp_probe.
    #[command(
        after_help = "Examples:\n  sudo netsight trace rtt --duration 10\n  sudo netsight trace rtt --addr 10.0.0.5 --json"
    )]
    Rtt {
        #[command(flatten)]
        common: TraceOptions,
    },
    /// Accept-queue (SYN backlog) fill per listener, sampled every 100 ms through sock_diag.
    #[command(
        after_help = "Examples:\n  sudo netsight trace synbl --duration 10\n  netsight trace synbl --port 8080 --json"
    )]
    Synbl {
        #[command(flatten)]
        common: TraceOptions,
    },
    /// Every TCP state change with the time spent in the previous state (like tcpstates).
    #[command(after_help = "Examples:\n  sudo netsight trace states --duration 10")]
    States {
        #[command(flatten)]
        common: TraceOptions,
    },
    /// TCP retransmissions: connection, state, kind (rto/fast/other), cwnd and srtt at the time.
    #[command(
        after_help = "Examples:\n  sudo netsight trace retrans --duration 10\n  sudo netsight trace retrans --json | jq -c 'select(.kind == \"rto\")'"
    )]
    Retrans {
        #[command(flatten)]
        common: TraceOptions,
    },
    /// Packets the kernel drops, with its drop reason (skb:kfree_skb), protocol and dropping function.
    #[command(
        after_help = "Examples:\n  sudo netsight trace drops --duration 10\n  sudo netsight trace drops --duration 5 --json | jq -r .reason | sort | uniq -c\n  sudo netsight trace drops --quiet     (only the summary)"
    )]
    Drops {
        #[command(flatten)]
        common: TraceOptions,
    },
}

#[derive(Debug, Args)]
pub struct TraceOptions {
    /// Seconds to trace.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub duration: f64,
    /// One JSON object per event, then {"summary": ...}.
    #[arg(long)]
    pub json: bool,
    /// Print only the summary.
    #[arg(long)]
    pub quiet: bool,
    /// Only connections with this local or remote port (not for drops).
    #[arg(long)]
    pub port: Option<u16>,
    /// Only events of this process id (not for drops).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Only connections with this local or remote address (not for drops).
    #[arg(long, value_name = "ADDRESS")]
    pub addr: Option<std::net::IpAddr>,
}
