//! What the dashboard shows, computed from one namespace's snapshots: plain data.
//! Rates come from the last two samples; findings from doctor's rules over the
//! sliding window (its oldest sample against the newest), as `doctor` would give
//! them for that interval.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netsight_kernel::collect::{is_socket_key, sockstat_of};
use netsight_kernel::procfs::{snmp, sockstat};
use netsight_kernel::raw::key;
use netsight_kernel::sockets::summary::SocketSummary;
use netsight_kernel::sockets::{Protocol, TcpState};
use netsight_kernel::{delta, Rates, RawSnapshot, Snapshot};
use netsight_report::{Finding, Severity};
use serde::Serialize;

/// Points kept per interface chart: two minutes at the default 1 s refresh.
pub const HISTORY_POINTS: usize = 120;

/// One interface's rates over time, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Series {
    pub rx_bits_per_s: VecDeque<f64>,
    pub tx_bits_per_s: VecDeque<f64>,
    pub rx_packets_per_s: VecDeque<f64>,
    pub tx_packets_per_s: VecDeque<f64>,
}

impl Series {
    fn push(&mut self, row: &InterfaceRow) {
        for (ring, v) in [
            (&mut self.rx_bits_per_s, row.rx_bits_per_s),
            (&mut self.tx_bits_per_s, row.tx_bits_per_s),
            (&mut self.rx_packets_per_s, row.rx_packets_per_s),
            (&mut self.tx_packets_per_s, row.tx_packets_per_s),
        ] {
            if ring.len() == HISTORY_POINTS {
                ring.pop_front();
            }
            ring.push_back(v);
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InterfaceRow {
    pub name: String,
    /// IFLA_INFO_KIND (veth, bridge, tun...); None for NICs and lo.
    pub kind: Option<String>,
    /// Not a NIC: lo or any link with a kind (veth, bridge, tun, vlan...).
    pub is_virtual: bool,
    pub up: bool,
    pub rx_bits_per_s: f64,
    pub tx_bits_per_s: f64,
    pub rx_packets_per_s: f64,
    pub tx_packets_per_s: f64,
    /// rx_dropped + rx_missed_errors + tx_dropped, per second.
    pub drops_per_s: f64,
    pub errors_per_s: f64,
    pub drops_total: u64,
    pub errors_total: u64,
    #[serde(skip)]
    pub series: Series,
}

/// TCP and UDP health over the last interval (per second) and TCP states now.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Health {
    pub tcp_out_segments_per_s: f64,
    pub tcp_retransmitted_segments_per_s: f64,
    /// Retransmitted ÷ sent segments, in percent.
    pub tcp_retransmit_percent: f64,
    pub tcp_resets_sent_per_s: f64,
    pub tcp_established_resets_per_s: f64,
    pub tcp_active_opens_per_s: f64,
    pub tcp_passive_opens_per_s: f64,
    pub tcp_listen_overflows_per_s: f64,
    pub tcp_listen_drops_per_s: f64,
    pub tcp_syncookies_sent_per_s: f64,
    /// Socket counts by state (ss's names), from the socket table.
    pub tcp_states: BTreeMap<String, u64>,
    /// UDP and UDP6 together.
    pub udp_in_datagrams_per_s: f64,
    pub udp_out_datagrams_per_s: f64,
    pub udp_receive_buffer_errors_per_s: f64,
    pub udp_send_buffer_errors_per_s: f64,
    pub udp_no_port_per_s: f64,
    pub udp_in_errors_per_s: f64,
}

/// One TCP socket with its throughput over the last interval (tcp_info's byte
/// counters, so exact).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SocketRow {
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub remote_addr: IpAddr,
    pub remote_port: u16,
    pub state: &'static str,
    pub rx_bytes_per_s: f64,
    pub tx_bytes_per_s: f64,
    pub rtt_ms: f64,
    pub retransmits_total: u32,
    pub pid: Option<u32>,
    pub comm: Option<Arc<str>>,
}

impl SocketRow {
    pub fn total_bytes_per_s(&self) -> f64 {
        self.rx_bytes_per_s + self.tx_bytes_per_s
    }
}

/// Sockets summed per owning process; `pid` None holds what no process owns
/// (TIME-WAIT, orphans, sockets of processes that could not be read).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessRow {
    pub pid: Option<u32>,
    pub comm: String,
    pub sockets: u64,
    pub rx_bytes_per_s: f64,
    pub tx_bytes_per_s: f64,
    pub retransmits_total: u64,
}

