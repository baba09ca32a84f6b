//! The command line, kept in one module: clap types only, no logic.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "netsight",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("NETSIGHT_COMMIT"), ", built ", env!("NETSIGHT_BUILD_DATE"), ")"),
    about = "See, explain and fix Linux network performance",
    long_about = "netsight reads what the kernel counts (procfs, sysctl, sysfs, rtnetlink, ethtool, \
                  sock_diag, tracepoints, AF_PACKET), diagnoses it with the USE method (doctor), explains \
                  every counter (explain), reports it sar-style (stat), lists sockets (sockets), traces \
                  with eBPF (trace), captures and analyses packets (capture, analyze), tunes with rollback \
                  (tune), reproduces faults (lab), and saves raw inputs to bundles for offline diagnosis.",
    after_help = "Examples:\n  sudo netsight doctor                  diagnose this host (5 s interval)\n  netsight explain ListenOverflows      what a counter means and what to do\n  netsight stat ALL 1 5                 sar-style: every keyword, five 1 s intervals\n  netsight sockets --summary            states, TIME-WAIT by peer, accept queues\n  sudo netsight trace drops --duration 10s\n  sudo netsight capture -i eth0 -w out.pcap tcp port 443\n  netsight analyze out.pcap             flows, TCP expert info, diagnoses\n  sudo netsight tune audit              settings vs workload and link\n  sudo netsight lab run listen-overflow a fault in namespaces, diagnosed\n  netsight snapshot -o host.nsb --interval 5s && netsight doctor --from host.nsb\n\nExit status (every verb): 0 success (doctor: nothing above info), 1 doctor found a warning,\n2 doctor found a critical problem, 3 could not run, 4 damaged input (what was readable was\nprocessed), 64 usage error, 130 interrupted (lab)."
)]
pub struct Cli {
    /// Colour in text reports: auto (a terminal, and NO_COLOR unset), always or never.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// Shells `netsight completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Diagnose: two snapshots an interval apart, every USE rule, ranked findings with fixes.
    #[command(
        after_help = "Exit status: 0 no problem (or info only), 1 warning, 2 critical, 3 could not run, 64 usage error.\n\nExamples:\n  netsight doctor                      5-second interval, text report\n  netsight doctor --interval 10 --json\n  netsight snapshot -o host.nsb --interval 5 --sockets && netsight doctor --from host.nsb\n  netsight doctor --list-rules\n  sudo netsight doctor --netns all       the host, then every namespace (containers labelled)\n  sudo netsight doctor --netns blue      one namespace, by ip netns name or by PID"
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

    /// Tuning: audit settings against the workload and link, apply a plan with rollback, export it.
    #[command(subcommand)]
    Tune(TuneCommand),

