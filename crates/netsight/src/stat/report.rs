//! `netsight stat`: sar -n compatible reports built from two snapshots.
//! Column meanings follow sysstat's sar(1); JSON keys follow sadf -j.

use std::str::FromStr;

use netsight_kernel::delta::Rates;
use netsight_kernel::Snapshot;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Keyword {
    Dev,
    Edev,
    Ip,
    Eip,
    Tcp,
    Etcp,
    Udp,
    Sock,
    Soft,
    Qdisc,
    Conntrack,
    Icmp,
    Eicmp,
    Ip6,
    Eip6,
    Icmp6,
    Eicmp6,
    Udp6,
    Sock6,
}

impl Keyword {
    /// Everything `sar -n ALL` reports, plus QDISC and CONNTRACK.
    pub const ALL: [Keyword; 19] = [
        Keyword::Dev,
        Keyword::Edev,
        Keyword::Ip,
        Keyword::Eip,
        Keyword::Tcp,
        Keyword::Etcp,
        Keyword::Udp,
        Keyword::Sock,
        Keyword::Soft,
        Keyword::Qdisc,
        Keyword::Conntrack,
        Keyword::Icmp,
        Keyword::Eicmp,
        Keyword::Ip6,
        Keyword::Eip6,
        Keyword::Icmp6,
        Keyword::Eicmp6,
        Keyword::Udp6,
        Keyword::Sock6,
    ];
}

/// A sar keyword whose columns are rates (or gauges) of single kernel counters:
/// (sar column without "/s", MIB group or sockstat group, counter).
struct CounterColumns {
    keyword: Keyword,
    /// Gauges from /proc/net/sockstat6 (SOCK6) rather than MIB rates.
    gauges: bool,
    columns: &'static [(&'static str, &'static str, &'static str)],
}

