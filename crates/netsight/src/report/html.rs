//! `report --html`: one self-contained file. Inline SVG line charts
//! (throughput, packet rate, retransmissions, drops per layer), a findings
//! timeline, the incidents and movers; no script, font or style from elsewhere.

use std::fmt::Write as _;

use super::{ChartPoint, HistoryReport};
use crate::clock;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 28.0;
/// The plot area's fill: tests find the charts in a screenshot by it.
pub const PLOT_BACKGROUND: &str = "#f4f6fa";

/// Each series' colour, distinct across the page.
pub const SERIES_COLOURS: &[(&str, &str)] = &[
    ("rx", "#1f77b4"),
    ("tx", "#ff7f0e"),
    ("rx packets", "#2ca02c"),
    ("tx packets", "#d62728"),
    ("retransmitted", "#9467bd"),
    ("link", "#8c564b"),
    ("softnet", "#e377c2"),
    ("qdisc", "#7f7f7f"),
    ("ip", "#bcbd22"),
    ("udp", "#17becf"),
    ("tcp", "#393b79"),
];

fn colour(name: &str) -> &'static str {
    SERIES_COLOURS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
        .unwrap_or("#000000")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// 1234567 → "1.23M": axis labels.
fn si(v: f64) -> String {
    let a = v.abs();
    let (d, p) = if a >= 1e12 {
        (1e12, "T")
    } else if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let n = format!("{:.2}", v / d);
    let n = n.trim_end_matches('0').trim_end_matches('.');
    format!("{n}{p}")
}

/// A named line and how to read its value from a chart point.
type Series<'a> = (&'a str, &'a dyn Fn(&ChartPoint) -> f64);

fn line_chart(
    out: &mut String,
    title: &str,
    unit: &str,
    points: &[ChartPoint],
    series: &[Series<'_>],
) {
    let (t0, t1) = match (points.first(), points.last()) {
        (Some(a), Some(b)) => (a.at_unix_ms as f64, b.at_unix_ms as f64),
        _ => (0.0, 1.0),
    };
    let span = (t1 - t0).max(1.0);
    let max = points
        .iter()
        .flat_map(|p| series.iter().map(move |(_, f)| f(p)))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let top = if max > 0.0 { max * 1.1 } else { 1.0 };
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let x = |t: f64| LEFT + (t - t0) / span * pw;
    let y = |v: f64| TOP + ph - (v.max(0.0) / top).min(1.0) * ph;
    let _ = write!(
        out,
        "<section class=\"chart\"><h2>{}</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\">",
        escape(title),
        escape(title)
    );
    let _ = write!(
        out,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw}\" height=\"{ph}\" fill=\"{PLOT_BACKGROUND}\"/>"
    );
    for i in 0..=4 {
        let v = top * i as f64 / 4.0;
        let yy = y(v);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#d0d4dc\" stroke-width=\"0.5\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" class=\"axis\">{}</text>",
            LEFT + pw,
            LEFT - 6.0,
            yy + 4.0,
            si(v)
        );
    }
    for i in 0..=4 {
        let t = t0 + span * i as f64 / 4.0;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"{}\" class=\"axis\">{}</text>",
            x(t),
            HEIGHT - 8.0,
            match i {
                0 => "start",
                4 => "end",
                _ => "middle",
            },
            clock::seconds(t.max(0.0) as u64)
        );
    }
    for (name, f) in series {
        let path: Vec<String> = points
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.at_unix_ms as f64), y(f(p))))
            .collect();
        if path.len() == 1 {
            // One interval: a short flat stroke, still visible.
            let _ = write!(
                out,
                "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"/>",
                LEFT + pw,
                path[0].split(',').nth(1).unwrap_or("0"),
                path[0].split(',').nth(1).unwrap_or("0"),
                colour(name)
            );
        } else {
            let _ = write!(
                out,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
                colour(name),
                path.join(" ")
            );
        }
    }
    out.push_str("</svg><p class=\"legend\">");
    for (name, _) in series {
        let _ = write!(
            out,
            "<span><i style=\"background:{}\"></i>{}</span>",
            colour(name),
            escape(name)
        );
    }
    let _ = write!(
        out,
        "<span class=\"unit\">{}</span></p></section>",
        escape(unit)
    );
}

