//! One sample as OpenMetrics text: the snapshot's counters (MIBs, links, qdiscs,
//! softnet per CPU, conntrack, sockstat, socket states and listeners), doctor's
//! findings with their evidence, and the sampler's own metrics. Encoded once per
//! sample, so a scrape copies bytes and every scrape of a sample agrees.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::LazyLock;

use netsight_kernel::Snapshot;
use netsight_report::Report;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// Caps on series whose number grows with the host: the rest are left out and
/// counted in `netsight_series_left_out{group}`.
#[derive(Debug, Clone)]
pub struct Limits {
    pub interfaces: usize,
    pub listeners: usize,
    pub findings: usize,
    /// Groups left out entirely: "mib", "link", "qdisc", "softnet", "conntrack",
    /// "sockstat", "sockets", "findings".
    pub exclude: Vec<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            interfaces: 64,
            listeners: 100,
            findings: 200,
            exclude: Vec::new(),
        }
    }
}

/// The groups `--exclude` takes.
pub const GROUPS: &[&str] = &[
    "mib",
    "link",
    "qdisc",
    "softnet",
    "conntrack",
    "sockstat",
    "sockets",
    "findings",
];

/// What the sampler knows after a sample.
#[derive(Debug, Clone)]
pub struct Sample {
    pub snapshot: Snapshot,
    /// doctor over the rolling window ending at this snapshot.
    pub report: Report,
    pub window_s: f64,
    /// Time to take the snapshot and to diagnose, seconds.
    pub collect_s: f64,
    pub diagnose_s: f64,
    pub samples_total: u64,
    /// Each part of the collection, as the sampler's time budget left it.
    pub parts: Vec<PartStatus>,
}

/// One part of the collection in the last sample.
#[derive(Debug, Clone)]
pub struct PartStatus {
    pub name: &'static str,
    /// How long its last collection took (so far, when still running).
    pub duration_s: f64,
    /// What is served was collected by an earlier sample (this one overran).
    pub stale: bool,
    /// Seconds since the value served was collected (NaN: none yet).
    pub age_s: f64,
    /// Sources within the part that could not be read.
    pub errors: usize,
    /// Samples in which this part overran its budget.
    pub overruns_total: u64,
}

type Labels = Vec<(String, String)>;