/// Columns as sysstat's pr_stats.c prints them, counters as rd_stats.c reads them.
const COUNTER_KEYWORDS: &[CounterColumns] = &[
    CounterColumns {
        keyword: Keyword::Icmp,
        gauges: false,
        columns: &[
            ("imsg", "Icmp", "InMsgs"),
            ("omsg", "Icmp", "OutMsgs"),
            ("iech", "Icmp", "InEchos"),
            ("iechr", "Icmp", "InEchoReps"),
            ("oech", "Icmp", "OutEchos"),
            ("oechr", "Icmp", "OutEchoReps"),
            ("itm", "Icmp", "InTimestamps"),
            ("itmr", "Icmp", "InTimestampReps"),
            ("otm", "Icmp", "OutTimestamps"),
            ("otmr", "Icmp", "OutTimestampReps"),
            ("iadrmk", "Icmp", "InAddrMasks"),
            ("iadrmkr", "Icmp", "InAddrMaskReps"),
            ("oadrmk", "Icmp", "OutAddrMasks"),
            ("oadrmkr", "Icmp", "OutAddrMaskReps"),
        ],
    },
    CounterColumns {
        keyword: Keyword::Eicmp,
        gauges: false,
        columns: &[
            ("ierr", "Icmp", "InErrors"),
            ("oerr", "Icmp", "OutErrors"),
            ("idstunr", "Icmp", "InDestUnreachs"),
            ("odstunr", "Icmp", "OutDestUnreachs"),
            ("itmex", "Icmp", "InTimeExcds"),
            ("otmex", "Icmp", "OutTimeExcds"),
            ("iparmpb", "Icmp", "InParmProbs"),
            ("oparmpb", "Icmp", "OutParmProbs"),
            ("isrcq", "Icmp", "InSrcQuenchs"),
            ("osrcq", "Icmp", "OutSrcQuenchs"),
            ("iredir", "Icmp", "InRedirects"),
            ("oredir", "Icmp", "OutRedirects"),
        ],
    },
    CounterColumns {
        keyword: Keyword::Ip6,
        gauges: false,
        columns: &[
            ("irec6", "Ip6", "InReceives"),
            ("fwddgm6", "Ip6", "OutForwDatagrams"),
            ("idel6", "Ip6", "InDelivers"),
            ("orq6", "Ip6", "OutRequests"),
            ("asmrq6", "Ip6", "ReasmReqds"),
            ("asmok6", "Ip6", "ReasmOKs"),
            ("imcpck6", "Ip6", "InMcastPkts"),
            ("omcpck6", "Ip6", "OutMcastPkts"),
            ("fragok6", "Ip6", "FragOKs"),
            ("fragcr6", "Ip6", "FragCreates"),
        ],
    },
    CounterColumns {
        keyword: Keyword::Eip6,
        gauges: false,
        columns: &[
            ("ihdrer6", "Ip6", "InHdrErrors"),
            ("iadrer6", "Ip6", "InAddrErrors"),
            ("iukwnp6", "Ip6", "InUnknownProtos"),
            ("i2big6", "Ip6", "InTooBigErrors"),
            ("idisc6", "Ip6", "InDiscards"),
            ("odisc6", "Ip6", "OutDiscards"),
            ("inort6", "Ip6", "InNoRoutes"),
            ("onort6", "Ip6", "OutNoRoutes"),
            ("asmf6", "Ip6", "ReasmFails"),
            ("fragf6", "Ip6", "FragFails"),
            ("itrpck6", "Ip6", "InTruncatedPkts"),
        ],
    },
    CounterColumns {
        keyword: Keyword::Icmp6,
        gauges: false,
        columns: &[
            ("imsg6", "Icmp6", "InMsgs"),
            ("omsg6", "Icmp6", "OutMsgs"),
            ("iech6", "Icmp6", "InEchos"),
            ("iechr6", "Icmp6", "InEchoReplies"),
            ("oechr6", "Icmp6", "OutEchoReplies"),
            ("igmbq6", "Icmp6", "InGroupMembQueries"),
            ("igmbr6", "Icmp6", "InGroupMembResponses"),
            ("ogmbr6", "Icmp6", "OutGroupMembResponses"),
            ("igmbrd6", "Icmp6", "InGroupMembReductions"),
            ("ogmbrd6", "Icmp6", "OutGroupMembReductions"),
            ("irtsol6", "Icmp6", "InRouterSolicits"),
            ("ortsol6", "Icmp6", "OutRouterSolicits"),
            ("irtad6", "Icmp6", "InRouterAdvertisements"),
            ("inbsol6", "Icmp6", "InNeighborSolicits"),
            ("onbsol6", "Icmp6", "OutNeighborSolicits"),
            ("inbad6", "Icmp6", "InNeighborAdvertisements"),
            ("onbad6", "Icmp6", "OutNeighborAdvertisements"),
        ],
    },
    CounterColumns {
        keyword: Keyword::Eicmp6,
        gauges: false,
        columns: &[
            ("ierr6", "Icmp6", "InErrors"),
            ("idtunr6", "Icmp6", "InDestUnreachs"),
            ("odtunr6", "Icmp6", "OutDestUnreachs"),
            ("itmex6", "Icmp6", "InTimeExcds"),
            ("otmex6", "Icmp6", "OutTimeExcds"),
            ("iprmpb6", "Icmp6", "InParmProblems"),
            ("oprmpb6", "Icmp6", "OutParmProblems"),
            ("iredir6", "Icmp6", "InRedirects"),
            ("oredir6", "Icmp6", "OutRedirects"),
            ("ipck2b6", "Icmp6", "InPktTooBigs"),
            ("opck2b6", "Icmp6", "OutPktTooBigs"),
        ],
    },
    CounterColumns {
        keyword: Keyword::Udp6,
        gauges: false,
        columns: &[
            ("idgm6", "Udp6", "InDatagrams"),
            ("odgm6", "Udp6", "OutDatagrams"),
            ("noport6", "Udp6", "NoPorts"),
            ("idgmer6", "Udp6", "InErrors"),
        ],
    },
    CounterColumns {
        keyword: Keyword::Sock6,
        gauges: true,
        columns: &[
            ("tcp6sck", "TCP6", "inuse"),
            ("udp6sck", "UDP6", "inuse"),
            ("raw6sck", "RAW6", "inuse"),
            ("ip6-frag", "FRAG6", "inuse"),
        ],
    },
];