/// Everything one refresh shows for one namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct View {
    pub namespace: String,
    pub taken_at_unix_ms: u64,
    /// Seconds between the last two samples (0 on the first).
    pub interval_s: f64,
    /// Seconds the findings cover (the window, or less while it fills).
    pub window_s: f64,
    pub samples: u64,
    pub interfaces: Vec<InterfaceRow>,
    pub health: Health,
    /// How old the socket table is when it was not read for this sample and may
    /// have changed (the sampler's CPU budget); 0 when read now or known unchanged.
    pub sockets_age_s: f64,
    /// Every TCP socket the kernel reported with tcp_info, busiest first
    /// (shared with the tracker while the table is shown: tens of thousands).
    #[serde(skip)]
    pub sockets: Arc<Vec<SocketRow>>,
    /// The busiest sockets (what --json shows of them).
    pub top_sockets: Vec<SocketRow>,
    pub processes: Vec<ProcessRow>,
    /// doctor's findings over the window, worst first.
    pub findings: Vec<Finding>,
    /// Sources that could not be read, with why ("sockets: needs CAP_NET_ADMIN").
    pub unavailable: Vec<String>,
}

impl View {
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// How many sockets --json lists.
const TOP_SOCKETS: usize = 20;

/// One namespace's samples: the window for findings, the last socket counters,
/// each interface's chart.
#[derive(Debug)]
pub struct Tracker {
    label: String,
    window: Duration,
    /// Rules about host-wide state, left out of a namespace other than the host's.
    drop_rules: &'static [&'static str],
    /// Parsed samples within the window; only the newest holds the socket table.
    history: VecDeque<Snapshot>,
    /// The same samples as read (for a bundle), without their socket part.
    raws: VecDeque<Arc<RawSnapshot>>,
    /// The socket part (sock_diag dumps, owners) of the last sample that read it.
    socket_part: Option<Arc<RawSnapshot>>,
    /// When the socket byte counters were last known (read, or unchanged since),
    /// as a monotonic time, with the activity then.
    socket_at: Option<(u64, SocketActivity)>,
    /// What is derived from the last socket table, kept while it is shown: its
    /// rows, their sums per process, its state counts and doctor's summary of
    /// it (each a pass over every socket, most of a refresh with tens of thousands).
    socket_rows: Arc<Vec<SocketRow>>,
    socket_processes: Vec<ProcessRow>,
    socket_states: BTreeMap<String, u64>,
    socket_summary: Option<SocketSummary>,
    series: HashMap<String, Series>,
    /// TCP socket inode → (bytes_received, bytes_acked) at the last sample.
    socket_bytes: HashMap<u32, (u64, u64)>,
    /// Whether the last sample had a socket table (a socket missing from it is new).
    had_sockets: bool,
    samples: u64,
}