    /// Offline pcap/pcapng analysis: flows, Wireshark-style TCP expert info, diagnoses.
    #[command(
        after_help = "Expert counts use Wireshark's tcp.analysis definitions and agree with `tshark -Y tcp.analysis.<flag>`\n(dup_ack = tcp.analysis.duplicate_ack; retransmission includes fast and spurious ones, as in tshark).\n\nExamples:\n  netsight analyze trace.pcap                     flows, expert counts, diagnoses\n  netsight analyze trace.pcapng --json | jq .expert\n  netsight analyze trace.pcap --flow 10.0.0.2:443 only flows with that endpoint\n  netsight analyze trace.pcap --flow 3            only tcp.stream / udp.stream 3\n  netsight analyze trace.pcap --all-flows         every flow, not the 20 busiest\n  tcpdump -w - -i eth0 | netsight analyze -       read the capture from stdin"
    )]
    Analyze(AnalyzeArgs),

    /// Capture packets to pcap/pcapng over an AF_PACKET ring (needs CAP_NET_RAW).
    #[command(
        after_help = "FILTER uses tcpdump's syntax; it is compiled by the system's libpcap (libpcap0.8, installed with tcpdump)\nand attached to the socket as classic BPF, so the kernel drops what does not match.\n\nExamples:\n  netsight capture -i eth0 -w out.pcap tcp port 443\n  netsight capture -i lo -w out.pcapng --pcapng --duration 10\n  netsight capture -i any -w syn.pcap --count 1000 'tcp[tcpflags] & tcp-syn != 0'\n  netsight capture -i eth0 -w hdrs.pcap --snaplen 128 --duration 60 --json"
    )]
    Capture(CaptureArgs),

    /// sar-style interval reports: DEV EDEV IP EIP ICMP EICMP TCP ETCP UDP SOCK IP6 EIP6 ICMP6 EICMP6 UDP6 SOCK6 SOFT QDISC CONNTRACK ALL.
    #[command(
        after_help = "Keywords follow `sar -n` (same columns, same meanings) plus QDISC and CONNTRACK; ALL is every one.\nINTERVAL takes units (2, 2s, 500ms).\n\nExamples:\n  netsight stat                   DEV, one 1-second interval\n  netsight stat DEV EDEV 1 10     ten 1-second intervals\n  netsight stat TCP ETCP 5        every 5 seconds until Ctrl-C\n  netsight stat ALL 1 3 --json    one JSON object per interval\n  netsight stat ALL --from host.nsb\n  netsight stat DEV EDEV 1 --iface eth0,eth1\n  netsight stat IP6 ICMP6 UDP6 500ms 10"
    )]
    Stat(StatArgs),

    /// Serve the counters and doctor's findings as OpenMetrics for Prometheus (foreground).
    #[command(
        after_help = "Endpoints: /metrics (OpenMetrics text), /findings (doctor's report as JSON), /-/healthy.\nA sampler takes a snapshot every --interval and runs doctor's rules over --window; a scrape reads\nthe last sample (no kernel reads), so scrapes are cheap and agree.\n\nExamples:\n  sudo netsight serve                               127.0.0.1:9977, a sample every 10 s\n  sudo netsight serve --listen 127.0.0.1:9100 --interval 15s\n  sudo netsight serve --listen 0.0.0.0:9977 --allow-remote   every interface (asked for explicitly)\n  netsight serve --print-alert-rules > /etc/prometheus/rules/netsight.yml\n  netsight serve --print-dashboard > netsight-dashboard.json   import in Grafana\n  sudo netsight serve --exclude sockets,qdisc --max-interfaces 16\n  sudo netsight serve --web-config-file /etc/netsight/web.yml   TLS, basic auth\n  sudo netsight serve --source-budget 500ms                  a slower source is served stale"
    )]
    Serve(ServeArgs),

    /// Record counters and doctor's findings into an SQLite history (foreground).
    #[command(
        after_help = "Every --interval: a snapshot (every counter stat reports, and more) and the findings\ndoctor's rules give over that interval, in one transaction. Only values that changed are\nstored. Older samples are thinned into roll-ups, the oldest deleted past --retention or\n--max-size. Ctrl-C, SIGTERM or SIGHUP stop it cleanly; kill -9 loses at most one sample.\nTables: docs/history.md. A systemd unit: contrib/netsight-record.service.\n\nExamples:\n  sudo netsight record --db /var/lib/netsight/history.db\n  sudo netsight record --db /var/lib/netsight/history.db --interval 1s --retention 2d --max-size 200M\n  sudo netsight record --db /var/lib/netsight/history.db --netns all   containers labelled\n  sqlite3 /var/lib/netsight/history.db 'SELECT rule_id, count(*) FROM findings GROUP BY 1'"
    )]
    Record(RecordArgs),

    /// Report on a recorded history: sar-style tables, incident windows, movers, charts.
    #[command(
        after_help = "Times: RFC 3339 (2026-12-02T03:00:00Z), local 'YYYY-MM-DD HH:MM[:SS]' or 'HH:MM[:SS]' (today),\n-DURATION (before now: -1h), or @UNIX_SECONDS. Keywords are stat's (DEV, TCP, ETCP, ALL ...).\n\nExamples:\n  netsight report --db /var/lib/netsight/history.db                 everything recorded\n  netsight report --db history.db --since 02:50 --until 03:10 TCP ETCP\n  netsight report --db history.db --since -1h --baseline -25h..-24h    what moved against yesterday\n  netsight report --db history.db --json | jq '.incidents'\n  netsight report --db history.db --html report.html                 one self-contained file\n  netsight report --db history.db --csv DEV > dev.csv"
    )]
    Report(ReportArgs),

    /// Measure: TCP throughput, request/response latency, connection rate, packet rate,
    /// latency under load, against `bench server` (or in namespaces it builds: --topology).
    Bench(BenchArgs),

    /// XDP filter for the emergency: prefix/protocol/port rules, a SYN limit, per-rule counters, dry run, TTL.
    #[command(subcommand)]
    Xdp(XdpCommand),

    /// A live dashboard: interface rates, TCP/UDP health, top sockets, doctor's findings as they happen.
    #[command(
        after_help = "Panes: interfaces (rx/tx bit/s and packet/s with charts, drops, errors), doctor's findings over\nthe sliding --window (worst first; Enter explains one), TCP sockets or processes by throughput\n(tcp_info byte counters), TCP/UDP health. Keys: ? shows them all; q quits.\nThe terminal is restored on q, Ctrl-C, SIGTERM, SIGHUP and on a crash. NO_COLOR is honoured.\n\nExamples:\n  sudo netsight top\n  sudo netsight top --interval 2s --window 30s\n  sudo netsight top --netns all             every namespace sampled; n picks which one is shown\n  sudo netsight top --netns web1            one `ip netns` name (or a PID's namespace)\n  sudo netsight top --json --count 5        no terminal: one JSON object per refresh\n  sudo netsight top --freeze-dir /var/tmp   where f writes its snapshot bundles"
    )]
    Top(TopArgs),

    /// Print a shell completion script (bash, zsh or fish) to stdout.
    #[command(
        after_help = "Examples:\n  netsight completions bash > /etc/bash_completion.d/netsight\n  netsight completions zsh > \"${fpath[1]}/_netsight\"\n  netsight completions fish > ~/.config/fish/completions/netsight.fish"
    )]
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },

    /// Print the man page (roff) to stdout.
    #[command(
        after_help = "Examples:\n  netsight man > /usr/local/share/man/man1/netsight.1\n  netsight man | man -l -"
    )]
    Man,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on: loopback unless --allow-remote.
    #[arg(long, default_value = "127.0.0.1:9977", value_name = "ADDR:PORT")]
    pub listen: std::net::SocketAddr,
    /// Allow a --listen address other than loopback (the metrics name processes and ports).
    #[arg(long)]
    pub allow_remote: bool,
    /// How often the sampler takes a snapshot.
    #[arg(long, default_value = "10s", value_parser = duration, value_name = "DURATION")]
    pub interval: Duration,
    /// How much history doctor's rules run over (at least one interval).
    #[arg(long, default_value = "30s", value_parser = duration, value_name = "DURATION")]
    pub window: Duration,
    /// At most this many interfaces get series (physical NICs first).
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_interfaces: usize,
    /// At most this many listeners get series (fullest accept queues first).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_listeners: usize,
    /// At most this many findings (symptoms included) get series.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub max_findings: usize,
    /// Groups to leave out: mib, link, qdisc, softnet, conntrack, sockstat, sockets, findings.
    #[arg(long, value_delimiter = ',', value_name = "GROUP,...")]
    pub exclude: Vec<String>,
    /// Connections served at once; more wait in the accept queue.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub max_connections: u16,
    /// Each source's time budget per sample (proc, sysctls, sysfs, netlink,
    /// iptables_legacy, driver_stats, sockets); one over it keeps running and its
    /// last value is served, marked by netsight_source_stale. Default 3s or
    /// --interval if shorter; at most --interval.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub source_budget: Option<Duration>,
    /// TLS and basic auth from a file in Prometheus' web-config format
    /// (tls_server_config, basic_auth_users), as node_exporter's --web.config.file.
    #[arg(long, value_name = "FILE")]
    pub web_config_file: Option<std::path::PathBuf>,
    /// As root, after binding: the user serve samples as, keeping only the
    /// capabilities its sources use ("root" keeps root, with those capabilities).
    #[arg(long, default_value = "nobody", value_name = "USER")]
    pub user: String,
    /// Print a Prometheus rule file generated from doctor's rules, and exit.
    #[arg(long)]
    pub print_alert_rules: bool,
    /// Print a Grafana dashboard (JSON) over the exported series, and exit.
    #[arg(long, conflicts_with = "print_alert_rules")]
    pub print_dashboard: bool,
    /// The alerts' `for:` in the printed rule file.
    #[arg(long, default_value = "1m", value_name = "DURATION", value_parser = prometheus_duration)]
    pub alert_for: String,
    /// The rule groups' evaluation interval in the printed rule file.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = prometheus_duration)]
    pub alert_interval: String,
}

