//! `netsight analyze`: a capture file (or stdin) → flows, expert flags, diagnoses.

use std::io::{self, Write};

use anyhow::{Context, Result};
use netsight_packet::flows::{Flow, Protocol};
use netsight_packet::Analysis;

use crate::cli::AnalyzeArgs;

pub fn run(args: &AnalyzeArgs) -> Result<()> {
    let mut analysis = if args.file.as_os_str() == "-" {
        netsight_packet::analyze_reader("<stdin>", io::stdin()).with_context(|| "analyze")?
    } else {
        netsight_packet::analyze_file(&args.file).with_context(|| "analyze")?
    };
    if let Some(filter) = &args.flow {
        analysis.retain_flows(filter);
    }
    let shown = if args.all_flows || args.top == 0 {
        usize::MAX
    } else {
        args.top
    };
    let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    if args.json {
        // The busiest `shown` flows; the diagnoses and expert totals cover every flow.
        let total = analysis.flows.len();
        analysis
            .flows
            .sort_by_key(|f| std::cmp::Reverse(f.total_bytes()));
        analysis.flows.truncate(shown);
        let view = AnalysisJson {
            flows_total: total,
            analysis: &analysis,
        };
        serde_json::to_writer_pretty(&mut out, &view)?;
        writeln!(out)?;
    } else {
        render_analysis(&mut out, &analysis, shown)?;
    }
    out.flush()?;
    if let Some(stopped) = &analysis.capture.stopped {
        return Err(
            crate::exit::DamagedInput(format!("{}: {stopped}", args.file.display())).into(),
        );
    }
    Ok(())
}

/// `analyze --json`: the analysis with how many flows there were before `--top`.
#[derive(serde::Serialize)]
struct AnalysisJson<'a> {
    flows_total: usize,
    #[serde(flatten)]
    analysis: &'a Analysis,
}

fn render_analysis(out: &mut impl Write, a: &Analysis, top: usize) -> io::Result<()> {
    let p = &a.packets;
    writeln!(
        out,
        "{}: {} {} frames ({} TCP, {} UDP, {} ICMP errors, {} other IP)",
        a.file, a.capture.format, p.frames, p.tcp, p.udp, p.icmp_errors, p.other_ip
    )?;
    let skipped = p.skipped_link_type + p.skipped_not_ip + p.skipped_truncated + p.skipped_fragment;
    if skipped > 0 {
        writeln!(
            out,
            "  skipped {skipped}: {} unsupported link type, {} not IP, {} truncated headers, {} IP fragments",
            p.skipped_link_type, p.skipped_not_ip, p.skipped_truncated, p.skipped_fragment
        )?;
    }
    if let Some(stopped) = &a.capture.stopped {
        writeln!(
            out,
            "  warning: reading stopped early: {stopped}; results cover the frames before it"
        )?;
    }

    for h in &a.half_open_folded {
        writeln!(
            out,
            "  aggregated: {} half-open attempts to {} ({} SYNs, {} answered by SYN/ACK, {} by RST, {} unanswered) from {} sources",
            h.attempts,
            h.server.map_or_else(|| "?".to_string(), |s| s.to_string()),
            h.syns,
            h.answered_synack,
            h.answered_rst,
            h.unanswered,
            h.sources
        )?;
    }
    let mut flows: Vec<&Flow> = a.flows.iter().collect();
    flows.sort_by_key(|f| std::cmp::Reverse(f.total_bytes()));
    let shown = top.min(flows.len());
    writeln!(out)?;
    writeln!(
        out,
        "FLOWS ({} total{})",
        flows.len(),
        if shown < flows.len() {
            format!(", {shown} busiest shown; --all-flows for all")
        } else {
            String::new()
        }
    )?;
    writeln!(
        out,
        "{:>5} {:<5} {:<44} {:>14} {:>21} {:>8} {:>10} {:>10} {:>9} {:>21} {:>11} {:>7}",
        "strm",
        "proto",
        "A → B",
        "pkts A→B/B→A",
        "bytes A→B/B→A",
        "dur s",
        "Mbit/s A→B",
        "Mbit/s B→A",
        "hs rtt ms",
        "rtt min/avg/max ms",
        "mss A/B",
        "retrans"
    )?;
    for f in &flows[..shown] {
        let proto = match f.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        let ms = |us: f64| us / 1000.0;
        let hs = f
            .handshake
            .and_then(|h| h.rtt_us)
            .map_or_else(|| "-".to_string(), |r| format!("{:.3}", ms(r)));
        let rtt = if f.rtt.samples > 0 {
            format!(
                "{:.2}/{:.2}/{:.2}",
                ms(f.rtt.min_us),
                ms(f.rtt.avg_us),
                ms(f.rtt.max_us)
            )
        } else {
            "-".to_string()
        };
        let mss = |m: Option<u16>| m.map_or_else(|| "-".to_string(), |m| m.to_string());
        writeln!(
            out,
            "{:>5} {:<5} {:<44} {:>14} {:>21} {:>8.3} {:>10} {:>10} {:>9} {:>21} {:>11} {:>7}",
            f.stream,
            proto,
            format!("{} → {}", f.a, f.b),
            format!("{}/{}", f.a_to_b.packets, f.b_to_a.packets),
            format!("{}/{}", f.a_to_b.bytes, f.b_to_a.bytes),
            f.duration_s,
            mbit(f.a_to_b_bits_per_s),
            mbit(f.b_to_a_bits_per_s),
            hs,
            rtt,
            format!("{}/{}", mss(f.a_to_b.mss), mss(f.b_to_a.mss)),
            f.expert.retransmission
        )?;
    }

    writeln!(out)?;
    writeln!(out, "EXPERT (tcp.analysis)")?;
    let entries: Vec<String> = a
        .expert
        .entries()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    if entries.is_empty() {
        writeln!(out, "  nothing flagged")?;
    } else {
        writeln!(out, "  {}", entries.join(", "))?;
    }

    writeln!(out)?;
    writeln!(out, "DIAGNOSES")?;
    if a.diagnoses.is_empty() {
        writeln!(
            out,
            "  none: no loss, stall, black-hole or flood pattern in these packets"
        )?;
    }
    for d in &a.diagnoses {
        writeln!(out, "  [{}] {}  ({})", d.severity, d.title, d.id)?;
        for e in &d.evidence {
            writeln!(out, "      evidence: {e}")?;
        }
        writeln!(out, "      why:      {}", d.explanation)?;
        writeln!(out, "      fix:      {}", d.fix)?;
    }
    Ok(())
}

fn mbit(bits_per_s: Option<f64>) -> String {
    bits_per_s.map_or_else(|| "-".to_string(), |b| format!("{:.2}", b / 1e6))
}