impl Tracker {
    pub fn new(
        label: impl Into<String>,
        window: Duration,
        drop_rules: &'static [&'static str],
    ) -> Self {
        Tracker {
            label: label.into(),
            window,
            drop_rules,
            history: VecDeque::new(),
            raws: VecDeque::new(),
            socket_part: None,
            socket_at: None,
            socket_rows: Arc::default(),
            socket_processes: Vec::new(),
            socket_states: BTreeMap::new(),
            socket_summary: None,
            series: HashMap::new(),
            socket_bytes: HashMap::new(),
            had_sockets: false,
            samples: 0,
        }
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The samples behind the current findings (cheap to keep: shared).
    pub fn window(&self) -> Window {
        Window {
            raws: self.raws.iter().cloned().collect(),
            sockets: self.socket_part.clone(),
        }
    }

    /// Takes one sample and computes what to show. A sample without a socket
    /// table (the sampler did not read it) keeps the last one: as it was when
    /// the activity says nothing moved, else marked with its age.
    pub fn push(&mut self, raw: RawSnapshot) -> View {
        let mut cur = Snapshot::from_raw(&raw);
        let (raw, socket_part) = split_sockets(raw);
        self.raws.push_back(Arc::new(raw));
        let activity = SocketActivity::of(&cur.mib, &cur.sockstat);
        // The rates below need the previous sample's links and MIBs only.
        let last_table = self.history.back_mut().and_then(|last| last.sockets.take());
        let table = if let Some(part) = socket_part {
            self.socket_part = Some(Arc::new(part));
            Table::Read
        } else if let (Some(part), Some(table)) = (&self.socket_part, last_table) {
            cur.sockets = Some(table);
            for (k, why) in &part.missing {
                cur.unavailable
                    .entry(k.clone())
                    .or_insert_with(|| why.clone());
            }
            match &self.socket_at {
                Some((_, then)) if then.same_as(&activity) => Table::Unchanged,
                _ => Table::Stale,
            }
        } else {
            self.socket_part = None;
            Table::None
        };
        let prev = self.history.back();
        let mut view = View {
            namespace: self.label.clone(),
            taken_at_unix_ms: cur.meta.taken_at_unix_ms,
            samples: self.samples + 1,
            unavailable: unavailable(&cur),
            ..View::default()
        };
        let rates = prev.map(|prev| delta(prev, &cur));
        if let Some(rates) = &rates {
            view.interval_s = rates.interval_s;
            view.health = health(rates);
        }
        view.interfaces = self.interfaces(&cur, rates.as_ref());
        let now_ns = cur.meta.monotonic_ns;
        let since = |at: &Option<(u64, SocketActivity)>| {
            at.as_ref()
                .map_or(0.0, |(t, _)| now_ns.saturating_sub(*t) as f64 / 1e9)
        };
        match table {
            Table::Read => {
                let rows = self.sockets(&cur, since(&self.socket_at));
                self.socket_at = Some((now_ns, activity));
                self.socket_processes = processes(&rows);
                self.socket_rows = Arc::new(rows);
                self.socket_states = states(&cur);
                self.socket_summary = netsight_doctor::socket_summary(&cur);
            }
            Table::Unchanged => {
                // Nothing moved since the counters were known: no bytes either
                // (zeroed once; after that the rows are shared as they are).
                let moving = |r: &SocketRow| r.rx_bytes_per_s != 0.0 || r.tx_bytes_per_s != 0.0;
                if self.socket_rows.iter().any(moving) {
                    for row in Arc::make_mut(&mut self.socket_rows) {
                        row.rx_bytes_per_s = 0.0;
                        row.tx_bytes_per_s = 0.0;
                    }
                    self.socket_processes = processes(&self.socket_rows);
                }
                self.socket_at = Some((now_ns, activity));
            }
            Table::Stale => view.sockets_age_s = since(&self.socket_at),
            Table::None => {
                self.socket_at = None;
                self.socket_states.clear();
                self.socket_summary = None;
                let rows = self.sockets(&cur, 0.0);
                self.socket_processes = processes(&rows);
                self.socket_rows = Arc::new(rows);
            }
        }
        view.sockets = Arc::clone(&self.socket_rows);
        view.health.tcp_states = self.socket_states.clone();
        view.processes = self.socket_processes.clone();
        view.top_sockets = view.sockets.iter().take(TOP_SOCKETS).cloned().collect();

        self.history.push_back(cur);
        self.samples += 1;
        // Keep the oldest sample still within the window (at least two samples).
        let newest_ns = self.history.back().map_or(0, |s| s.meta.monotonic_ns);
        while self.history.len() > 2
            && newest_ns.saturating_sub(self.history[1].meta.monotonic_ns)
                >= self.window.as_nanos() as u64
        {
            self.history.pop_front();
            self.raws.pop_front();
        }
        if let (Some(oldest), Some(newest)) = (self.history.front(), self.history.back()) {
            if self.history.len() >= 2 && netsight_doctor::cannot_diagnose(oldest, newest).is_none()
            {
                let mut findings =
                    netsight_doctor::findings(oldest, newest, self.socket_summary.as_ref());
                findings.retain(|f| !self.drop_rules.iter().any(|p| f.rule_id.starts_with(p)));
                view.findings = findings;
                view.window_s = netsight_kernel::delta::interval_seconds(oldest, newest);
            }
        }
        view
    }

    fn interfaces(&mut self, cur: &Snapshot, rates: Option<&Rates>) -> Vec<InterfaceRow> {
        let mut rows: Vec<InterfaceRow> = cur
            .links
            .iter()
            .map(|link| {
                let mut row = InterfaceRow {
                    name: link.name.clone(),
                    kind: link.kind.clone(),
                    is_virtual: link.kind.is_some() || link.name == "lo",
                    up: link.admin_up && link.lower_up,
                    drops_total: link.stats.rx_dropped
                        + link.stats.rx_missed_errors
                        + link.stats.tx_dropped,
                    errors_total: link.stats.rx_errors + link.stats.tx_errors,
                    ..InterfaceRow::default()
                };
                if let Some(r) = rates.and_then(|r| r.links.iter().find(|l| l.name == link.name)) {
                    let s = &r.stats;
                    row.rx_bits_per_s = s.rx_bytes * 8.0;
                    row.tx_bits_per_s = s.tx_bytes * 8.0;
                    row.rx_packets_per_s = s.rx_packets;
                    row.tx_packets_per_s = s.tx_packets;
                    row.drops_per_s = s.rx_dropped + s.rx_missed_errors + s.tx_dropped;
                    row.errors_per_s = s.rx_errors + s.tx_errors;
                }
                let series = self.series.entry(link.name.clone()).or_default();
                if rates.is_some() {
                    series.push(&row);
                }
                row.series = series.clone();
                row
            })
            .collect();
        // Interfaces that went away take their charts with them.
        self.series
            .retain(|name, _| cur.links.iter().any(|l| &l.name == name));
        rows.sort_by(|a, b| a.is_virtual.cmp(&b.is_virtual).then(a.name.cmp(&b.name)));
        rows
    }

    fn sockets(&mut self, cur: &Snapshot, interval_s: f64) -> Vec<SocketRow> {
        let Some(table) = &cur.sockets else {
            self.socket_bytes.clear();
            self.had_sockets = false;
            return Vec::new();
        };
        let had_sockets = std::mem::replace(&mut self.had_sockets, true);
        let mut next = HashMap::with_capacity(self.socket_bytes.len());
        let mut rows: Vec<SocketRow> = Vec::new();
        for s in table.sockets.iter().filter(|s| s.protocol == Protocol::Tcp) {
            let Some(info) = &s.tcp_info else { continue };
            let counters = (info.bytes_received, info.bytes_acked);
            let rate = |now: u64, before: u64| {
                if interval_s > 0.0 {
                    now.saturating_sub(before) as f64 / interval_s
                } else {
                    0.0
                }
            };
            // A socket new since the last sample counts from zero: its bytes
            // all moved within the interval, or it was opened with them (accept).
            let (rx, tx) = match (s.inode, self.socket_bytes.get(&s.inode)) {
                (0, _) => (0.0, 0.0),
                (_, Some(&(rx0, tx0))) => (rate(counters.0, rx0), rate(counters.1, tx0)),
                (_, None) if had_sockets => (rate(counters.0, 0), rate(counters.1, 0)),
                (_, None) => (0.0, 0.0),
            };
            if s.inode != 0 {
                next.insert(s.inode, counters);
            }
            rows.push(SocketRow {
                local_addr: s.local_addr,
                local_port: s.local_port,
                remote_addr: s.remote_addr,
                remote_port: s.remote_port,
                state: s.state.as_str(),
                rx_bytes_per_s: rx,
                tx_bytes_per_s: tx,
                rtt_ms: info.rtt_us as f64 / 1000.0,
                retransmits_total: info.total_retrans,
                pid: s.process.as_ref().map(|p| p.pid),
                comm: s.process.as_ref().map(|p| Arc::clone(&p.comm)),
            });
        }
        self.socket_bytes = next;
        rows.sort_by(|a, b| b.total_bytes_per_s().total_cmp(&a.total_bytes_per_s()));
        rows
    }
}