/// A Prometheus duration as a rule file takes it: "30s", "1m", "2h".
fn prometheus_duration(text: &str) -> Result<String, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    if number.is_empty() || number.len() > 6 || !matches!(unit, "ms" | "s" | "m" | "h" | "d") {
        return Err(format!(
            "{text:?}: a Prometheus duration such as 30s, 1m or 2h"
        ));
    }
    Ok(text.to_string())
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// pcap or pcapng file, or - for standard input.
    pub file: std::path::PathBuf,
    /// Only flows matching: an address, ADDR:PORT, :PORT, or a stream number.
    #[arg(long, value_name = "FLOW", value_parser = netsight_packet::flows::FlowFilter::parse)]
    pub flow: Option<netsight_packet::flows::FlowFilter>,
    /// Flows shown (text and JSON), busiest first; `flows_total` says how many there are.
    #[arg(
        long,
        default_value_t = 20,
        value_name = "N",
        conflicts_with = "all_flows"
    )]
    pub top: usize,
    /// Every flow, in text and JSON (a SYN flood capture can hold millions).
    #[arg(long)]
    pub all_flows: bool,
    /// As JSON: {"file", "capture", "packets", "flows": [...], "expert": {...}, "diagnoses": [...]}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Interface to capture on ("any" for all).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: String,
    /// Output file, or - for standard output (then the counts go to stderr only).
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: std::path::PathBuf,
    /// Filter expression in tcpdump syntax (several words are joined, as tcpdump does).
    #[arg(value_name = "FILTER", trailing_var_arg = true)]
    pub filter: Vec<String>,
    /// Bytes kept per packet (64 to 262144).
    #[arg(short = 's', long, default_value_t = 262144, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(64..=262144))]
    pub snaplen: u32,
    /// Stop after this many packets (at least 1).
    #[arg(short = 'c', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Stop after this long (10s, 2m; a bare number is seconds).
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// Write pcapng instead of pcap.
    #[arg(long)]
    pub pcapng: bool,
    /// Write each packet to the file as it arrives (tcpdump -U); by default packets
    /// reach the file within a second.
    #[arg(short = 'U', long)]
    pub packet_buffered: bool,
    /// After opening the socket, switch to this user (default: nobody when started as root).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Print the final counts as JSON.
    #[arg(long)]
    pub json: bool,
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
    /// Time between the two snapshots (5s, 500ms; a bare number is seconds).
    #[arg(long, default_value = "5s", value_parser = duration, value_name = "DURATION", conflicts_with_all = ["from", "db"])]
    pub interval: Duration,
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
    #[arg(long, conflicts_with = "from")]
    pub no_sockets: bool,
    /// Also trace drops and retransmissions (eBPF) for DURATION, used as the interval,
    /// and attach the top drop reasons and retransmitting flows to matching findings.
    #[arg(long, value_parser = duration, value_name = "DURATION", conflicts_with_all = ["from", "interval"])]
    pub deep: Option<Duration>,
    /// Diagnose other network namespaces: `all` (the host once, then every namespace,
    /// named or held only by processes), or one by `ip netns` name or by PID.
    #[arg(long, value_name = "all|NAME|PID", conflicts_with_all = ["from", "deep", "list_rules"])]
    pub netns: Option<String>,
    /// Do not count the kernel's drop reasons during the interval (counted by default
    /// when privileged and the kernel has BTF: one in-kernel hash update per drop).
    #[arg(long, conflicts_with_all = ["from", "deep"])]
    pub no_trace: bool,
    /// Diagnose the past from a history `netsight record` wrote (with --at; --netns
    /// picks a recorded namespace).
    #[arg(long, value_name = "PATH", requires = "at", conflicts_with_all = ["from", "deep", "list_rules"])]
    pub db: Option<PathBuf>,
    /// The moment to diagnose (same forms as report's --since: 03:00, -2h, RFC 3339).
    #[arg(long, value_parser = point_in_time, value_name = "TIME", requires = "db", allow_hyphen_values = true)]
    pub at: Option<i64>,
    /// How far back from --at the rules look.
    #[arg(long, default_value = "5m", value_parser = duration, value_name = "DURATION", requires = "db")]
    pub window: Duration,
}