fn timeline(out: &mut String, r: &HistoryReport) {
    let (t0, t1) = (r.window.since_unix_ms as f64, r.window.until_unix_ms as f64);
    let span = (t1 - t0).max(1.0);
    let mut rows: Vec<(String, String)> = r
        .incidents
        .iter()
        .map(|i| (i.netns.clone(), i.rule_id.clone()))
        .collect();
    rows.sort();
    rows.dedup();
    let row_h = 22.0;
    let h = TOP + BOTTOM + row_h * rows.len().max(1) as f64;
    let pw = WIDTH - 260.0 - RIGHT;
    let x = |t: f64| 260.0 + ((t - t0) / span).clamp(0.0, 1.0) * pw;
    let _ = write!(
        out,
        "<section class=\"chart\"><h2>Findings timeline</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{h}\" viewBox=\"0 0 {WIDTH} {h}\" role=\"img\" aria-label=\"findings timeline\"><rect x=\"260\" y=\"{TOP}\" width=\"{pw}\" height=\"{}\" fill=\"{PLOT_BACKGROUND}\"/>",
        h - TOP - BOTTOM
    );
    if rows.is_empty() {
        let _ = write!(
            out,
            "<text x=\"270\" y=\"{}\" class=\"axis\">no rule fired in this window</text>",
            TOP + 15.0
        );
    }
    for (n, (netns, rule)) in rows.iter().enumerate() {
        let yy = TOP + row_h * n as f64;
        let _ = write!(
            out,
            "<text x=\"254\" y=\"{:.1}\" text-anchor=\"end\" class=\"axis\">{}{}</text>",
            yy + 15.0,
            escape(rule),
            if netns == super::HOST {
                String::new()
            } else {
                format!(" ({})", escape(netns))
            }
        );
        for i in r
            .incidents
            .iter()
            .filter(|i| &i.netns == netns && &i.rule_id == rule)
        {
            let fill = match i.severity {
                netsight_report::Severity::Critical => "#c62828",
                netsight_report::Severity::Warning => "#ef8f00",
                netsight_report::Severity::Info => "#5c8ddb",
            };
            let (a, b) = (x(i.started_at_ms as f64), x(i.ended_at_ms as f64));
            let _ = write!(
                out,
                "<rect x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{}\" fill=\"{fill}\"><title>{} {} .. {}</title></rect>",
                yy + 4.0,
                (b - a).max(2.0),
                row_h - 8.0,
                escape(&i.title),
                clock::seconds(i.started_at_ms.max(0) as u64),
                clock::seconds(i.ended_at_ms.max(0) as u64)
            );
        }
    }
    out.push_str("</svg></section>");
}

pub fn render(r: &HistoryReport) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = format!(
        "netsight report — {} {} .. {}",
        r.netns,
        clock::date_seconds(r.window.since_unix_ms.max(0) as u64),
        clock::date_seconds(r.window.until_unix_ms.max(0) as u64)
    );
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'unsafe-inline'\"><title>{}</title><style>
body{{font:14px/1.4 sans-serif;margin:24px;color:#1d2330;background:#fff}}
h1{{font-size:20px}} h2{{font-size:15px;margin:18px 0 4px}}
.axis{{font:11px sans-serif;fill:#4a5263}}
.legend span{{margin-right:14px}} .legend i{{display:inline-block;width:12px;height:3px;margin-right:4px;vertical-align:middle}}
.unit{{color:#6a7283}}
table{{border-collapse:collapse;margin:6px 0 18px}} td,th{{border:1px solid #d0d4dc;padding:3px 8px;text-align:left;font-size:13px}}
</style></head><body><h1>{}</h1><p>{} — {} samples{}</p>",
        escape(&title),
        escape(&title),
        escape(&r.db),
        r.samples,
        if r.step_s > 0.0 { format!(", a point per {:.0} s", r.step_s) } else { String::new() }
    );
    let p = &r.charts;
    line_chart(
        &mut out,
        "Throughput",
        "bits/s, every interface",
        p,
        &[("rx", &|c| c.rx_bits_per_s), ("tx", &|c| c.tx_bits_per_s)],
    );
    line_chart(
        &mut out,
        "Packet rate",
        "packets/s, every interface",
        p,
        &[
            ("rx packets", &|c| c.rx_packets_per_s),
            ("tx packets", &|c| c.tx_packets_per_s),
        ],
    );
    line_chart(
        &mut out,
        "TCP retransmissions",
        "segments/s",
        p,
        &[("retransmitted", &|c| c.retransmitted_segments_per_s)],
    );
    let drop = |layer: &'static str| {
        move |c: &ChartPoint| c.drops_per_s.get(layer).copied().unwrap_or(0.0)
    };
    let (link, softnet, qdisc, ip, udp, tcp) = (
        drop("link"),
        drop("softnet"),
        drop("qdisc"),
        drop("ip"),
        drop("udp"),
        drop("tcp"),
    );
    line_chart(
        &mut out,
        "Drops per layer",
        "packets/s",
        p,
        &[
            ("link", &link),
            ("softnet", &softnet),
            ("qdisc", &qdisc),
            ("ip", &ip),
            ("udp", &udp),
            ("tcp", &tcp),
        ],
    );
    timeline(&mut out, r);
    out.push_str("<h2>Incidents</h2><table><tr><th>from</th><th>to</th><th>severity</th><th>rule</th><th>namespace</th><th>peak evidence</th></tr>");
    for i in &r.incidents {
        let evidence = super::peak_evidence(i, 3);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}<br>{}</td><td>{}</td><td>{}</td></tr>",
            clock::date_seconds(i.started_at_ms.max(0) as u64),
            clock::date_seconds(i.ended_at_ms.max(0) as u64),
            i.severity.as_str(),
            escape(&i.rule_id),
            escape(&i.title),
            escape(&i.netns),
            escape(&evidence)
        );
    }
    out.push_str("</table>");
    if !r.movers.is_empty() {
        out.push_str("<h2>Largest movers against the baseline</h2><table><tr><th>keyword</th><th>item</th><th>column</th><th>baseline</th><th>window</th><th>change</th></tr>");
        for m in &r.movers {
            let _ =
                write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td></tr>",
                escape(&m.keyword),
                escape(&m.item),
                escape(&m.column),
                m.baseline,
                m.window,
                m.change_percent.map(|c| format!("{c:+.0}%")).unwrap_or_else(|| "new".into())
            );
        }
        out.push_str("</table>");
    }
    // The one line of script: tells a headless browser (and its tests) the page rendered.
    out.push_str("<script>console.log('netsight report rendered: ' + document.querySelectorAll('svg').length + ' charts');</script></body></html>\n");
    out
}