/// Where this sample's socket table came from.
enum Table {
    Read,
    /// The last one, and nothing moved since.
    Unchanged,
    /// The last one, and something may have moved since.
    Stale,
    None,
}

/// `raw` without its socket part, and that part; `raw` as it is when it holds
/// no socket dump (its reasons for that stay with it).
fn split_sockets(mut raw: RawSnapshot) -> (RawSnapshot, Option<RawSnapshot>) {
    if !raw
        .entries
        .keys()
        .any(|k| k.starts_with(&key::sock_diag("")))
    {
        return (raw, None);
    }
    let mut part = RawSnapshot {
        meta: raw.meta.clone(),
        entries: Default::default(),
        missing: Default::default(),
    };
    let (sockets, rest): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut raw.entries)
        .into_iter()
        .partition(|(k, _)| is_socket_key(k));
    raw.entries = rest;
    part.entries = sockets;
    let (missing, rest): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut raw.missing)
        .into_iter()
        .partition(|(k, _)| is_socket_key(k));
    raw.missing = rest;
    part.missing = missing;
    (raw, Some(part))
}

/// The samples behind a screen, as a bundle holds them (`doctor --from` on it
/// gives the same findings): the newest with the socket table shown.
#[derive(Debug, Clone, Default)]
pub struct Window {
    raws: Vec<Arc<RawSnapshot>>,
    sockets: Option<Arc<RawSnapshot>>,
}