/// One row of a counter keyword: its columns in sar's order (JSON: an object).
#[derive(Debug, Clone)]
pub struct CounterRow {
    pub keyword: Keyword,
    /// Per-second rates, or gauges for SOCK6.
    pub gauges: bool,
    pub values: Vec<(&'static str, f64)>,
}

impl Serialize for CounterRow {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.values.len()))?;
        for (name, value) in &self.values {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl FromStr for Keyword {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "DEV" => Keyword::Dev,
            "EDEV" => Keyword::Edev,
            "IP" => Keyword::Ip,
            "EIP" => Keyword::Eip,
            "TCP" => Keyword::Tcp,
            "ETCP" => Keyword::Etcp,
            "UDP" => Keyword::Udp,
            "SOCK" => Keyword::Sock,
            "SOFT" => Keyword::Soft,
            "QDISC" => Keyword::Qdisc,
            "CONNTRACK" => Keyword::Conntrack,
            "ICMP" => Keyword::Icmp,
            "EICMP" => Keyword::Eicmp,
            "IP6" => Keyword::Ip6,
            "EIP6" => Keyword::Eip6,
            "ICMP6" => Keyword::Icmp6,
            "EICMP6" => Keyword::Eicmp6,
            "UDP6" => Keyword::Udp6,
            "SOCK6" => Keyword::Sock6,
            other => {
                return Err(format!(
                    "unknown keyword {other:?}; use DEV EDEV IP EIP ICMP EICMP TCP ETCP UDP SOCK IP6 EIP6 ICMP6 EICMP6 UDP6 SOCK6 SOFT QDISC CONNTRACK or ALL"
                ))
            }
        })
    }
}

/// What `stat` was asked for: keywords, then sar's optional INTERVAL and COUNT.
#[derive(Debug, Clone, PartialEq)]
pub struct StatRequest {
    pub keywords: Vec<Keyword>,
    pub interval: Option<std::time::Duration>,
    pub count: Option<u64>,
}

