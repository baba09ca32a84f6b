//! Text rendering of `stat` reports in sar's layout: a time column, then
//! right-aligned columns, a header before each interval's block.

use super::report::StatReport;

/// A block of rows under one header, as sar prints for one keyword.
struct Block {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn f2(v: f64) -> String {
    format!("{v:.2}")
}

fn blocks(r: &StatReport) -> Vec<Block> {
    let mut out = Vec::new();
    if let Some(rows) = &r.dev {
        out.push(Block {
            header: cols(&[
                "IFACE", "rxpck/s", "txpck/s", "rxkB/s", "txkB/s", "rxcmp/s", "txcmp/s",
                "rxmcst/s", "%ifutil",
            ]),
            rows: rows
                .iter()
                .map(|d| {
                    vec![
                        d.iface.clone(),
                        f2(d.rxpck),
                        f2(d.txpck),
                        f2(d.rxkb),
                        f2(d.txkb),
                        f2(d.rxcmp),
                        f2(d.txcmp),
                        f2(d.rxmcst),
                        f2(d.ifutil_percent),
                    ]
                })
                .collect(),
        });
    }
    if let Some(rows) = &r.edev {
        out.push(Block {
            header: cols(&[
                "IFACE", "rxerr/s", "txerr/s", "coll/s", "rxdrop/s", "txdrop/s", "txcarr/s",
                "rxfram/s", "rxfifo/s", "txfifo/s",
            ]),
            rows: rows
                .iter()
                .map(|e| {
                    vec![
                        e.iface.clone(),
                        f2(e.rxerr),
                        f2(e.txerr),
                        f2(e.coll),
                        f2(e.rxdrop),
                        f2(e.txdrop),
                        f2(e.txcarr),
                        f2(e.rxfram),
                        f2(e.rxfifo),
                        f2(e.txfifo),
                    ]
                })
                .collect(),
        });
    }
    if let Some(i) = &r.ip {
        out.push(Block {
            header: cols(&[
                "irec/s",
                "fwddgm/s",
                "idel/s",
                "orq/s",
                "asmrq/s",
                "asmok/s",
                "fragok/s",
                "fragcrt/s",
            ]),
            rows: vec![vec![
                f2(i.irec),
                f2(i.fwddgm),
                f2(i.idel),
                f2(i.orq),
                f2(i.asmrq),
                f2(i.asmok),
                f2(i.fragok),
                f2(i.fragcrt),
            ]],
        });
    }
    if let Some(e) = &r.eip {
        out.push(Block {
            header: cols(&[
                "ihdrerr/s",
                "iadrerr/s",
                "iukwnpr/s",
                "idisc/s",
                "odisc/s",
                "onort/s",
                "asmf/s",
                "fragf/s",
            ]),
            rows: vec![vec![
                f2(e.ihdrerr),
                f2(e.iadrerr),
                f2(e.iukwnpr),
                f2(e.idisc),
                f2(e.odisc),
                f2(e.onort),
                f2(e.asmf),
                f2(e.fragf),
            ]],
        });
    }
    if let Some(t) = &r.tcp {
        out.push(Block {
            header: cols(&["active/s", "passive/s", "iseg/s", "oseg/s"]),
            rows: vec![vec![f2(t.active), f2(t.passive), f2(t.iseg), f2(t.oseg)]],
        });
    }
    if let Some(e) = &r.etcp {
        out.push(Block {
            header: cols(&["atmptf/s", "estres/s", "retrans/s", "isegerr/s", "orsts/s"]),
            rows: vec![vec![
                f2(e.atmptf),
                f2(e.estres),
                f2(e.retrans),
                f2(e.isegerr),
                f2(e.orsts),
            ]],
        });
    }
    if let Some(u) = &r.udp {
        out.push(Block {
            header: cols(&["idgm/s", "odgm/s", "noport/s", "idgmerr/s"]),
            rows: vec![vec![f2(u.idgm), f2(u.odgm), f2(u.noport), f2(u.idgmerr)]],
        });
    }
    if let Some(s) = &r.sock {
        let n = |v: f64| format!("{v:.0}");
        out.push(Block {
            header: cols(&["totsck", "tcpsck", "udpsck", "rawsck", "ip-frag", "tcp-tw"]),
            rows: vec![vec![
                n(s.totsck),
                n(s.tcpsck),
                n(s.udpsck),
                n(s.rawsck),
                n(s.ip_frag),
                n(s.tcp_tw),
            ]],
        });
    }
    if let Some(rows) = &r.soft {
        out.push(Block {
            header: cols(&[
                "CPU",
                "total/s",
                "dropd/s",
                "squeezd/s",
                "rx_rps/s",
                "flw_lim/s",
                "blg_len",
            ]),
            rows: rows
                .iter()
                .map(|s| {
                    vec![
                        s.cpu.clone(),
                        f2(s.total),
                        f2(s.dropd),
                        f2(s.squeezd),
                        f2(s.rx_rps),
                        f2(s.flw_lim),
                        format!("{:.0}", s.blg_len),
                    ]
                })
                .collect(),
        });
    }
    if let Some(rows) = &r.qdisc {
        out.push(Block {
            header: cols(&[
                "IFACE",
                "qdisc",
                "handle",
                "parent",
                "kB/s",
                "pck/s",
                "drop/s",
                "overlim/s",
                "requeue/s",
                "backlog",
                "qlen",
            ]),
            rows: rows
                .iter()
                .map(|q| {
                    vec![
                        q.iface.clone(),
                        q.kind.clone(),
                        q.handle.clone(),
                        q.parent.clone(),
                        f2(q.kb),
                        f2(q.pck),
                        f2(q.drop),
                        f2(q.overlim),
                        f2(q.requeue),
                        format!("{:.0}", q.backlog_bytes),
                        format!("{:.0}", q.qlen),
                    ]
                })
                .collect(),
        });
    }
    if let Some(c) = &r.conntrack {
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        out.push(Block {
            header: cols(&[
                "entries",
                "max",
                "%fill",
                "found/s",
                "new/s",
                "invalid/s",
                "insfail/s",
                "drop/s",
                "edrop/s",
                "srestart/s",
            ]),
            rows: vec![vec![
                opt(c.entries),
                opt(c.max),
                c.fill_percent.map(f2).unwrap_or_else(|| "-".into()),
                f2(c.found),
                f2(c.new),
                f2(c.invalid),
                f2(c.insert_failed),
                f2(c.drop),
                f2(c.early_drop),
                f2(c.search_restart),
            ]],
        });
    }
    out
}

/// Renders a report; `label` is the time ("03:30:59") or "Average:".
/// Every block of a report, counter keywords included.
fn all_blocks(report: &StatReport) -> Vec<Block> {
    let mut all = blocks(report);
    // Counter keywords: sar's column names (rates get "/s", gauges do not).
    for row in &report.counters {
        let header = row
            .values
            .iter()
            .map(|(name, _)| {
                if row.gauges {
                    name.to_string()
                } else {
                    format!("{name}/s")
                }
            })
            .collect();
        all.push(Block {
            header,
            rows: vec![row.values.iter().map(|(_, v)| f2(*v)).collect()],
        });
    }
    all
}

/// Prints blocks that share a header: the header once, then each labelled group of rows.
fn print_blocks(s: &mut String, header: &[String], groups: &[(&str, &[Vec<String>])]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            groups
                .iter()
                .flat_map(|(_, rows)| rows.iter())
                .filter_map(|r| r.get(i).map(String::len))
                .chain([header[i].len(), 9])
                .max()
                .unwrap_or(9)
        })
        .collect();
    let label_width = groups
        .iter()
        .map(|(l, _)| l.len())
        .chain([11])
        .max()
        .unwrap_or(11);
    let line = |label: &str, cells: &mut dyn Iterator<Item = &str>| {
        let mut l = format!("{label:<label_width$}");
        for (cell, w) in cells.zip(&widths) {
            l.push_str(&format!(" {cell:>w$}"));
        }
        l.push('\n');
        l
    };
    let first = groups.first().map(|(l, _)| *l).unwrap_or("");
    s.push_str(&line(first, &mut header.iter().map(String::as_str)));
    for (label, rows) in groups {
        for row in *rows {
            s.push_str(&line(label, &mut row.iter().map(String::as_str)));
        }
    }
    s.push('\n');
}

pub fn render(report: &StatReport, label: &str) -> String {
    let mut s = String::new();
    for block in all_blocks(report) {
        print_blocks(&mut s, &block.header, &[(label, &block.rows)]);
    }
    s
}

/// Many intervals as a sar file prints them: each keyword's header once, a row
/// per interval under it, then the average.
pub fn render_series(reports: &[(String, &StatReport)]) -> String {
    let mut s = String::new();
    let per_report: Vec<(&str, Vec<Block>)> = reports
        .iter()
        .map(|(label, r)| (label.as_str(), all_blocks(r)))
        .collect();
    let Some((_, first)) = per_report.first() else {
        return s;
    };
    for (i, block) in first.iter().enumerate() {
        let groups: Vec<(&str, &[Vec<String>])> = per_report
            .iter()
            .filter_map(|(label, blocks)| {
                blocks
                    .get(i)
                    .filter(|b| b.header == block.header)
                    .map(|b| (*label, b.rows.as_slice()))
            })
            .collect();
        print_blocks(&mut s, &block.header, &groups);
    }
    s
}