/// A softnet_stat column read off one CPU's row.
type SoftnetColumn = fn(&netsight_kernel::procfs::softnet::SoftnetCpu) -> Option<u64>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// "ListenOverflows" → "listen_overflows", "TCPTimeouts" → "tcp_timeouts".
pub fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            // A lone capital before a capitalised word joins it: "HMac" is "hmac".
            let lone_capital = prev_upper && out.rsplit('_').next().is_some_and(|w| w.len() == 1);
            if i > 0
                && (prev_lower || (prev_upper && next_lower && !lone_capital))
                && !out.ends_with('_')
            {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// HELP text of a MIB counter: explain's meaning, once per process.
fn mib_help(group: &str, name: &str) -> String {
    static CACHE: LazyLock<std::sync::Mutex<BTreeMap<String, String>>> =
        LazyLock::new(Default::default);
    let key = format!("{group}.{name}");
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(key.clone())
        .or_insert_with(|| match netsight_doctor::explain::explain(&key) {
            Ok(e) => format!("{key}: {}", e.meaning),
            Err(_) => format!("{key} (/proc/net/snmp, netstat or snmp6)"),
        })
        .clone()
}

/// Encodes one sample; registered for one encode, so it shares the sample
/// (prometheus-client wants a 'static collector) instead of copying it.
#[derive(Debug)]
struct SampleCollector {
    sample: std::sync::Arc<Sample>,
    limits: Limits,
}

/// Rows of one family: label set and value.
struct Family<'e, 'w> {
    encoder: &'e mut DescriptorEncoder<'w>,
}

impl<'w> Family<'_, 'w> {
    fn counter(&mut self, name: &str, help: &str, rows: &[(Labels, u64)]) -> fmt::Result {
        if rows.is_empty() {
            return Ok(());
        }
        let mut metric = self
            .encoder
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        for (labels, value) in rows {
            if labels.is_empty() {
                ConstCounter::new(*value).encode(metric)?;
                break;
            }
            ConstCounter::new(*value).encode(metric.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn gauge(&mut self, name: &str, help: &str, rows: &[(Labels, f64)]) -> fmt::Result {
        if rows.is_empty() {
            return Ok(());
        }
        let mut metric = self
            .encoder
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (labels, value) in rows {
            if labels.is_empty() {
                ConstGauge::new(*value).encode(metric)?;
                break;
            }
            ConstGauge::new(*value).encode(metric.encode_family(labels)?)?;
        }
        Ok(())
    }
}

impl SampleCollector {
    fn wants(&self, group: &str) -> bool {
        !self.limits.exclude.iter().any(|g| g == group)
    }

    fn encode_all(
        &self,
        f: &mut Family,
        left_out: &mut BTreeMap<&'static str, usize>,
    ) -> fmt::Result {
        let snap = &self.sample.snapshot;
        if self.wants("mib") {
            let mut seen = HashSet::new();
            for (group, counters) in &snap.mib {
                for (name, &value) in counters {
                    let metric = format!("{}_{}", snake(group), snake(name));
                    if !seen.insert(metric.clone()) {
                        continue;
                    }
                    let help = mib_help(group, name);
                    let gauge = netsight_kernel::delta::MIB_GAUGES
                        .contains(&(group.as_str(), name.as_str()));
                    if gauge || value < 0 {
                        f.gauge(&metric, &help, &[(Vec::new(), value as f64)])?;
                    } else {
                        f.counter(&metric, &help, &[(Vec::new(), value as u64)])?;
                    }
                }
            }
        }
        // Interfaces: physical first, then by name, capped.
        let mut links: Vec<&netsight_kernel::link::Link> = snap.links.iter().collect();
        links.sort_by_key(|l| (!l.is_physical(), l.name.clone()));
        if links.len() > self.limits.interfaces {
            left_out.insert("interfaces", links.len() - self.limits.interfaces);
            links.truncate(self.limits.interfaces);
        }
        let kept: HashSet<&str> = links.iter().map(|l| l.name.as_str()).collect();
        if self.wants("link") {
            let mut by_field: BTreeMap<&str, Vec<(Labels, u64)>> = BTreeMap::new();
            for l in &links {
                for (field, value) in l.stats.named() {
                    by_field
                        .entry(field)
                        .or_default()
                        .push((labels(&[("interface", &l.name)]), value));
                }
            }
            for (field, rows) in by_field {
                let help = match netsight_doctor::inventory::find("link", field) {
                    Some(s) => format!("link.{field}: {}", s.meaning),
                    None => format!("link.{field} (IFLA_STATS64)"),
                };
                f.counter(&format!("link_{field}"), &help, &rows)?;
            }
            let up: Vec<(Labels, f64)> = links
                .iter()
                .map(|l| {
                    (
                        labels(&[("interface", &l.name)]),
                        f64::from(u8::from(l.admin_up && l.lower_up)),
                    )
                })
                .collect();
            f.gauge(
                "link_up",
                "1 when the interface is administratively up and has carrier",
                &up,
            )?;
            let mtu: Vec<(Labels, f64)> = links
                .iter()
                .filter_map(|l| Some((labels(&[("interface", &l.name)]), f64::from(l.mtu?))))
                .collect();
            f.gauge("link_mtu_bytes", "The interface's MTU in bytes", &mtu)?;
            let speed: Vec<(Labels, f64)> = links
                .iter()
                .filter_map(|l| {
                    Some((
                        labels(&[("interface", &l.name)]),
                        l.line_rate_mbps()? as f64 * 1e6,
                    ))
                })
                .collect();
            f.gauge(
                "link_speed_bits_per_second",
                "Negotiated line rate of a physical NIC in bits per second (virtual devices report none)",
                &speed,
            )?;
        }
        if self.wants("qdisc") {
            let qdiscs: Vec<_> = snap
                .qdiscs
                .iter()
                .filter(|q| q.link.as_deref().is_some_and(|l| kept.contains(l)))
                .collect();
            let label = |q: &netsight_kernel::qdisc::Qdisc| {
                labels(&[
                    ("interface", q.link.as_deref().unwrap_or("")),
                    ("kind", &q.kind),
                    ("handle", &q.handle),
                    ("parent", &q.parent),
                ])
            };
            let mut by_field: BTreeMap<&str, Vec<(Labels, u64)>> = BTreeMap::new();
            for q in &qdiscs {
                for (field, value) in q.counters.named() {
                    by_field.entry(field).or_default().push((label(q), value));
                }
            }
            for (field, rows) in by_field {
                let help = match netsight_doctor::inventory::find("qdisc", field) {
                    Some(s) => format!("qdisc.{field}: {}", s.meaning),
                    None => format!("qdisc.{field} (tc -s qdisc)"),
                };
                f.counter(&format!("qdisc_{field}"), &help, &rows)?;
            }
            let backlog: Vec<(Labels, f64)> = qdiscs
                .iter()
                .map(|q| (label(q), q.backlog_bytes as f64))
                .collect();
            f.gauge(
                "qdisc_backlog_bytes",
                "Bytes queued in the qdisc now",
                &backlog,
            )?;
            let qlen: Vec<(Labels, f64)> =
                qdiscs.iter().map(|q| (label(q), q.qlen as f64)).collect();
            f.gauge(
                "qdisc_queue_packets",
                "Packets queued in the qdisc now",
                &qlen,
            )?;
        }
        if self.wants("softnet") {
            let cpu = |c: &netsight_kernel::procfs::softnet::SoftnetCpu| {
                labels(&[("cpu", &c.cpu.to_string())])
            };
            let columns: [(&str, SoftnetColumn); 5] = [
                ("processed", |c| Some(c.processed)),
                ("dropped", |c| Some(c.dropped)),
                ("time_squeeze", |c| Some(c.time_squeeze)),
                ("received_rps", |c| Some(c.received_rps)),
                ("flow_limit_count", |c| c.flow_limit_count),
            ];
            for (column, get) in columns {
                let rows: Vec<(Labels, u64)> = snap
                    .softnet
                    .iter()
                    .filter_map(|c| Some((cpu(c), get(c)?)))
                    .collect();
                let help = match netsight_doctor::inventory::find("softnet", column) {
                    Some(s) => format!("softnet_stat.{column}: {}", s.meaning),
                    None => format!("softnet_stat.{column}"),
                };
                f.counter(&format!("softnet_{column}"), &help, &rows)?;
            }
        }
        if let (true, Some(ct)) = (self.wants("conntrack"), &snap.conntrack) {
            if let Some(count) = ct.count {
                f.gauge(
                    "conntrack_entries",
                    "Connection-tracking entries now (nf_conntrack_count)",
                    &[(Vec::new(), count as f64)],
                )?;
            }
            if let Some(max) = ct.max {
                f.gauge(
                    "conntrack_entries_limit",
                    "The connection-tracking table's limit (nf_conntrack_max)",
                    &[(Vec::new(), max as f64)],
                )?;
            }
            for (stat, &value) in &ct.stats {
                if matches!(stat.as_str(), "entries" | "chainlength") {
                    continue;
                }
                let help = match netsight_doctor::inventory::find("nf_conntrack", stat) {
                    Some(s) => format!("nf_conntrack.{stat}: {}", s.meaning),
                    None => format!("nf_conntrack.{stat} (conntrack -S)"),
                };
                f.counter(
                    &format!("conntrack_{}", snake(stat)),
                    &help,
                    &[(Vec::new(), value)],
                )?;
            }
        }
        if self.wants("sockstat") {
            let (mut sockets, mut pages) = (Vec::new(), Vec::new());
            for (protocol, fields) in &snap.sockstat {
                for (field, &value) in fields {
                    match field.as_str() {
                        "mem" => pages.push((labels(&[("protocol", protocol)]), value as f64)),
                        "memory" => {}
                        _ => sockets.push((
                            labels(&[("protocol", protocol), ("kind", field)]),
                            value as f64,
                        )),
                    }
                }
            }
            f.gauge("sockstat_sockets", "/proc/net/sockstat{,6}: sockets by protocol (inuse, orphan, tw, alloc; sockets used)", &sockets)?;
            f.gauge(
                "sockstat_memory_pages",
                "/proc/net/sockstat: TCP/UDP buffer memory in pages (compare net.ipv4.tcp_mem)",
                &pages,
            )?;
        }
        if let (true, Some(table)) = (self.wants("sockets"), &snap.sockets) {
            let summary =
                netsight_kernel::sockets::summary::summarize(table, &snap.sockstat, &snap.sysctls);
            let mut states = Vec::new();
            for (protocol, by_state) in &summary.by_state {
                for (state, &n) in by_state {
                    states.push((
                        labels(&[("protocol", protocol), ("state", state)]),
                        n as f64,
                    ));
                }
            }
            f.gauge(
                "sockets",
                "Sockets by protocol and state (sock_diag)",
                &states,
            )?;
            let mut listeners = summary.listeners.clone();
            listeners.sort_by(|a, b| b.fill_percent.total_cmp(&a.fill_percent));
            if listeners.len() > self.limits.listeners {
                left_out.insert("listeners", listeners.len() - self.limits.listeners);
                listeners.truncate(self.limits.listeners);
            }
            let label = |l: &netsight_kernel::sockets::summary::ListenerFill| {
                labels(&[
                    ("address", &l.local_addr.to_string()),
                    ("port", &l.local_port.to_string()),
                    ("process", l.comm.as_deref().unwrap_or("")),
                ])
            };
            let queue: Vec<(Labels, f64)> = listeners
                .iter()
                .map(|l| (label(l), f64::from(l.accept_queue)))
                .collect();
            f.gauge(
                "listener_accept_queue_connections",
                "Connections completed but not yet accepted, per listener",
                &queue,
            )?;
            let backlog: Vec<(Labels, f64)> = listeners
                .iter()
                .map(|l| (label(l), f64::from(l.backlog)))
                .collect();
            f.gauge(
                "listener_backlog_connections",
                "The listener's accept queue limit: min(listen() backlog, net.core.somaxconn)",
                &backlog,
            )?;
        }
        if self.wants("findings") {
            self.encode_findings(f, left_out)?;
        }
        Ok(())
    }

    fn encode_findings(
        &self,
        f: &mut Family,
        left_out: &mut BTreeMap<&'static str, usize>,
    ) -> fmt::Result {
        let mut all: Vec<&netsight_report::Finding> = Vec::new();
        for finding in &self.sample.report.findings {
            all.push(finding);
            all.extend(finding.symptoms.iter());
        }
        if all.len() > self.limits.findings {
            left_out.insert("findings", all.len() - self.limits.findings);
            all.truncate(self.limits.findings);
        }
        let (mut present, mut evidence) = (Vec::new(), Vec::new());
        for finding in &all {
            let subject = finding.subject.as_deref().unwrap_or("");
            present.push((
                labels(&[
                    ("rule", &finding.rule_id),
                    ("layer", finding.layer.as_str()),
                    ("severity", finding.severity.as_str()),
                    ("subject", subject),
                ]),
                1.0,
            ));
            for e in finding.evidence.iter().filter(|e| e.unit != "text") {
                evidence.push((
                    labels(&[
                        ("rule", &finding.rule_id),
                        ("subject", subject),
                        ("metric", &e.metric),
                        ("unit", &e.unit),
                    ]),
                    e.value,
                ));
            }
        }
        f.gauge("finding", "A doctor finding active over the sampler's window (1 while active); netsight explain RULE says what it means", &present)?;
        f.gauge(
            "finding_evidence",
            "The values a finding's rule compared, in the unit of the unit label",
            &evidence,
        )?;
        Ok(())
    }
}

impl Collector for SampleCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let mut left_out = BTreeMap::new();
        let mut family = Family {
            encoder: &mut encoder,
        };
        self.encode_all(&mut family, &mut left_out)?;
        let s = &self.sample;
        family.gauge(
            "sample_window_seconds",
            "The window doctor's rules ran over",
            &[(Vec::new(), s.window_s)],
        )?;
        let mut durations = vec![
            (labels(&[("source", "snapshot")]), s.collect_s),
            (labels(&[("source", "diagnose")]), s.diagnose_s),
        ];
        let per_part = |value: &dyn Fn(&PartStatus) -> f64| -> Vec<(Labels, f64)> {
            s.parts
                .iter()
                .map(|p| (labels(&[("source", p.name)]), value(p)))
                .collect()
        };
        durations.extend(per_part(&|p| p.duration_s));
        family.gauge(
            "source_duration_seconds",
            "Time the last sample took: in all (snapshot), diagnosing, and per source (the last collection of it, or so far while it overruns its budget)",
            &durations,
        )?;
        family.gauge(
            "source_stale",
            "1 when the source overran its time budget (--source-budget) and its last value is served",
            &per_part(&|p| f64::from(u8::from(p.stale))),
        )?;
        family.gauge(
            "source_age_seconds",
            "Seconds between the collection of the value served and this sample, per source",
            &per_part(&|p| p.age_s),
        )?;
        family.gauge(
            "source_errors",
            "Entries of the source that could not be read in the value served (reasons: netsight_source_skipped)",
            &per_part(&|p| p.errors as f64),
        )?;
        let overruns: Vec<(Labels, u64)> = s
            .parts
            .iter()
            .map(|p| (labels(&[("source", p.name)]), p.overruns_total))
            .collect();
        family.counter(
            "source_overruns",
            "Samples in which the source overran its time budget",
            &overruns,
        )?;
        family.counter(
            "samples",
            "Samples taken since start",
            &[(Vec::new(), s.samples_total)],
        )?;
        family.gauge(
            "sample_timestamp_seconds",
            "When the last sample was taken (Unix time)",
            &[(Vec::new(), s.snapshot.meta.taken_at_unix_ms as f64 / 1000.0)],
        )?;
        let skipped: Vec<(Labels, f64)> = s
            .report
            .skipped
            .iter()
            .take(100)
            .map(|k| {
                let reason: String = k.reason.chars().take(120).collect();
                (labels(&[("source", &k.source), ("reason", &reason)]), 1.0)
            })
            .collect();
        family.gauge(
            "source_skipped",
            "A source this sample could not read, with why (1 while skipped)",
            &skipped,
        )?;
        let left: Vec<(Labels, f64)> = left_out
            .iter()
            .map(|(group, n)| (labels(&[("group", group)]), *n as f64))
            .collect();
        family.gauge("series_left_out", "Objects left out by the cardinality caps (--max-interfaces, --max-listeners, --max-findings)", &left)?;
        Ok(())
    }
}

/// The sample as OpenMetrics text (ends with "# EOF").
pub fn encode(sample: std::sync::Arc<Sample>, limits: &Limits) -> String {
    let mut registry = Registry::with_prefix("netsight");
    registry.register_collector(Box::new(SampleCollector {
        sample,
        limits: limits.clone(),
    }));
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
        out = "# EOF\n".to_string();
    }
    out
}