impl Window {
    pub fn is_empty(&self) -> bool {
        self.raws.is_empty()
    }

    pub fn snapshots(&self) -> Vec<RawSnapshot> {
        let mut out: Vec<RawSnapshot> = self.raws.iter().map(|r| RawSnapshot::clone(r)).collect();
        if let (Some(newest), Some(part)) = (out.last_mut(), &self.sockets) {
            newest
                .entries
                .extend(part.entries.iter().map(|(k, v)| (k.clone(), v.clone())));
            newest
                .missing
                .extend(part.missing.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }
}

/// What a socket table changes with: TCP segments and UDP datagrams in and out,
/// how many sockets exist (sockstat, which also moves when a timer ends one)
/// and the memory their queues hold. Equal at two samples, what top shows of
/// the table (bytes, states, RTTs) did not change in between, so it need not
/// be dumped again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketActivity(Vec<Option<i64>>);

/// TCP's MIB counts IPv6 segments too; UDP has one per family.
const ACTIVITY_MIB: [(&str, &str); 9] = [
    ("Tcp", "InSegs"),
    ("Tcp", "OutSegs"),
    ("Tcp", "OutRsts"),
    ("Udp", "InDatagrams"),
    ("Udp", "OutDatagrams"),
    ("Udp", "InErrors"),
    ("Udp6", "InDatagrams"),
    ("Udp6", "OutDatagrams"),
    ("Udp6", "InErrors"),
];
/// Memory in pages moves when an application drains a queue, segment or not.
const ACTIVITY_SOCKSTAT: [(&str, &str); 9] = [
    ("TCP", "inuse"),
    ("TCP", "orphan"),
    ("TCP", "tw"),
    ("TCP", "alloc"),
    ("TCP", "mem"),
    ("TCP6", "inuse"),
    ("UDP", "inuse"),
    ("UDP", "mem"),
    ("UDP6", "inuse"),
];

impl SocketActivity {
    pub fn of(mib: &snmp::Mib, counts: &sockstat::Sockstat) -> Self {
        let get = |m: &BTreeMap<String, BTreeMap<String, i64>>, (g, n): &(&str, &str)| {
            m.get(*g).and_then(|group| group.get(*n)).copied()
        };
        SocketActivity(
            ACTIVITY_MIB
                .iter()
                .map(|f| get(mib, f))
                .chain(ACTIVITY_SOCKSTAT.iter().map(|f| get(counts, f)))
                .collect(),
        )
    }

    /// The same from a sample as read (what a sampler has before parsing).
    pub fn of_raw(raw: &RawSnapshot) -> Self {
        let text = |rel: &str| raw.text(&key::proc(rel));
        let mut mib = snmp::Mib::new();
        if let Some(t) = text("net/snmp") {
            let _ = snmp::parse_paired("snmp", &t, &mut mib);
        }
        if let Some(t) = text("net/snmp6") {
            let _ = snmp::parse_snmp6(&t, &mut mib);
        }
        // Unparsed counts are unknown, and unknown proves no quiet (`same_as`).
        let counts = sockstat_of(raw).unwrap_or_default();
        SocketActivity::of(&mib, &counts)
    }

    /// Equal, and every count known (an unreadable one proves nothing).
    pub fn same_as(&self, other: &SocketActivity) -> bool {
        self.0 == other.0 && self.0.iter().all(Option::is_some)
    }
}

/// The share of one CPU the socket table may cost a sampler: a dump of tens of
/// thousands of sockets takes milliseconds of kernel time, more than the rest
/// of a sample together.
pub const SOCKET_CPU_SHARE: f64 = 0.005;

/// When a sampler reads the socket table again: when the activity moved, or
/// `max_unchanged` passed (what the activity cannot see: an RTT estimate
/// ageing, an owner forking), and no sooner than its last read's CPU cost
/// allows under `SOCKET_CPU_SHARE`.
#[derive(Debug)]
pub struct SocketCadence {
    max_unchanged: Duration,
    last: Option<(Instant, SocketActivity)>,
    next_allowed: Option<Instant>,
}

impl SocketCadence {
    pub fn new(max_unchanged: Duration) -> Self {
        SocketCadence {
            max_unchanged,
            last: None,
            next_allowed: None,
        }
    }

    pub fn due(&self, now: Instant, activity: &SocketActivity) -> bool {
        if self.next_allowed.is_some_and(|t| now < t) {
            return false;
        }
        match &self.last {
            None => true,
            Some((at, then)) => {
                !then.same_as(activity) || now.duration_since(*at) >= self.max_unchanged
            }
        }
    }

    /// A read that started at `started` (with `activity` then) and cost `cpu`.
    pub fn read(&mut self, started: Instant, cpu: Duration, activity: SocketActivity) {
        self.last = Some((started, activity));
        self.next_allowed = Some(started + cpu.div_f64(SOCKET_CPU_SHARE));
    }
}

fn states(cur: &Snapshot) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<TcpState, u64> = BTreeMap::new();
    if let Some(table) = &cur.sockets {
        for s in table.sockets.iter().filter(|s| s.protocol == Protocol::Tcp) {
            *counts.entry(s.state).or_insert(0) += 1;
        }
    }
    let mut out = BTreeMap::new();
    for (state, n) in counts {
        *out.entry(state.as_str().to_string()).or_insert(0) += n;
    }
    out
}

fn health(rates: &Rates) -> Health {
    let r = |g: &str, n: &str| rates.mib_rate(g, n);
    let udp = |n: &str| r("Udp", n) + r("Udp6", n);
    let out = r("Tcp", "OutSegs");
    let retrans = r("Tcp", "RetransSegs");
    Health {
        tcp_out_segments_per_s: out,
        tcp_retransmitted_segments_per_s: retrans,
        tcp_retransmit_percent: if out > 0.0 {
            100.0 * retrans / out
        } else {
            0.0
        },
        tcp_resets_sent_per_s: r("Tcp", "OutRsts"),
        tcp_established_resets_per_s: r("Tcp", "EstabResets"),
        tcp_active_opens_per_s: r("Tcp", "ActiveOpens"),
        tcp_passive_opens_per_s: r("Tcp", "PassiveOpens"),
        tcp_listen_overflows_per_s: r("TcpExt", "ListenOverflows"),
        tcp_listen_drops_per_s: r("TcpExt", "ListenDrops"),
        tcp_syncookies_sent_per_s: r("TcpExt", "SyncookiesSent"),
        tcp_states: BTreeMap::new(),
        udp_in_datagrams_per_s: udp("InDatagrams"),
        udp_out_datagrams_per_s: udp("OutDatagrams"),
        udp_receive_buffer_errors_per_s: udp("RcvbufErrors"),
        udp_send_buffer_errors_per_s: udp("SndbufErrors"),
        udp_no_port_per_s: udp("NoPorts"),
        udp_in_errors_per_s: udp("InErrors"),
    }
}

fn processes(sockets: &[SocketRow]) -> Vec<ProcessRow> {
    let mut by: HashMap<Option<u32>, ProcessRow> = HashMap::new();
    for s in sockets {
        let row = by.entry(s.pid).or_insert_with(|| ProcessRow {
            pid: s.pid,
            comm: s
                .comm
                .as_deref()
                .map_or_else(|| "(no process)".to_string(), str::to_string),
            sockets: 0,
            rx_bytes_per_s: 0.0,
            tx_bytes_per_s: 0.0,
            retransmits_total: 0,
        });
        row.sockets += 1;
        row.rx_bytes_per_s += s.rx_bytes_per_s;
        row.tx_bytes_per_s += s.tx_bytes_per_s;
        row.retransmits_total += u64::from(s.retransmits_total);
    }
    let mut rows: Vec<ProcessRow> = by.into_values().collect();
    rows.sort_by(|a, b| {
        (b.rx_bytes_per_s + b.tx_bytes_per_s)
            .total_cmp(&(a.rx_bytes_per_s + a.tx_bytes_per_s))
            .then(b.sockets.cmp(&a.sockets))
    });
    rows
}

/// What the panes read and could not, once per pane (what doctor's own rules
/// could not read, it reports as skipped, and `doctor` shows that).
fn unavailable(cur: &Snapshot) -> Vec<String> {
    const READ: &[(&str, &str)] = &[
        ("netlink/sock_diag", "sockets"),
        ("netlink/route/link", "interfaces"),
        ("proc/net/snmp", "TCP/UDP counters"),
    ];
    let mut out: Vec<String> = Vec::new();
    for (prefix, pane) in READ {
        if let Some((_, why)) = cur.unavailable.iter().find(|(k, _)| k.starts_with(prefix)) {
            out.push(format!("{pane}: {why}"));
        }
    }
    out
}

/// TCP states shown in the health pane, in this order.
pub const SHOWN_STATES: &[TcpState] = &[
    TcpState::Established,
    TcpState::SynSent,
    TcpState::SynRecv,
    TcpState::TimeWait,
    TcpState::CloseWait,
    TcpState::FinWait1,
    TcpState::FinWait2,
    TcpState::LastAck,
    TcpState::Listen,
];

/// Virtual interfaces summed into one row ("virtual (3)"), charts added point by point.
pub fn group(rows: &[&InterfaceRow]) -> InterfaceRow {
    let mut out = InterfaceRow {
        name: format!("virtual ({})", rows.len()),
        kind: Some("group".into()),
        is_virtual: true,
        up: rows.iter().any(|r| r.up),
        ..InterfaceRow::default()
    };
    for r in rows {
        out.rx_bits_per_s += r.rx_bits_per_s;
        out.tx_bits_per_s += r.tx_bits_per_s;
        out.rx_packets_per_s += r.rx_packets_per_s;
        out.tx_packets_per_s += r.tx_packets_per_s;
        out.drops_per_s += r.drops_per_s;
        out.errors_per_s += r.errors_per_s;
        out.drops_total += r.drops_total;
        out.errors_total += r.errors_total;
    }
    let sum = |pick: fn(&Series) -> &VecDeque<f64>| -> VecDeque<f64> {
        let len = rows
            .iter()
            .map(|r| pick(&r.series).len())
            .max()
            .unwrap_or(0);
        // Newest points line up; a younger interface adds nothing to older points.
        (0..len)
            .map(|i| {
                rows.iter()
                    .map(|r| {
                        let s = pick(&r.series);
                        (i + s.len())
                            .checked_sub(len)
                            .and_then(|j| s.get(j))
                            .copied()
                            .unwrap_or(0.0)
                    })
                    .sum()
            })
            .collect()
    };
    out.series = Series {
        rx_bits_per_s: sum(|s| &s.rx_bits_per_s),
        tx_bits_per_s: sum(|s| &s.tx_bits_per_s),
        rx_packets_per_s: sum(|s| &s.rx_packets_per_s),
        tx_packets_per_s: sum(|s| &s.tx_packets_per_s),
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(segments: i64) -> SocketActivity {
        let mut mib = snmp::Mib::new();
        let mut counts = sockstat::Sockstat::new();
        for (g, n) in ACTIVITY_MIB {
            mib.entry(g.into()).or_default().insert(n.into(), segments);
        }
        for (g, n) in ACTIVITY_SOCKSTAT {
            counts.entry(g.into()).or_default().insert(n.into(), 1);
        }
        SocketActivity::of(&mib, &counts)
    }

    #[test]
    fn the_table_is_read_when_something_moved_and_its_cost_allows() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut cadence = SocketCadence::new(s(10));
        assert!(cadence.due(t0, &activity(1)), "the first sample reads it");
        // A read that cost 10 ms may come again after 2 s (0.5 % of a CPU).
        cadence.read(t0, Duration::from_millis(10), activity(1));
        assert!(
            !cadence.due(t0 + s(1), &activity(2)),
            "too soon for its cost"
        );
        assert!(cadence.due(t0 + s(2), &activity(2)), "moved, and allowed");
        assert!(!cadence.due(t0 + s(5), &activity(1)), "nothing moved");
        assert!(cadence.due(t0 + s(10), &activity(1)), "unchanged for long");
        // A cheap read comes back every sample while traffic flows.
        cadence.read(t0 + s(10), Duration::from_micros(100), activity(1));
        assert!(cadence.due(t0 + s(11), &activity(3)));
    }

    #[test]
    fn an_unreadable_count_proves_no_quiet() {
        let known = activity(5);
        assert!(known.same_as(&activity(5)) && !known.same_as(&activity(6)));
        let unknown = SocketActivity::of(&snmp::Mib::new(), &sockstat::Sockstat::new());
        assert!(!unknown.same_as(&unknown.clone()));
        let raw = RawSnapshot {
            meta: netsight_kernel::raw::RawMeta {
                format_version: netsight_kernel::raw::FORMAT_VERSION,
                taken_at_unix_ms: 0,
                monotonic_ns: 0,
                netsight_version: String::new(),
            },
            entries: [
                ("proc/net/snmp", "Tcp: InSegs OutSegs OutRsts\nTcp: 7 8 9\nUdp: InDatagrams OutDatagrams InErrors\nUdp: 1 2 3\n"),
                ("proc/net/snmp6", "Udp6InDatagrams 4\nUdp6OutDatagrams 5\nUdp6InErrors 6\n"),
                ("proc/net/sockstat", "TCP: inuse 1 orphan 0 tw 2 alloc 3 mem 1\nUDP: inuse 4 mem 0\n"),
                ("proc/net/sockstat6", "TCP6: inuse 5\nUDP6: inuse 6\n"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect(),
            missing: BTreeMap::new(),
        };
        let parsed = SocketActivity::of_raw(&raw);
        assert_eq!(
            parsed.0,
            [7, 8, 9, 1, 2, 3, 4, 5, 6, 1, 0, 2, 3, 1, 5, 4, 0, 6]
                .map(Some)
                .to_vec()
        );
        assert!(parsed.same_as(&SocketActivity::of_raw(&raw)));
    }
}
