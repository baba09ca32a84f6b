//! What the dashboard shows, computed from one namespace's snapshots: plain data.
//! Rates come from the last two samples; findings from doctor's rules over the
//! sliding window (its oldest sample against the newest), as `doctor` would give
//! them for that interval.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

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
    /// Every TCP socket the kernel reported with tcp_info, busiest first.
    #[serde(skip)]
    pub sockets: Vec<SocketRow>,
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
    /// Parsed samples within the window; only the newest keeps its sockets.
    history: VecDeque<Snapshot>,
    /// The same samples as read (for a bundle); only the newest keeps its sockets.
    raws: VecDeque<Arc<RawSnapshot>>,
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
            series: HashMap::new(),
            socket_bytes: HashMap::new(),
            had_sockets: false,
            samples: 0,
        }
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// The samples behind the current findings, oldest first: what a bundle of
    /// this screen holds (`doctor --from` on it gives the same findings).
    pub fn window_raws(&self) -> Vec<Arc<RawSnapshot>> {
        self.raws.iter().cloned().collect()
    }

    /// Takes one sample and computes what to show.
    pub fn push(&mut self, raw: RawSnapshot) -> View {
        let cur = Snapshot::from_raw(&raw);
        if let Some(last) = self.raws.back_mut() {
            *last = Arc::new(without_sockets(last));
        }
        self.raws.push_back(Arc::new(raw));
        let prev = self.history.back_mut().map(|last| {
            // The rates below need the previous sample's links and MIBs only.
            last.sockets = None;
            &*last
        });
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
            view.health = health(rates, &cur);
        } else {
            view.health.tcp_states = states(&cur);
        }
        view.interfaces = self.interfaces(&cur, rates.as_ref());
        let interval_s = view.interval_s;
        view.sockets = self.sockets(&cur, interval_s);
        view.processes = processes(&view.sockets);
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
                let mut report = netsight_doctor::diagnose(oldest, newest);
                report
                    .findings
                    .retain(|f| !self.drop_rules.iter().any(|p| f.rule_id.starts_with(p)));
                view.findings = report.findings;
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

/// A copy of `raw` without its socket dumps (older window samples need none).
fn without_sockets(raw: &RawSnapshot) -> RawSnapshot {
    let keep = |k: &String| !k.starts_with("netlink/sock_diag");
    RawSnapshot {
        meta: raw.meta.clone(),
        entries: raw
            .entries
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        missing: raw.missing.clone(),
    }
}

fn states(cur: &Snapshot) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    if let Some(table) = &cur.sockets {
        for s in table.sockets.iter().filter(|s| s.protocol == Protocol::Tcp) {
            *out.entry(s.state.as_str().to_string()).or_insert(0) += 1;
        }
    }
    out
}

fn health(rates: &Rates, cur: &Snapshot) -> Health {
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
        tcp_states: states(cur),
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