#[derive(Debug, Args)]
#[command(
    subcommand_required = true,
    after_help = "With --topology, netsight builds a client and a server namespace joined that way\n(the lab's guards clean them up), starts a server there and runs the mode between them;\n`all` runs it over each kind and prints a comparison. Needs root.\n\nExamples:\n  netsight bench server\n  netsight bench stream --to 127.0.0.1:9978\n  netsight bench --topology veth rr --size 64\n  netsight bench --topology all stream -P 2 --duration 5s\n  netsight bench --topology bridge --server-flags '--rcvbuf 8192' stream"
)]
pub struct BenchArgs {
    /// Run the mode between two namespaces joined by veth, bridge, macvlan or ipvlan
    /// (all: each, and a comparison table).
    #[arg(long, value_name = "veth|bridge|macvlan|ipvlan|all", value_parser = ["veth", "bridge", "macvlan", "ipvlan", "all"])]
    pub topology: Option<String>,
    /// With --topology: flags for the server it starts (socket options, --max-sessions).
    #[arg(
        long,
        value_name = "FLAGS",
        allow_hyphen_values = true,
        requires = "topology"
    )]
    pub server_flags: Option<String>,
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Serve bench clients (many at once, each session bounded in time) until Ctrl-C.
    #[command(
        after_help = "Binds to loopback unless --listen names another address.\n\nExamples:\n  netsight bench server                          127.0.0.1:9978\n  netsight bench server --listen 0.0.0.0:9978    every interface (asked for explicitly)\n  netsight bench server --rcvbuf 8192            a tiny receive buffer on every session"
    )]
    Server {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9978", value_name = "ADDR:PORT")]
        listen: std::net::SocketAddr,
        /// Sessions served at once (a thread each); more are told the server is busy.
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        max_sessions: u32,
        #[command(flatten)]
        socket: SocketFlags,
    },
    /// TCP throughput: one or more streams for a duration (the receiver counts).
    #[command(
        after_help = "Examples:\n  netsight bench stream --to 127.0.0.1:9978\n  netsight bench stream --to 10.0.0.2:9978 -P 4 --duration 20s --json\n  netsight bench stream --to 10.0.0.2:9978 --reverse           the server sends\n  netsight bench stream --to 10.0.0.2:9978 --bidir -P 2        two streams each way at once"
    )]
    Stream {
        #[command(flatten)]
        target: BenchTarget,
        /// Parallel streams.
        #[arg(short = 'P', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=128))]
        parallel: u32,
        /// The server sends, the client receives.
        #[arg(long, conflicts_with = "bidir")]
        reverse: bool,
        /// Both ways at once (-P streams each way).
        #[arg(long)]
        bidir: bool,
    },
    /// Request/response latency on one connection (HDR histogram: p50 .. p99.9, max).
    #[command(
        after_help = "Examples:\n  netsight bench rr --to 127.0.0.1:9978 --size 64\n  netsight bench rr --to 10.0.0.2:9978 --rate 1000 --json    fixed rate: no coordinated omission"
    )]
    Rr {
        #[command(flatten)]
        target: BenchTarget,
        /// Request and response size in bytes.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
        size: u32,
        /// Requests per second, latency counted from each intended send time.
        #[arg(long, value_name = "PER_S", value_parser = positive_rate)]
        rate: Option<f64>,
        /// Send each request in this many writes (2 shows Nagle's write-write-read stall
        /// without --nodelay).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
        writes: u32,
    },
    /// UDP datagrams: packets per second, loss and reordering (sendmmsg batches).
    #[command(
        after_help = "Examples:\n  netsight bench udp --to 127.0.0.1:9978 --size 64           as fast as possible\n  netsight bench udp --to 10.0.0.2:9978 --size 1200 --rate 50000 --json"
    )]
    Udp {
        #[command(flatten)]
        target: BenchTarget,
        /// Datagram payload in bytes (8 to 65507: each starts with its sequence number).
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(8..=65_507))]
        size: u32,
        /// Datagrams per second (default: as fast as the sender goes).
        #[arg(long, value_name = "PER_S", value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
        rate: Option<u64>,
    },
    /// A/B: the same mode with two sets of flags, interleaved trials after a warm-up;
    /// both results, the difference with a 95 % confidence interval, and whether it is significant.
    #[command(
        after_help = "The mode's headline number is compared: stream receiver_bits_per_s, rr p50_us (p99_us too),\ncrr connections_per_s, udp packets_per_s. FLAGS are split on spaces.\n\nExamples:\n  netsight bench ab --a '--nodelay' --b '' rr --to 127.0.0.1:9978 --size 32 --writes 2\n  netsight bench ab --a '--cc cubic' --b '--cc bbr' --trials 7 stream --to 10.0.0.2:9978 --duration 5s"
    )]
    Ab {
        /// Flags for A, added to the mode's own.
        #[arg(long, allow_hyphen_values = true, value_name = "FLAGS")]
        a: String,
        /// Flags for B.
        #[arg(long, allow_hyphen_values = true, value_name = "FLAGS")]
        b: String,
        /// Trials of each (A and B alternate).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(2..=100))]
        trials: u32,
        /// Warm-up runs of each before the trials (not counted).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=10))]
        warmup: u32,
        /// The result as one JSON object.
        #[arg(long)]
        json: bool,
        /// The mode and its flags: stream|rr|crr|udp --to ... (add --duration: default 10s per trial).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            required = true,
            value_name = "MODE ARGS"
        )]
        mode: Vec<String>,
    },
    /// Latency under load (RRUL): a 100/s probe idle, then beside streams up, down and
    /// both ways; the latency each load added (bloat) and a grade.
    #[command(
        after_help = "Each phase lasts --duration (default 10s: 40 s in all). Grades, from the worst phase's\nmedian added latency: A+ < 5 ms, A < 30, B < 60, C < 200, D < 400, else F.\n\nExamples:\n  netsight bench rrul --to 10.0.0.2:9978\n  netsight bench rrul --to 10.0.0.2:9978 -P 8 --duration 5s --json"
    )]
    Rrul {
        #[command(flatten)]
        target: BenchTarget,
        /// Load streams per direction.
        #[arg(short = 'P', long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
        parallel: u32,
    },
    /// Connect/request/response/close rate, with connect and transaction latency.
    #[command(
        after_help = "Examples:\n  netsight bench crr --to 127.0.0.1:9978\n  netsight bench crr --to 10.0.0.2:9978 --size 1 --duration 5s --json\n  netsight bench crr --to 127.0.0.1:9978 -P 8                 eight connection loops at once"
    )]
    Crr {
        #[command(flatten)]
        target: BenchTarget,
        /// Connections in flight at once (each replaced by a new one when done).
        #[arg(short = 'P', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=128))]
        parallel: u32,
        /// Request and response size in bytes.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
        size: u32,
    },
}