/// The same families in Prometheus' text format 0.0.4, for clients that do not ask
/// for OpenMetrics (promtool, curl, older scrapers): a counter's HELP and TYPE name
/// its `_total` series, and there is no `# EOF`.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + counters.len() * 12);
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rest = line
            .strip_prefix("# HELP ")
            .map(|r| ("# HELP ", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("# TYPE ", r)));
        match rest {
            Some((prefix, r)) => {
                let (name, tail) = r.split_once(' ').unwrap_or((r, ""));
                let name = if counters.contains(name) {
                    format!("{name}_total")
                } else {
                    name.to_string()
                };
                out += &format!("{prefix}{name} {tail}\n");
            }
            None => {
                out += line;
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_counters_by_their_series() {
        let om = "# HELP a_b Help.\n# TYPE a_b counter\na_b_total 3\n# HELP g Gauge.\n# TYPE g gauge\ng{x=\"1\"} 2.0\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_b_total Help.\n# TYPE a_b_total counter\na_b_total 3\n# HELP g Gauge.\n# TYPE g gauge\ng{x=\"1\"} 2.0\n"
        );
    }

    #[test]
    fn kernel_names_become_prometheus_names() {
        assert_eq!(snake("ListenOverflows"), "listen_overflows");
        assert_eq!(snake("TCPTimeouts"), "tcp_timeouts");
        assert_eq!(snake("TcpExt"), "tcp_ext");
        assert_eq!(snake("Ip6"), "ip6");
        assert_eq!(snake("InCsumErrors"), "in_csum_errors");
        assert_eq!(snake("search_restart"), "search_restart");
        assert_eq!(snake("TCPSACKReneging"), "tcpsack_reneging");
        assert_eq!(snake("MPJoinAckHMacFailure"), "mp_join_ack_hmac_failure");
        assert_eq!(snake("InCEPkts"), "in_ce_pkts");
    }
}
