//! Text rendering of a doctor report: findings worst first, then the workload.

use std::fmt::Write as _;

use netsight_doctor::rules::Rule;
use netsight_report::{Evidence, Finding, Report, Severity};

/// ANSI colours (see `term::color_stdout`: --color, a terminal, NO_COLOR).
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn severity(&self, s: Severity) -> String {
        match s {
            Severity::Critical => self.paint("1;31", "CRITICAL"),
            Severity::Warning => self.paint("1;33", "WARNING "),
            Severity::Info => self.paint("36", "INFO    "),
        }
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn evidence_line(e: &Evidence) -> String {
    if e.unit == "text" {
        return e.metric.clone();
    }
    let unit = match e.unit.as_str() {
        "per_s" => "/s",
        "percent" => "%",
        "count" | "setting" | "bool" => "",
        other => other,
    };
    let sep = if unit.is_empty() || unit == "%" || unit == "/s" {
        ""
    } else {
        " "
    };
    let mut s = format!("{} = {}{sep}{unit}", e.metric, number(e.value));
    if let Some(t) = e.threshold {
        let _ = write!(s, "  (threshold {}{sep}{unit})", number(t));
    }
    s
}

/// A finding explained by another: its title and evidence, indented under its cause.
fn write_symptom(out: &mut String, f: &Finding, depth: usize) {
    let pad = "  ".repeat(depth);
    let _ = writeln!(
        out,
        "         {pad}explains: {} {} ({})",
        format!("{:?}", f.severity).to_lowercase(),
        f.title,
        f.rule_id
    );
    for e in &f.evidence {
        let _ = writeln!(out, "         {pad}  evidence: {}", evidence_line(e));
    }
    for s in &f.symptoms {
        write_symptom(out, s, depth + 1);
    }
}

pub fn render(report: &Report, header: &str, style: Style) -> String {
    let mut out = format!("{header}\n\n");
    if report.findings.is_empty() {
        let _ = writeln!(out, "No problems found by {} rules.\n", report.rules_run);
    }
    for f in &report.findings {
        let subject = f
            .subject
            .as_deref()
            .map(|s| format!(" [{s}]"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {}{}  ({})",
            style.severity(f.severity),
            style.paint("1", &f.title),
            subject,
            f.rule_id
        );
        for e in &f.evidence {
            let _ = writeln!(out, "         evidence: {}", evidence_line(e));
        }
        let _ = writeln!(out, "         why:      {}", f.why);
        for c in &f.confirm {
            let _ = writeln!(out, "         confirm:  {c}");
        }
        for x in &f.fix {
            let _ = writeln!(out, "         fix:      {x}");
        }
        for symptom in &f.symptoms {
            write_symptom(&mut out, symptom, 1);
        }
        out.push('\n');
    }

    let w = &report.workload;
    let _ = writeln!(
        out,
        "{} (over {:.1} s)",
        style.paint("1", "Workload"),
        w.interval_s
    );
    for i in w
        .interfaces
        .iter()
        .filter(|i| i.rx_packets_per_s + i.tx_packets_per_s > 0.0)
    {
        let util = i
            .utilization_percent
            .map(|u| format!(", {u:.1} % of link"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<12} rx {:.2} Mbit/s {:.0} pkt/s   tx {:.2} Mbit/s {:.0} pkt/s   {:.0} B/packet{util}",
            i.name, i.rx_mbit_per_s, i.rx_packets_per_s, i.tx_mbit_per_s, i.tx_packets_per_s, i.avg_packet_bytes
        );
    }
    let _ = writeln!(
        out,
        "  TCP {:.1} new connections/s ({:.1} out, {:.1} in), {:.0} segments/s, {} established; UDP {:.0} datagrams/s; ICMP {:.0} messages/s",
        w.tcp_connections_per_s,
        w.tcp_active_opens_per_s,
        w.tcp_passive_opens_per_s,
        w.tcp_segments_per_s,
        w.tcp_established.map(|e| e.to_string()).unwrap_or_else(|| "?".into()),
        w.udp_datagrams_per_s,
        w.icmp_messages_per_s
    );
    for (label, list) in [
        ("by bytes", &w.top_sockets_by_bytes),
        ("by retransmits", &w.top_sockets_by_retrans),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  Top sockets {label}:");
        for s in list {
            let _ = writeln!(
                out,
                "    {:<22} -> {:<22} {:<10} {:>12} B  retrans {:>5}  rtt {:.2} ms  {}",
                s.local,
                s.peer,
                s.state,
                s.bytes,
                s.total_retrans,
                s.rtt_ms,
                s.process.as_deref().unwrap_or("-")
            );
        }
    }
    if let Some(deep) = &report.deep {
        let title = style.paint("1", "Traced during the interval");
        let _ = writeln!(out, "\n{title} (eBPF, {:.1} s)", deep.seconds);
        for (label, list) in [
            ("retransmitting connections", &deep.retrans_flows),
            ("retransmission kinds", &deep.retrans_kinds),
        ] {
            if list.is_empty() {
                continue;
            }
            let items: Vec<String> = list
                .iter()
                .take(5)
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(out, "  {label}: {}", items.join(", "));
        }
        if deep.lost_events > 0 {
            let _ = writeln!(out, "  {} events lost (ring buffer full)", deep.lost_events);
        }
    }
    if let Some(drops) = &report.kernel_drops {
        let total: u64 = drops.cells.iter().map(|c| c.count).sum();
        let title = style.paint("1", "Kernel drops");
        let _ = writeln!(
            out,
            "\n{title} (kfree_skb, counted in the kernel over {:.1} s): {total}",
            drops.seconds
        );
        for c in drops.cells.iter().take(5) {
            let _ = writeln!(
                out,
                "  {:<24} {:>9}  at {}  (net:[{}])",
                c.reason, c.count, c.location, c.netns
            );
        }
        if drops.lost > 0 {
            let _ = writeln!(out, "  {} drops not counted (count map full)", drops.lost);
        }
    }
    if !report.skipped.is_empty() {
        let _ = writeln!(out, "\nNot checked:");
        for s in &report.skipped {
            let _ = writeln!(out, "  {}: {}", s.source, s.reason);
        }
    }
    out
}

pub fn render_rules(rules: &[&Rule]) -> String {
    let mut out = String::new();
    for r in rules {
        let _ = writeln!(
            out,
            "{:<32} {:<10} {:<14} {}\n{:<58} thresholds: {}",
            r.id,
            format!("{:?}", r.layer).to_lowercase(),
            format!("{:?}", r.kind).to_lowercase(),
            r.title,
            "",
            r.thresholds
        );
    }
    let _ = writeln!(out, "{} rules", rules.len());
    out
}