#[derive(Debug, Args)]
pub struct BenchTarget {
    /// The bench server.
    #[arg(long, default_value = "127.0.0.1:9978", value_name = "ADDR:PORT")]
    pub to: std::net::SocketAddr,
    /// How long to measure (at most 10m).
    #[arg(long, default_value = "10s", value_parser = bench_duration, value_name = "DURATION")]
    pub duration: Duration,
    /// The result as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// A JSON line every second while it runs, then the result as one more line.
    #[arg(long, conflicts_with = "json")]
    pub json_stream: bool,
    #[command(flatten)]
    pub socket: SocketFlags,
}

/// Socket options, the same on client and server.
#[derive(Debug, Args, Clone)]
pub struct SocketFlags {
    /// TCP_NODELAY: no Nagle (small writes go out at once).
    #[arg(long)]
    pub nodelay: bool,
    /// TCP_CORK: only full segments until uncorked (200 ms at most).
    #[arg(long)]
    pub cork: bool,
    /// TCP_QUICKACK: ACK at once, not delayed.
    #[arg(long)]
    pub quickack: bool,
    /// SO_REUSEPORT (several servers on one port).
    #[arg(long)]
    pub reuseport: bool,
    /// SO_BUSY_POLL: spin this long on the device queue before a read sleeps
    /// (above net.core.busy_read it needs CAP_NET_ADMIN).
    #[arg(long, value_name = "MICROSECONDS", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub busy_poll: Option<u32>,
    /// TCP Fast Open: the first data in the SYN (net.ipv4.tcp_fastopen: bit 1 client,
    /// bit 2 server).
    #[arg(long)]
    pub fastopen: bool,
    /// SO_RCVBUF in bytes (the kernel doubles it).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1..=1_073_741_824))]
    pub rcvbuf: Option<u32>,
    /// SO_SNDBUF in bytes (the kernel doubles it).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1..=1_073_741_824))]
    pub sndbuf: Option<u32>,
    /// TCP congestion control (see net.ipv4.tcp_available_congestion_control).
    #[arg(long, value_name = "NAME")]
    pub cc: Option<String>,
    /// IP TOS byte (0..255).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=255))]
    pub tos: Option<u32>,
    /// SO_KEEPALIVE with this idle time.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub keepalive: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Time between refreshes (1s, 500ms, 5s; 100ms to 1h).
    #[arg(long, default_value = "1s", value_parser = duration, value_name = "DURATION")]
    pub interval: Duration,
    /// doctor's rules run over this much history, sliding (at least --interval, at most 1h).
    #[arg(long, default_value = "10s", value_parser = duration, value_name = "DURATION")]
    pub window: Duration,
    /// The network namespace shown first, by `ip netns` name or PID; `all` samples every
    /// one (n switches between them). Without it the host is sampled, others when picked.
    #[arg(long, value_name = "NAME|PID|all")]
    pub netns: Option<String>,
    /// No socket table: no sockets pane and no sockets.* rules (cheaper with very many sockets).
    #[arg(long)]
    pub no_sockets: bool,
    /// Where f writes snapshot bundles (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub freeze_dir: Option<PathBuf>,
    /// No terminal: one JSON object per refresh on stdout (what the panes would show).
    #[arg(long)]
    pub json: bool,
    /// Stop after N refreshes.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The history file, created if absent. It and its directory must be writable by
    /// root (or this user) only.
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Time between samples (10s, 1s, 500ms).
    #[arg(long, default_value = "10s", value_parser = duration, value_name = "DURATION")]
    pub interval: Duration,
    /// Delete samples older than this (at most 30d).
    #[arg(long, default_value = "7d", value_parser = duration, value_name = "DURATION")]
    pub retention: Duration,
    /// The most the file may hold; the oldest samples go first (1G, 200M, 64MiB).
    #[arg(long, default_value = "1G", value_parser = byte_size, value_name = "SIZE")]
    pub max_size: u64,
    /// Samples older than this are thinned to one per --rollup-step.
    #[arg(long, default_value = "1d", value_parser = duration, value_name = "DURATION")]
    pub rollup_after: Duration,
    /// The resolution of roll-ups.
    #[arg(long, default_value = "5m", value_parser = duration, value_name = "DURATION")]
    pub rollup_step: Duration,
    /// Also record other network namespaces: `all` (every one, re-listed each sample,
    /// labelled by name or net:[inode]), or one by `ip netns` name or PID.
    #[arg(long, value_name = "all|NAME|PID")]
    pub netns: Option<String>,
    /// Stop after N samples (default: until Ctrl-C, SIGTERM or SIGHUP).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// One JSON line per sample on stdout (sample id, namespace, findings, bytes used).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The history file `netsight record` wrote.
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Start of the window (default: the first sample).
    #[arg(long, value_parser = point_in_time, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<i64>,
    /// End of the window (default: the last sample).
    #[arg(long, value_parser = point_in_time, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<i64>,
    /// stat's keywords for the tables (default DEV TCP ETCP UDP SOCK).
    #[arg(value_name = "KEYWORD")]
    pub keywords: Vec<String>,
    /// A window to compare against, START..END: the largest movers are listed.
    #[arg(long, value_parser = time_window, value_name = "START..END", allow_hyphen_values = true)]
    pub baseline: Option<(i64, i64)>,
    /// One row per STEP (default: every sample, or wider so a window has at most 300 rows).
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub step: Option<Duration>,
    /// The namespace whose tables are shown (default host); incidents cover every one.
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// Only these interfaces in DEV, EDEV and QDISC (repeat or comma-separate).
    #[arg(long, value_delimiter = ',', value_name = "IFACE")]
    pub iface: Vec<String>,
    /// The report as one JSON object.
    #[arg(long, conflicts_with_all = ["csv", "html"])]
    pub json: bool,
    /// The tables as CSV (timestamp_unix_ms,netns,keyword,item,column,value).
    #[arg(long, conflicts_with = "html")]
    pub csv: bool,
    /// Write one self-contained HTML file with charts (no external resources).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Print the snapshot as JSON.
    #[arg(long, conflicts_with = "output")]
    pub json: bool,
    /// Write a bundle (gzip tar of every raw input) to FILE instead of printing.
    #[arg(short = 'o', long, value_name = "FILE", conflicts_with = "from")]
    pub output: Option<PathBuf>,
    /// Time between snapshots when taking more than one (with -o): 5s, 500ms, 1m.
    #[arg(long, value_parser = duration, value_name = "DURATION", requires = "output")]
    pub interval: Option<Duration>,
    /// Number of snapshots to store (default 2 with --interval, else 1).
    #[arg(long, value_name = "N", requires = "output", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub count: Option<u32>,
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
    /// Only these interfaces in DEV, EDEV and QDISC (repeat or comma-separate), like sar --iface.
    #[arg(long, value_delimiter = ',', value_name = "IFACE")]
    pub iface: Vec<String>,
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
    /// Only listening sockets (the same as --state listen).
    #[arg(long, conflicts_with = "state")]
    pub listening: bool,
    /// Only TCP.
    #[arg(long, conflicts_with = "udp")]
    pub tcp: bool,
    /// Only UDP.
    #[arg(long)]
    pub udp: bool,
    /// Sort, largest first.
    #[arg(long, value_enum, conflicts_with = "summary")]
    pub sort: Option<SocketSort>,
    /// Skip finding each socket's process (one readlink per open fd of every
    /// process; the dominant cost with tens of thousands of sockets).
    #[arg(long)]
    pub no_process: bool,
    /// Print at most N sockets.
    #[arg(long, value_name = "N", conflicts_with = "summary")]
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
        after_help = "Needs root (network namespaces), iproute2, tc and iptables.\n\nExamples:\n  netsight lab run listen-overflow\n  netsight lab run all --json\n  netsight lab run random-loss --keep    (then inspect: ip netns exec nsl-... ss -ti)\n  netsight lab run small-window --fix    (tune apply in the namespace, then measure again)"
    )]
    Run {
        /// Scenario name, or "all".
        name: String,
        #[arg(long)]
        json: bool,
        /// Leave the namespaces in place for inspection (`netsight lab down` removes them).
        #[arg(long)]
        keep: bool,
        /// Then apply the scenario's `netsight tune` profile in its namespace, run the load
        /// again and report whether the finding is gone and the metric improved.
        #[arg(long)]
        fix: bool,
        /// Also capture each run into DIR/<scenario>.pcap (on the client, or the server for
        /// SYN floods) and check that `netsight analyze` diagnoses it from the packets.
        #[arg(long, value_name = "DIR")]
        capture: Option<std::path::PathBuf>,
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
    /// How long to trace (10s, 2m; a bare number is seconds); without it, until Ctrl-C.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// One JSON object per event, then {"summary": ...}.
    #[arg(long)]
    pub json: bool,
    /// Print only the summary.
    #[arg(long)]
    pub quiet: bool,
    /// Only connections (for drops: packets) with this local or remote port; summaries count only these.
    #[arg(long)]
    pub port: Option<u16>,
    /// Only events of this process id (life, states, connect, accept).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Only connections (packets) with an end in this prefix: 10.0.0.0/8, ::1, 192.0.2.7.
    #[arg(long, value_name = "CIDR", value_parser = netsight_kernel::endpoint::Cidr::parse)]
    pub addr: Option<netsight_kernel::endpoint::Cidr>,
}