/// Parses sar-style positional arguments: keywords, then INTERVAL, then COUNT.
pub fn parse_args(args: &[String]) -> Result<StatRequest, String> {
    let mut keywords = Vec::new();
    let mut numbers = Vec::new();
    for arg in args {
        // A number, or a duration with a unit (2s, 500ms): the interval or count.
        if arg.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '-') {
            numbers.push(arg);
        } else if !numbers.is_empty() {
            return Err(format!(
                "keyword {arg:?} after INTERVAL/COUNT; keywords come first"
            ));
        } else if arg.eq_ignore_ascii_case("ALL") {
            keywords.extend(Keyword::ALL);
        } else {
            keywords.push(arg.parse()?);
        }
    }
    keywords.sort();
    keywords.dedup();
    if keywords.is_empty() {
        keywords.push(Keyword::Dev);
    }
    let interval = match numbers.first() {
        Some(raw) => Some(
            netsight_kernel::units::parse_duration(raw).map_err(|e| format!("INTERVAL: {e}"))?,
        ),
        None => None,
    };
    let count = match numbers.get(1) {
        Some(raw) => Some(
            raw.parse::<u64>()
                .ok()
                .filter(|c| *c > 0)
                .ok_or_else(|| format!("COUNT must be a positive whole number, not {raw}"))?,
        ),
        None => None,
    };
    if numbers.len() > 2 {
        return Err("at most INTERVAL and COUNT may follow the keywords".into());
    }
    Ok(StatRequest {
        keywords,
        interval,
        count,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct DevRow {
    pub iface: String,
    pub rxpck: f64,
    pub txpck: f64,
    #[serde(rename = "rxkB")]
    pub rxkb: f64,
    #[serde(rename = "txkB")]
    pub txkb: f64,
    pub rxcmp: f64,
    pub txcmp: f64,
    pub rxmcst: f64,
    #[serde(rename = "ifutil-percent")]
    pub ifutil_percent: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EdevRow {
    pub iface: String,
    pub rxerr: f64,
    pub txerr: f64,
    pub coll: f64,
    pub rxdrop: f64,
    pub txdrop: f64,
    pub txcarr: f64,
    pub rxfram: f64,
    pub rxfifo: f64,
    pub txfifo: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct IpRow {
    pub irec: f64,
    pub fwddgm: f64,
    pub idel: f64,
    pub orq: f64,
    pub asmrq: f64,
    pub asmok: f64,
    pub fragok: f64,
    pub fragcrt: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EipRow {
    pub ihdrerr: f64,
    pub iadrerr: f64,
    pub iukwnpr: f64,
    pub idisc: f64,
    pub odisc: f64,
    pub onort: f64,
    pub asmf: f64,
    pub fragf: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TcpRow {
    pub active: f64,
    pub passive: f64,
    pub iseg: f64,
    pub oseg: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EtcpRow {
    pub atmptf: f64,
    pub estres: f64,
    pub retrans: f64,
    pub isegerr: f64,
    pub orsts: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct UdpRow {
    pub idgm: f64,
    pub odgm: f64,
    pub noport: f64,
    pub idgmerr: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SockRow {
    pub totsck: f64,
    pub tcpsck: f64,
    pub udpsck: f64,
    pub rawsck: f64,
    #[serde(rename = "ip-frag")]
    pub ip_frag: f64,
    #[serde(rename = "tcp-tw")]
    pub tcp_tw: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SoftRow {
    pub cpu: String,
    pub total: f64,
    pub dropd: f64,
    pub squeezd: f64,
    pub rx_rps: f64,
    pub flw_lim: f64,
    pub blg_len: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct QdiscRow {
    pub iface: String,
    pub kind: String,
    pub handle: String,
    pub parent: String,
    #[serde(rename = "kB")]
    pub kb: f64,
    pub pck: f64,
    pub drop: f64,
    pub overlim: f64,
    pub requeue: f64,
    pub backlog_bytes: f64,
    pub qlen: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConntrackRow {
    pub entries: Option<u64>,
    pub max: Option<u64>,
    #[serde(rename = "fill-percent")]
    pub fill_percent: Option<f64>,
    pub found: f64,
    pub new: f64,
    pub invalid: f64,
    pub insert_failed: f64,
    pub drop: f64,
    pub early_drop: f64,
    pub search_restart: f64,
}

/// One interval (or the average) of every requested keyword.
#[derive(Debug, Clone, Serialize)]
pub struct StatReport {
    /// Unix time (ms) at the end of the interval; None for the average.
    pub timestamp_unix_ms: Option<u64>,
    pub interval_s: f64,
    #[serde(rename = "DEV", skip_serializing_if = "Option::is_none")]
    pub dev: Option<Vec<DevRow>>,
    #[serde(rename = "EDEV", skip_serializing_if = "Option::is_none")]
    pub edev: Option<Vec<EdevRow>>,
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpRow>,
    #[serde(rename = "EIP", skip_serializing_if = "Option::is_none")]
    pub eip: Option<EipRow>,
    #[serde(rename = "TCP", skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpRow>,
    #[serde(rename = "ETCP", skip_serializing_if = "Option::is_none")]
    pub etcp: Option<EtcpRow>,
    #[serde(rename = "UDP", skip_serializing_if = "Option::is_none")]
    pub udp: Option<UdpRow>,
    #[serde(rename = "SOCK", skip_serializing_if = "Option::is_none")]
    pub sock: Option<SockRow>,
    #[serde(rename = "SOFT", skip_serializing_if = "Option::is_none")]
    pub soft: Option<Vec<SoftRow>>,
    #[serde(rename = "QDISC", skip_serializing_if = "Option::is_none")]
    pub qdisc: Option<Vec<QdiscRow>>,
    #[serde(rename = "CONNTRACK", skip_serializing_if = "Option::is_none")]
    pub conntrack: Option<ConntrackRow>,
    /// ICMP, EICMP, IP6, EIP6, ICMP6, EICMP6, UDP6, SOCK6: keyed by keyword.
    #[serde(flatten, serialize_with = "serialize_counter_rows")]
    pub counters: Vec<CounterRow>,
}

fn serialize_counter_rows<S: serde::Serializer>(
    rows: &[CounterRow],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(rows.len()))?;
    for r in rows {
        map.serialize_entry(r.keyword.name(), r)?;
    }
    map.end()
}

impl Keyword {
    /// The keyword as sar spells it (and as the JSON key).
    pub fn name(self) -> &'static str {
        match self {
            Keyword::Dev => "DEV",
            Keyword::Edev => "EDEV",
            Keyword::Ip => "IP",
            Keyword::Eip => "EIP",
            Keyword::Tcp => "TCP",
            Keyword::Etcp => "ETCP",
            Keyword::Udp => "UDP",
            Keyword::Sock => "SOCK",
            Keyword::Soft => "SOFT",
            Keyword::Qdisc => "QDISC",
            Keyword::Conntrack => "CONNTRACK",
            Keyword::Icmp => "ICMP",
            Keyword::Eicmp => "EICMP",
            Keyword::Ip6 => "IP6",
            Keyword::Eip6 => "EIP6",
            Keyword::Icmp6 => "ICMP6",
            Keyword::Eicmp6 => "EICMP6",
            Keyword::Udp6 => "UDP6",
            Keyword::Sock6 => "SOCK6",
        }
    }
}

/// sysstat's compute_ifutil: full duplex uses the busier direction, half duplex the sum.
pub fn ifutil_percent(
    rx_bytes_per_s: f64,
    tx_bytes_per_s: f64,
    speed_mbps: Option<u64>,
    duplex: Option<&str>,
) -> f64 {
    let Some(speed) = speed_mbps.filter(|s| *s > 0) else {
        return 0.0;
    };
    let bits_per_s = speed as f64 * 1e6;
    let busiest = if duplex == Some("full") {
        rx_bytes_per_s.max(tx_bytes_per_s)
    } else {
        rx_bytes_per_s + tx_bytes_per_s
    };
    busiest * 800.0 / bits_per_s
}

/// Builds one report. `cur` supplies gauges (SOCK, backlogs) at the interval's end.
/// `ifaces`: only these interfaces in DEV, EDEV and QDISC (all when empty).
pub fn build(
    keywords: &[Keyword],
    rates: &Rates,
    cur: &Snapshot,
    per_cpu: bool,
    ifaces: &[String],
    timestamp: Option<u64>,
) -> StatReport {
    let has = |k: Keyword| keywords.contains(&k);
    let shown = |name: &str| ifaces.is_empty() || ifaces.iter().any(|i| i == name);
    let mib = |g: &str, n: &str| rates.mib_rate(g, n);
    let sock = |g: &str, n: &str| {
        cur.sockstat
            .get(g)
            .and_then(|m| m.get(n))
            .copied()
            .unwrap_or(0) as f64
    };
    let conntrack_rate = |name: &str| {
        rates
            .conntrack
            .as_ref()
            .and_then(|c| c.stats_per_s.get(name))
            .copied()
            .unwrap_or(0.0)
    };

    StatReport {
        timestamp_unix_ms: timestamp,
        interval_s: rates.interval_s,
        dev: has(Keyword::Dev).then(|| {
            rates
                .links
                .iter()
                .filter(|l| shown(&l.name))
                .map(|l| {
                    let s = &l.stats;
                    DevRow {
                        iface: l.name.clone(),
                        rxpck: s.rx_packets,
                        txpck: s.tx_packets,
                        rxkb: s.rx_bytes / 1024.0,
                        txkb: s.tx_bytes / 1024.0,
                        rxcmp: s.rx_compressed,
                        txcmp: s.tx_compressed,
                        rxmcst: s.multicast,
                        ifutil_percent: ifutil_percent(s.rx_bytes, s.tx_bytes, l.speed_mbps, l.duplex.as_deref()),
                    }
                })
                .collect()
        }),
        // /proc/net/dev's folded columns, which are what sar shows.
        edev: has(Keyword::Edev).then(|| {
            rates
                .links
                .iter()
                .filter(|l| shown(&l.name))
                .map(|l| {
                    let s = &l.stats;
                    EdevRow {
                        iface: l.name.clone(),
                        rxerr: s.rx_errors,
                        txerr: s.tx_errors,
                        coll: s.collisions,
                        rxdrop: s.rx_dropped + s.rx_missed_errors,
                        txdrop: s.tx_dropped,
                        txcarr: s.tx_carrier_errors + s.tx_aborted_errors + s.tx_window_errors + s.tx_heartbeat_errors,
                        rxfram: s.rx_length_errors + s.rx_over_errors + s.rx_crc_errors + s.rx_frame_errors,
                        rxfifo: s.rx_fifo_errors,
                        txfifo: s.tx_fifo_errors,
                    }
                })
                .collect()
        }),
        ip: has(Keyword::Ip).then(|| IpRow {
            irec: mib("Ip", "InReceives"),
            fwddgm: mib("Ip", "ForwDatagrams"),
            idel: mib("Ip", "InDelivers"),
            orq: mib("Ip", "OutRequests"),
            asmrq: mib("Ip", "ReasmReqds"),
            asmok: mib("Ip", "ReasmOKs"),
            fragok: mib("Ip", "FragOKs"),
            fragcrt: mib("Ip", "FragCreates"),
        }),
        eip: has(Keyword::Eip).then(|| EipRow {
            ihdrerr: mib("Ip", "InHdrErrors"),
            iadrerr: mib("Ip", "InAddrErrors"),
            iukwnpr: mib("Ip", "InUnknownProtos"),
            idisc: mib("Ip", "InDiscards"),
            odisc: mib("Ip", "OutDiscards"),
            onort: mib("Ip", "OutNoRoutes"),
            asmf: mib("Ip", "ReasmFails"),
            fragf: mib("Ip", "FragFails"),
        }),
        tcp: has(Keyword::Tcp).then(|| TcpRow {
            active: mib("Tcp", "ActiveOpens"),
            passive: mib("Tcp", "PassiveOpens"),
            iseg: mib("Tcp", "InSegs"),
            oseg: mib("Tcp", "OutSegs"),
        }),
        etcp: has(Keyword::Etcp).then(|| EtcpRow {
            atmptf: mib("Tcp", "AttemptFails"),
            estres: mib("Tcp", "EstabResets"),
            retrans: mib("Tcp", "RetransSegs"),
            isegerr: mib("Tcp", "InErrs"),
            orsts: mib("Tcp", "OutRsts"),
        }),
        udp: has(Keyword::Udp).then(|| UdpRow {
            idgm: mib("Udp", "InDatagrams"),
            odgm: mib("Udp", "OutDatagrams"),
            noport: mib("Udp", "NoPorts"),
            idgmerr: mib("Udp", "InErrors"),
        }),
        sock: has(Keyword::Sock).then(|| SockRow {
            totsck: sock("sockets", "used"),
            tcpsck: sock("TCP", "inuse"),
            udpsck: sock("UDP", "inuse"),
            rawsck: sock("RAW", "inuse"),
            ip_frag: sock("FRAG", "inuse"),
            tcp_tw: sock("TCP", "tw"),
        }),
        soft: has(Keyword::Soft).then(|| {
            let row = |cpu: String, it: &mut dyn Iterator<Item = &netsight_kernel::delta::SoftnetRates>| {
                let mut r = SoftRow { cpu, total: 0.0, dropd: 0.0, squeezd: 0.0, rx_rps: 0.0, flw_lim: 0.0, blg_len: 0.0 };
                for c in it {
                    r.total += c.processed;
                    r.dropd += c.dropped;
                    r.squeezd += c.time_squeeze;
                    r.rx_rps += c.received_rps;
                    r.flw_lim += c.flow_limit_count.unwrap_or(0.0);
                    r.blg_len += c.backlog_len.unwrap_or(0) as f64;
                }
                r
            };
            let mut rows = vec![row("all".into(), &mut rates.softnet.iter())];
            if per_cpu {
                for c in &rates.softnet {
                    rows.push(row(c.cpu.to_string(), &mut std::iter::once(c)));
                }
            }
            rows
        }),
        qdisc: has(Keyword::Qdisc).then(|| {
            rates
                .qdiscs
                .iter()
                .filter(|q| shown(q.link.as_deref().unwrap_or("?")))
                .map(|q| QdiscRow {
                    iface: q.link.clone().unwrap_or_else(|| "?".into()),
                    kind: q.kind.clone(),
                    handle: q.handle.clone(),
                    parent: q.parent.clone(),
                    kb: q.rates.bytes / 1024.0,
                    pck: q.rates.packets,
                    drop: q.rates.drops,
                    overlim: q.rates.overlimits,
                    requeue: q.rates.requeues,
                    backlog_bytes: q.backlog_bytes as f64,
                    qlen: q.qlen as f64,
                })
                .collect()
        }),
        conntrack: has(Keyword::Conntrack).then(|| ConntrackRow {
            entries: cur.conntrack.as_ref().and_then(|c| c.count),
            max: cur.conntrack.as_ref().and_then(|c| c.max),
            fill_percent: cur.conntrack.as_ref().and_then(|c| {
                let (count, max) = (c.count?, c.max?);
                (max > 0).then(|| count as f64 * 100.0 / max as f64)
            }),
            found: conntrack_rate("found"),
            new: conntrack_rate("new"),
            invalid: conntrack_rate("invalid"),
            insert_failed: conntrack_rate("insert_failed"),
            drop: conntrack_rate("drop"),
            early_drop: conntrack_rate("early_drop"),
            search_restart: conntrack_rate("search_restart"),
        }),
        counters: COUNTER_KEYWORDS
            .iter()
            .filter(|c| has(c.keyword))
            .map(|c| CounterRow {
                keyword: c.keyword,
                gauges: c.gauges,
                values: c
                    .columns
                    .iter()
                    .map(|(col, group, name)| (*col, if c.gauges { sock(group, name) } else { mib(group, name) }))
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positional_args_like_sar() {
        let a = |v: &[&str]| parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let r = a(&["DEV", "tcp", "2", "5"]).unwrap();
        assert_eq!(r.keywords, vec![Keyword::Dev, Keyword::Tcp]);
        let secs = |s: u64| Some(std::time::Duration::from_secs(s));
        assert_eq!((r.interval, r.count), (secs(2), Some(5)));
        let r = a(&["TCP", "500ms", "3"]).unwrap();
        assert_eq!(r.interval, Some(std::time::Duration::from_millis(500)));
        let r = a(&[]).unwrap();
        assert_eq!(
            (r.keywords, r.interval, r.count),
            (vec![Keyword::Dev], None, None)
        );
        for bad in ["-1", "nan", "inf", "1e300", "0s"] {
            assert!(a(&["DEV", bad]).is_err(), "{bad}");
        }
        assert_eq!(a(&["ALL"]).unwrap().keywords.len(), Keyword::ALL.len());
        assert!(a(&["BOGUS"]).unwrap_err().contains("unknown keyword"));
        assert!(a(&["DEV", "1", "TCP"]).is_err());
        assert!(a(&["DEV", "0"]).is_err());
        assert!(a(&["DEV", "1", "2.5"]).is_err());
        assert!(a(&["DEV", "1", "2", "3"]).is_err());
    }

    #[test]
    fn ifutil_matches_sysstat() {
        // 125 MB/s on a 1000 Mbit/s full-duplex link is 100 %.
        assert!((ifutil_percent(125e6, 1.0, Some(1000), Some("full")) - 100.0).abs() < 1e-9);
        assert!((ifutil_percent(50e6, 50e6, Some(1000), Some("half")) - 80.0).abs() < 1e-9);
        assert_eq!(ifutil_percent(1e9, 0.0, None, None), 0.0);
    }
}