/// What the audit is for and the path it sizes buffers for.
#[derive(Debug, Args, Clone)]
pub struct TuneBasis {
    /// balanced (default): fix what counters show, size buffers; latency, throughput, connections.
    #[arg(long, value_parser = parse_profile, value_name = "PROFILE")]
    pub profile: Option<netsight_tune::Profile>,
    /// Link speed the buffers are sized for (10G, 2.5Gbit, 100M); default: the fastest NIC's.
    #[arg(long, value_parser = netsight_kernel::units::parse_bit_rate, value_name = "SPEED")]
    pub link_speed: Option<u64>,
    /// Round-trip time of the longest path that matters (80ms, 200us); default: median of live connections, else 20ms.
    #[arg(long, value_parser = rtt_us, value_name = "RTT")]
    pub rtt: Option<u64>,
    /// How long to watch the counters (drops, overflows, squeezes) the advice rests on.
    #[arg(long, default_value = "2s", value_parser = duration, value_name = "DURATION")]
    pub interval: Duration,
}

/// What plan, apply and export change: the audit's advice plus explicit settings.
#[derive(Debug, Args)]
pub struct ChangeBasis {
    #[command(flatten)]
    pub basis: TuneBasis,
    /// Also set this sysctl (repeatable), e.g. --set net.ipv4.tcp_fin_timeout=30.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

fn parse_profile(text: &str) -> Result<netsight_tune::Profile, String> {
    netsight_tune::Profile::parse(text).ok_or_else(|| {
        format!("unknown profile {text:?}: balanced, latency, throughput or connections")
    })
}

#[derive(Debug, Subcommand)]
pub enum TuneCommand {
    /// Every relevant setting: current value, recommended value and why (sysctls and NICs).
    #[command(
        after_help = "Examples:\n  netsight tune audit\n  netsight tune audit --profile throughput --link-speed 10G --rtt 80ms\n  netsight tune audit --profile connections --json\n  netsight tune audit --from host.bundle    (taken with `netsight snapshot -o host.bundle --interval 5`)"
    )]
    Audit {
        #[command(flatten)]
        basis: TuneBasis,
        /// Audit a bundle's host (its first and last snapshots) instead of this one, offline.
        #[arg(long, value_name = "BUNDLE", conflicts_with = "interval")]
        from: Option<PathBuf>,
        /// Show every item, not only the ones that need attention.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// The sysctl changes `apply` would make, as a diff.
    #[command(
        after_help = "Examples:\n  netsight tune plan --profile latency\n  netsight tune plan --profile throughput --rtt 80ms --json"
    )]
    Plan {
        #[command(flatten)]
        basis: ChangeBasis,
        #[arg(long)]
        json: bool,
    },
    /// Write the plan all-or-nothing (each write read back; any failure restores everything).
    #[command(
        after_help = "Previous values are journaled to the state file before the first write;\n`netsight tune rollback` restores them exactly. Inside a network namespace only\nthat namespace's sysctls are written (host-wide ones are reported as unavailable).\n\nExamples:\n  netsight tune apply --profile throughput --rtt 40ms\n  netsight tune apply --yes --confirm-within 60s    reverts unless `netsight tune confirm` runs in time\n  ip netns exec blue netsight tune apply --yes --set net.core.somaxconn=8192"
    )]
    Apply {
        #[command(flatten)]
        basis: ChangeBasis,
        /// Do not ask.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Revert automatically unless `netsight tune confirm` runs within this time (60s, 2m).
        #[arg(long, value_parser = parse_confirm_window, value_name = "DURATION")]
        confirm_within: Option<std::time::Duration>,
        /// Root-owned directory of the journal (default /run/netsight; the journal is tune-<netns inode>.json).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Keep the values of an `apply --confirm-within`.
    Confirm {
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Restore every journaled value exactly as it was before the first apply.
    Rollback {
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// The plan for persistence: a sysctl.d file, a shell script or a tuned profile.
    #[command(
        after_help = "Exports the plan's changes (with --all, every value the audit vouches for).\nWarns (on stderr) about sysctl.d / sysctl.conf lines that would override these values at boot.\n\nExamples:\n  netsight tune export --format sysctl.d > /etc/sysctl.d/90-netsight.conf\n  netsight tune export --format tuned --profile latency\n  netsight tune export --format shell --profile throughput --link-speed 25G --rtt 10ms"
    )]
    Export {
        #[command(flatten)]
        basis: ChangeBasis,
        /// Every value the audit vouches for, not only the plan's changes.
        #[arg(long)]
        all: bool,
        /// sysctl.d, shell or tuned.
        #[arg(long, default_value = "sysctl.d", value_parser = parse_export_format)]
        format: netsight_tune::export::ExportFormat,
    },
    /// Bandwidth-delay product and the socket buffer one flow needs.
    #[command(
        after_help = "Examples:\n  netsight tune bdp --speed 10G --rtt 80ms\n  netsight tune bdp --speed 100M --rtt 250ms --json"
    )]
    Bdp {
        /// Link speed: 10G, 100Mbit (bits), 125MB (bytes).
        #[arg(long, value_parser = netsight_kernel::units::parse_bit_rate)]
        speed: u64,
        /// Round-trip time with a unit: 80ms, 200us, 1s.
        #[arg(long, value_parser = rtt_us)]
        rtt: u64,
        #[arg(long)]
        json: bool,
    },
    /// Internal: reverts an unconfirmed apply at its deadline.
    #[command(hide = true)]
    Watchdog {
        #[arg(long)]
        state_dir: Option<PathBuf>,
        #[arg(long)]
        token: String,
    },
}

/// Every duration flag: one parser (netsight_kernel::units).
fn duration(text: &str) -> Result<Duration, String> {
    netsight_kernel::units::parse_duration(text)
}

/// A bench duration: at most the server's session limit.
fn bench_duration(text: &str) -> Result<Duration, String> {
    let d = duration(text)?;
    if d > Duration::from_secs(600) {
        return Err(format!("{text:?}: a bench runs at most 10m"));
    }
    Ok(d)
}

/// A positive, finite rate per second, at most 10 million.
fn positive_rate(text: &str) -> Result<f64, String> {
    let r: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of requests per second"))?;
    if !r.is_finite() || r <= 0.0 || r > 1e7 {
        return Err(format!(
            "{text:?}: give a rate above 0 and at most 10000000"
        ));
    }
    Ok(r)
}

/// A moment, as ms since the epoch (see `clock::parse_time`).
fn point_in_time(text: &str) -> Result<i64, String> {
    crate::clock::parse_time(text, chrono::Utc::now().timestamp_millis())
}

/// START..END, each a moment; START must come first.
fn time_window(text: &str) -> Result<(i64, i64), String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| format!("{text:?}: give START..END (-25h..-24h, 02:00..03:00)"))?;
    let (a, b) = (point_in_time(a)?, point_in_time(b)?);
    if a >= b {
        return Err(format!("{text:?}: START must be before END"));
    }
    Ok((a, b))
}

/// A size in bytes: a number with B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T (powers of 1024).
fn byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (64M, 1G, 500MiB)"))?;
    let scale: f64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "K" | "KB" | "KIB" => 1024.0,
        "M" | "MB" | "MIB" => 1024.0 * 1024.0,
        "G" | "GB" | "GIB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "TB" | "TIB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("{text:?}: unknown unit {other:?} (use K, M, G, T)")),
    };
    let bytes = value * scale;
    if !bytes.is_finite() || !(1024.0 * 1024.0..=1e15).contains(&bytes) {
        return Err(format!("{text:?}: give a size between 1M and 900T"));
    }
    Ok(bytes as u64)
}

/// An RTT: a unit is required, up to 600 s; in microseconds.
fn rtt_us(text: &str) -> Result<u64, String> {
    let d = netsight_kernel::units::parse_duration_with_unit(text)?;
    if d > Duration::from_secs(600) {
        return Err(format!("{text:?}: an RTT is at most 600s"));
    }
    Ok((d.as_micros() as u64).max(1))
}

fn parse_confirm_window(text: &str) -> Result<Duration, String> {
    let d = duration(text)?;
    if !(Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&d) {
        return Err(format!("{text:?}: between 1s and 24h"));
    }
    Ok(d)
}

fn parse_export_format(text: &str) -> Result<netsight_tune::export::ExportFormat, String> {
    netsight_tune::export::ExportFormat::parse(text)
        .ok_or_else(|| format!("unknown format {text:?}: sysctl.d, shell or tuned"))
}

#[derive(Debug, Subcommand)]
pub enum XdpCommand {
    /// Attach netsight's XDP filter to an interface (never over a program netsight did not attach).
    #[command(
        after_help = "RULE: drop|pass [src PREFIX] [dst PREFIX] [proto tcp|udp|icmp|icmpv6|sctp|N] [sport N[-M]] [dport N[-M]]\n\
The first matching rule wins; a packet no rule matches passes (after the SYN limit, if set).\n\
The SSH peer of this session (SSH_CONNECTION) and every --protect prefix are never dropped unless --force.\n\
Needs CAP_NET_ADMIN and CAP_BPF (root).\n\n\
Examples:\n  \
sudo netsight xdp attach eth0 --rule 'drop src 203.0.113.0/24 proto udp dport 53'\n  \
sudo netsight xdp attach eth0 --syn-limit '2000/s per /32' --ttl 10m\n  \
sudo netsight xdp attach eth0 --rule 'drop src 2001:db8::/32' --dry-run      count, drop nothing\n  \
sudo netsight xdp attach eth0 --rule 'drop proto udp dport 10000-20000' --mode generic"
    )]
    Attach {
        interface: String,
        /// A rule (repeatable; order is priority).
        #[arg(long = "rule", value_name = "RULE")]
        rules: Vec<String>,
        /// TCP SYNs per second allowed per source prefix: RATE/s [per /N[,/M]] (v6 per /64 by default).
        #[arg(long, value_name = "RATE")]
        syn_limit: Option<String>,
        /// SYNs a source may send at once above the rate (default: a tenth of a second's worth).
        #[arg(long, value_name = "N", requires = "syn_limit", value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
        syn_burst: Option<u64>,
        /// native (in the driver), generic (any interface), or auto: native, else generic.
        #[arg(long, default_value = "auto", value_parser = ["auto", "native", "generic"])]
        mode: String,
        /// Count what would be dropped; drop nothing.
        #[arg(long)]
        dry_run: bool,
        /// Detach by itself after this long (10m, 1h), even if this shell is gone.
        #[arg(long, value_parser = duration, value_name = "DURATION")]
        ttl: Option<std::time::Duration>,
        /// A source prefix never to drop (repeatable), besides the SSH peer.
        #[arg(long, value_name = "PREFIX")]
        protect: Vec<String>,
        /// Allow dropping the SSH peer and --protect prefixes.
        #[arg(long)]
        force: bool,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Per-rule packets and bytes, the mode, when it was attached and the TTL left.
    #[command(
        after_help = "Examples:\n  sudo netsight xdp status\n  sudo netsight xdp status eth0 --json"
    )]
    Status {
        interface: Option<String>,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Add or delete a rule of an attached filter, live.
    #[command(subcommand)]
    Rule(XdpRuleCommand),
    /// Remove netsight's filter from an interface.
    #[command(after_help = "Examples:\n  sudo netsight xdp detach eth0")]
    Detach {
        interface: String,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Propose rules for what doctor saw (a doctor --json report) or for live traffic.
    #[command(
        after_help = "--live watches the interface (AF_PACKET) for DURATION: sources that send SYNs and never\n\
complete a handshake, grouped into the widest prefixes that hold no source that did; UDP floods by\n\
source and port. --from reads doctor's findings and says which to look for.\n\n\
Examples:\n  \
sudo netsight xdp suggest --live 5s --interface eth0\n  \
sudo netsight doctor --json > d.json; sudo netsight xdp suggest --from d.json --live 5s --interface eth0"
    )]
    Suggest {
        /// A doctor --json report.
        #[arg(long, value_name = "FILE")]
        from: Option<std::path::PathBuf>,
        /// Watch live traffic this long.
        #[arg(long, value_parser = duration, value_name = "DURATION")]
        live: Option<std::time::Duration>,
        /// The interface to watch (default: any).
        #[arg(long, short = 'i')]
        interface: Option<String>,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Detaches at the TTL (started by attach in its own process group).
    #[command(hide = true)]
    Watchdog {
        #[arg(long)]
        interface: String,
        #[arg(long)]
        token: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum XdpRuleCommand {
    /// Add a rule (at the end, or at --position).
    #[command(
        after_help = "Examples:\n  sudo netsight xdp rule add eth0 'drop src 198.51.100.0/24'\n  sudo netsight xdp rule add eth0 'pass src 198.51.100.7' --position 1"
    )]
    Add {
        interface: String,
        rule: String,
        /// 1-based place in the list (1: checked first).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
        position: Option<u64>,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete a rule, by its number in `xdp status` or its text.
    #[command(
        after_help = "Examples:\n  sudo netsight xdp rule del eth0 2\n  sudo netsight xdp rule del eth0 'drop src 198.51.100.0/24'"
    )]
    Del {
        interface: String,
        rule: String,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}
