//! Drawing: one function from (View, UiState) to a frame. No terminal here, so
//! ratatui's TestBackend renders exactly what a user sees.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Axis, Block, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table, TableState, Wrap,
};
use ratatui::Frame;

use netsight_report::{Finding, Severity};

use crate::model::{Health, InterfaceRow, SocketRow, View, SHOWN_STATES};
use crate::state::{Overlay, Pane, UiState};

/// Below this the panes do not fit; a note says so instead.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub fn draw(frame: &mut Frame, view: &View, ui: &UiState) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let note = format!(
            "netsight top needs at least {MIN_WIDTH}×{MIN_HEIGHT}; this terminal is {}×{}. q quits.",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(note).wrap(Wrap { trim: true }), area);
        return;
    }
    let [header, top, bottom, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Percentage(48),
        Constraint::Min(6),
        Constraint::Length(1),
    ])
    .areas(area);
    let [interfaces, findings] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(top);
    let [sockets, health] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(bottom);
    let paint = Paint(ui.color);

    frame.render_widget(Paragraph::new(header_line(view, ui, paint)), header);
    draw_interfaces(frame, interfaces, view, ui, paint);
    draw_findings(frame, findings, view, ui, paint);
    draw_sockets(frame, sockets, view, ui, paint);
    draw_health(frame, health, view, ui, paint);
    frame.render_widget(Paragraph::new(footer_line(view, ui, paint)), footer);

    match &ui.overlay {
        Overlay::None => {}
        Overlay::Help => draw_help(frame, area, paint),
        Overlay::Explain(scroll) => {
            let shown = ui.findings(view);
            if let Some(f) = shown.get(ui.selected(Pane::Findings)) {
                draw_explain(frame, area, f, *scroll, paint);
            }
        }
        Overlay::Picker(at) => draw_picker(frame, area, ui, *at, paint),
        Overlay::Filter => {}
    }
}

/// Colours only when allowed (NO_COLOR, --color never): otherwise bold and
/// reverse carry the emphasis.
#[derive(Debug, Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn fg(self, color: Color) -> Style {
        if self.0 {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    fn severity(self, s: Severity) -> Style {
        match s {
            Severity::Critical => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Severity::Warning => self.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            Severity::Info => self.fg(Color::Cyan),
        }
    }

    /// A rate that is a problem when not zero.
    fn bad(self, v: f64) -> Style {
        if v > 0.0 {
            self.fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        }
    }

    fn block(self, title: String, focused: bool) -> Block<'static> {
        let style = if focused {
            self.fg(Color::Green).add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        Block::bordered()
            .title(Span::styled(title, style))
            .border_style(style)
    }
}

fn header_line(view: &View, ui: &UiState, paint: Paint) -> Line<'static> {
    let mut spans = vec![
        Span::styled(
            "netsight top",
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            " · netns {} · every {} · ",
            ui.namespace,
            seconds(ui.interval_s)
        )),
        Span::raw(format!(
            "findings over {} of {} · {}",
            seconds(view.window_s),
            seconds(ui.window_s),
            clock(view.taken_at_unix_ms)
        )),
    ];
    if ui.paused {
        spans.push(Span::styled(
            " · PAUSED",
            paint
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
    }
    if !ui.filter.is_empty() || ui.overlay == Overlay::Filter {
        spans.push(Span::raw(format!(" · filter: {}", ui.filter)));
        if ui.overlay == Overlay::Filter {
            spans.push(Span::styled(
                "_",
                Style::default().add_modifier(Modifier::SLOW_BLINK),
            ));
        }
    }
    Line::from(spans)
}

fn footer_line(view: &View, ui: &UiState, paint: Paint) -> Line<'static> {
    if ui.overlay == Overlay::Filter {
        return Line::from("type to filter every pane · Enter keeps it · Esc clears it");
    }
    if let Some(status) = &ui.status {
        return Line::from(Span::styled(status.clone(), paint.fg(Color::Green)));
    }
    if let Some(first) = view.unavailable.first() {
        return Line::from(Span::styled(
            format!("unavailable: {first}"),
            paint.fg(Color::Yellow),
        ));
    }
    Line::from(
        "q quit · ? help · Tab pane · ↑↓ select · Enter explain · s sort · p processes · / filter · v virtual · space pause · f freeze · n netns",
    )
}

fn draw_interfaces(frame: &mut Frame, area: Rect, view: &View, ui: &UiState, paint: Paint) {
    let rows = ui.interfaces(view);
    let title = format!(
        " Interfaces ({}, virtual {}) ",
        rows.len(),
        ui.virtual_interfaces.name()
    );
    let block = paint.block(title, ui.focus == Pane::Interfaces);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // A chart of the selected interface under the table when there is room.
    let table_height = (rows.len() as u16 + 1).min(inner.height);
    let chart_height = inner.height.saturating_sub(table_height);
    let (table_area, chart_area) = if chart_height >= 6 {
        let [t, c] =
            Layout::vertical([Constraint::Length(table_height), Constraint::Min(6)]).areas(inner);
        (t, Some(c))
    } else {
        (inner, None)
    };
    // As wide as the longest name (IFNAMSIZ is 16).
    let name_width = rows
        .iter()
        .map(|r| r.name.chars().count() + 2)
        .max()
        .unwrap_or(4)
        .clamp(4, 17) as u16;
    // name, 4 rates, drops, errors and their gaps; what is left holds two sparklines.
    let fixed: u16 = name_width + 8 * 2 + 7 * 2 + 6 + 5 + 8;
    let spark_width = (table_area.width.saturating_sub(fixed) / 2) as usize;
    let sparks = spark_width >= 4;
    let mut titles = vec![
        "name", "rx bit/s", "tx bit/s", "rx pk/s", "tx pk/s", "drop/s", "err/s",
    ];
    if sparks {
        titles.extend(["bit/s", "packet/s"]);
    }
    let header = Row::new(titles).style(Style::default().add_modifier(Modifier::BOLD));
    let table_rows: Vec<Row> = rows
        .iter()
        .map(|r| {
            let name = if r.up {
                r.name.clone()
            } else {
                format!("{} ↓", r.name)
            };
            let mut cells = vec![
                Cell::from(name),
                Cell::from(si(r.rx_bits_per_s)),
                Cell::from(si(r.tx_bits_per_s)),
                Cell::from(si(r.rx_packets_per_s)),
                Cell::from(si(r.tx_packets_per_s)),
                Cell::from(si(r.drops_per_s)).style(paint.bad(r.drops_per_s)),
                Cell::from(si(r.errors_per_s)).style(paint.bad(r.errors_per_s)),
            ];
            if sparks {
                cells.push(
                    Cell::from(spark(
                        sum_points(&r.series.rx_bits_per_s, &r.series.tx_bits_per_s),
                        spark_width,
                    ))
                    .style(paint.fg(Color::Cyan)),
                );
                cells.push(
                    Cell::from(spark(
                        sum_points(&r.series.rx_packets_per_s, &r.series.tx_packets_per_s),
                        spark_width,
                    ))
                    .style(paint.fg(Color::Magenta)),
                );
            }
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(name_width),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(5),
    ];
    if sparks {
        widths.extend([Constraint::Length(spark_width as u16); 2]);
    }
    let table = Table::new(table_rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(selected_style(ui.focus == Pane::Interfaces));
    let mut state = TableState::default()
        .with_selected(Some(ui.selected(Pane::Interfaces)).filter(|_| !rows.is_empty()));
    frame.render_stateful_widget(table, table_area, &mut state);
    if rows.is_empty() {
        let below_header = Rect {
            y: table_area.y + 1,
            height: table_area.height.saturating_sub(1),
            ..table_area
        };
        frame.render_widget(Paragraph::new("no interface matches"), below_header);
    }
    if let (Some(chart_area), Some(selected)) =
        (chart_area, rows.get(ui.selected(Pane::Interfaces)))
    {
        draw_chart(frame, chart_area, selected, paint);
    }
}

/// rx and tx bits/s of one interface over the kept history.
fn draw_chart(frame: &mut Frame, area: Rect, row: &InterfaceRow, paint: Paint) {
    let points = |ring: &std::collections::VecDeque<f64>| -> Vec<(f64, f64)> {
        let n = ring.len();
        ring.iter()
            .enumerate()
            .map(|(i, v)| (i as f64 - n as f64 + 1.0, *v))
            .collect()
    };
    let rx = points(&row.series.rx_bits_per_s);
    let tx = points(&row.series.tx_bits_per_s);
    let top = rx
        .iter()
        .chain(&tx)
        .map(|p| p.1)
        .fold(0.0, f64::max)
        .max(1.0);
    let left = -(rx.len().max(2) as f64 - 1.0);
    let datasets = vec![
        Dataset::default()
            .name(format!("rx {}", si(row.rx_bits_per_s)))
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(paint.fg(Color::Cyan))
            .data(&rx),
        Dataset::default()
            .name(format!("tx {}", si(row.tx_bits_per_s)))
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(paint.fg(Color::Magenta))
            .data(&tx),
    ];
    let chart = Chart::new(datasets)
        .block(Block::default().title(format!("{} bit/s, last {} samples", row.name, rx.len())))
        .x_axis(Axis::default().bounds([left, 0.0]))
        .y_axis(
            Axis::default()
                .bounds([0.0, top * 1.1])
                .labels(vec![Line::from("0"), Line::from(si(top))]),
        );
    frame.render_widget(chart, area);
}

fn draw_findings(frame: &mut Frame, area: Rect, view: &View, ui: &UiState, paint: Paint) {
    let shown = ui.findings(view);
    let warnings = shown.iter().filter(|f| f.severity > Severity::Info).count();
    let title = format!(
        " Findings ({} · {} warning or worse) ",
        shown.len(),
        warnings
    );
    let block = paint.block(title, ui.focus == Pane::Findings);
    if shown.is_empty() {
        let text = if view.samples < 2 {
            "collecting the first interval…".to_string()
        } else {
            format!("no findings over the last {}", seconds(view.window_s))
        };
        frame.render_widget(
            Paragraph::new(text).block(block).wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    let rows: Vec<Row> = shown
        .iter()
        .map(|f| {
            let subject = f
                .subject
                .as_deref()
                .map(|s| format!(" [{s}]"))
                .unwrap_or_default();
            Row::new(vec![
                Cell::from(severity_tag(f.severity)).style(paint.severity(f.severity)),
                Cell::from(format!("{}{subject}", f.title)),
            ])
        })
        .collect();
    let table = Table::new(rows, [Constraint::Length(4), Constraint::Min(10)])
        .block(block)
        .row_highlight_style(selected_style(ui.focus == Pane::Findings));
    let mut state = TableState::default().with_selected(Some(ui.selected(Pane::Findings)));
    frame.render_stateful_widget(table, area, &mut state);
}

/// Said when the socket table on screen was read before this sample (it costs
/// too much to read every refresh) and may have changed since.
fn table_age(view: &View) -> String {
    if view.sockets_age_s > 0.0 {
        format!(" · read {} s ago", view.sockets_age_s.round())
    } else {
        String::new()
    }
}

fn draw_sockets(frame: &mut Frame, area: Rect, view: &View, ui: &UiState, paint: Paint) {
    let focused = ui.focus == Pane::Sockets;
    let mut state = TableState::default().with_selected(Some(ui.selected(Pane::Sockets)));
    if ui.by_process {
        let rows = ui.processes(view);
        let block = paint.block(
            format!(
                " Processes by {} ({}){} · p: sockets ",
                ui.sort.name(),
                rows.len(),
                table_age(view)
            ),
            focused,
        );
        let header = Row::new(vec![
            "pid", "process", "sockets", "rx B/s", "tx B/s", "retrans",
        ])
        .style(Style::default().add_modifier(Modifier::BOLD));
        let table_rows: Vec<Row> = rows
            .iter()
            .map(|p| {
                Row::new(vec![
                    Cell::from(p.pid.map_or("-".into(), |p| p.to_string())),
                    Cell::from(p.comm.clone()),
                    Cell::from(p.sockets.to_string()),
                    Cell::from(si(p.rx_bytes_per_s)),
                    Cell::from(si(p.tx_bytes_per_s)),
                    Cell::from(p.retransmits_total.to_string()),
                ])
            })
            .collect();
        let widths = [
            Constraint::Length(8),
            Constraint::Min(12),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(8),
        ];
        let table = Table::new(table_rows, widths)
            .header(header)
            .block(block)
            .row_highlight_style(selected_style(focused));
        frame.render_stateful_widget(table, area, &mut state);
        return;
    }
    let rows = ui.sockets(view);
    let block = paint.block(
        format!(
            " TCP sockets by {} ({}){} · p: processes ",
            ui.sort.name(),
            rows.len(),
            table_age(view)
        ),
        focused,
    );
    if rows.is_empty() {
        let why = view
            .unavailable
            .iter()
            .find(|u| u.starts_with("sockets:"))
            .cloned()
            .unwrap_or_else(|| "no TCP socket matches".into());
        frame.render_widget(
            Paragraph::new(why).block(block).wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    // Columns in the order they are given up when the pane is narrow: the
    // endpoints and rates stay.
    type Column = (&'static str, u16, fn(&SocketRow) -> String);
    const COLUMNS: [Column; 8] = [
        ("local", 21, |s| endpoint(s.local_addr, s.local_port)),
        ("peer", 21, |s| endpoint(s.remote_addr, s.remote_port)),
        ("rx B/s", 7, |s| si(s.rx_bytes_per_s)),
        ("tx B/s", 7, |s| si(s.tx_bytes_per_s)),
        ("state", 10, |s| s.state.to_string()),
        ("process", 22, |s| match (&s.comm, s.pid) {
            (Some(c), Some(p)) => format!("{c}[{p}]"),
            _ => "-".into(),
        }),
        ("retr", 5, |s| s.retransmits_total.to_string()),
        ("rtt ms", 7, |s| format!("{:.2}", s.rtt_ms)),
    ];
    // Only the rows that fit are formatted (there may be tens of thousands).
    let visible = area.height.saturating_sub(3) as usize;
    let selected = ui.selected(Pane::Sockets);
    let skip = selected.saturating_sub(visible.saturating_sub(1));
    let texts: Vec<Vec<String>> = rows
        .iter()
        .skip(skip)
        .take(visible)
        .map(|s| COLUMNS.iter().map(|(_, _, text)| text(s)).collect())
        .collect();
    // A column is as wide as its widest shown text, up to its own width.
    let width_of = |i: usize| -> u16 {
        let widest = texts
            .iter()
            .map(|t| t[i].chars().count())
            .max()
            .unwrap_or(0);
        (widest.max(COLUMNS[i].0.len()) as u16).min(COLUMNS[i].1)
    };
    let mut room = area.width.saturating_sub(2);
    let mut shown: Vec<(usize, u16)> = Vec::new();
    for i in 0..COLUMNS.len() {
        let width = width_of(i);
        if room < width {
            break;
        }
        room = room.saturating_sub(width + 1);
        shown.push((i, width));
    }
    let header = Row::new(shown.iter().map(|(i, _)| COLUMNS[*i].0))
        .style(Style::default().add_modifier(Modifier::BOLD));
    let table_rows: Vec<Row> = rows
        .iter()
        .skip(skip)
        .zip(&texts)
        .map(|(s, text)| {
            Row::new(shown.iter().map(|(i, _)| {
                let cell = Cell::from(text[*i].clone());
                if COLUMNS[*i].0 == "retr" {
                    cell.style(paint.bad(f64::from(s.retransmits_total)))
                } else {
                    cell
                }
            }))
        })
        .collect();
    let mut widths: Vec<Constraint> = shown.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    if let Some(last) = widths.last_mut() {
        *last = Constraint::Fill(1);
    }
    let table = Table::new(table_rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(selected_style(focused));
    let mut state = TableState::default().with_selected(Some(selected - skip));
    frame.render_stateful_widget(table, area, &mut state);
}

fn draw_health(frame: &mut Frame, area: Rect, view: &View, ui: &UiState, paint: Paint) {
    let h: &Health = &view.health;
    // (label, per-second value, whether a non-zero value is a problem)
    let cell = |v: f64, bad: bool| {
        Cell::from(format!("{}/s", si(v))).style(if bad { paint.bad(v) } else { Style::default() })
    };
    let pair = |a: (&'static str, f64, bool), b: Option<(&'static str, f64, bool)>| {
        let mut cells = vec![Cell::from(a.0), cell(a.1, a.2)];
        if let Some(b) = b {
            cells.extend([Cell::from(b.0), cell(b.1, b.2)]);
        }
        Row::new(cells)
    };
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let states: Vec<String> = SHOWN_STATES
        .iter()
        .filter_map(|s| {
            h.tcp_states
                .get(s.as_str())
                .map(|n| format!("{} {n}", s.as_str()))
        })
        .collect();
    let rows = vec![
        Row::new(vec![
            Cell::from("TCP out").style(bold),
            cell(h.tcp_out_segments_per_s, false),
            Cell::from("retrans"),
            cell(h.tcp_retransmitted_segments_per_s, true),
        ]),
        pair(
            ("resets sent", h.tcp_resets_sent_per_s, false),
            Some(("est. resets", h.tcp_established_resets_per_s, true)),
        ),
        pair(
            ("opens act.", h.tcp_active_opens_per_s, false),
            Some(("passive", h.tcp_passive_opens_per_s, false)),
        ),
        pair(
            ("listen ovfl", h.tcp_listen_overflows_per_s, true),
            Some(("listen drop", h.tcp_listen_drops_per_s, true)),
        ),
        Row::new(vec![
            Cell::from("syncookies"),
            cell(h.tcp_syncookies_sent_per_s, true),
            Cell::from("retrans %"),
            Cell::from(format!("{:.2}%", h.tcp_retransmit_percent))
                .style(paint.bad(h.tcp_retransmitted_segments_per_s)),
        ]),
        pair(
            ("UDP in", h.udp_in_datagrams_per_s, false),
            Some(("out", h.udp_out_datagrams_per_s, false)),
        ),
        pair(
            ("rcvbuf err", h.udp_receive_buffer_errors_per_s, true),
            Some(("sndbuf err", h.udp_send_buffer_errors_per_s, true)),
        ),
        pair(
            ("no port", h.udp_no_port_per_s, false),
            Some(("in errors", h.udp_in_errors_per_s, true)),
        ),
    ];
    let widths = [
        Constraint::Length(11),
        Constraint::Length(8),
        Constraint::Length(11),
        Constraint::Fill(1),
    ];
    let block = paint.block(" TCP/UDP health ".into(), ui.focus == Pane::Health);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [table_area, states_area] =
        Layout::vertical([Constraint::Length(rows.len() as u16), Constraint::Min(0)]).areas(inner);
    frame.render_widget(Table::new(rows, widths), table_area);
    let states = if states.is_empty() {
        "TCP states: no socket table".to_string()
    } else {
        format!("TCP states: {}", states.join("  "))
    };
    frame.render_widget(
        Paragraph::new(states).wrap(Wrap { trim: true }),
        states_area,
    );
}

fn draw_help(frame: &mut Frame, area: Rect, paint: Paint) {
    const KEYS: &[(&str, &str)] = &[
        ("q, Ctrl-C", "quit (the terminal is restored)"),
        ("?, h, F1", "this help; any key closes it"),
        ("Tab, Shift-Tab", "next / previous pane"),
        ("↑ ↓ j k PgUp PgDn g G", "move the selection in the pane"),
        (
            "Enter, e",
            "explain the selected finding: evidence, why, how to confirm and fix",
        ),
        ("s", "sort sockets: rx+tx, rx, tx, rtt, retransmits"),
        ("p", "sockets or processes"),
        ("/", "filter every pane by text (Esc clears)"),
        (
            "v",
            "virtual interfaces: shown, grouped into one row, hidden",
        ),
        ("space", "pause the display (sampling goes on)"),
        (
            "f",
            "freeze: write a snapshot bundle of the window on screen",
        ),
        ("n", "pick the network namespace"),
    ];
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:>22}  "), paint.fg(Color::Green).add_modifier(Modifier::BOLD)),
                Span::raw(*what),
            ])
        })
        .chain([
            Line::from(""),
            Line::from("Findings are doctor's rules over the window (--window); rates are per refresh (--interval)."),
        ])
        .collect();
    let rect = centered(area, 86, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(" netsight top: keys "))
            .wrap(Wrap { trim: false }),
        rect,
    );
}

/// The finding in full, as `doctor` prints it.
pub fn explain_text(f: &Finding) -> Vec<String> {
    let mut out = vec![format!(
        "{} {} ({})",
        severity_tag(f.severity),
        f.title,
        f.rule_id
    )];
    if let Some(subject) = &f.subject {
        out.push(format!("subject: {subject}"));
    }
    out.push(String::new());
    out.push("Evidence:".into());
    for e in &f.evidence {
        let threshold = e
            .threshold
            .map(|t| format!(" (threshold {})", number(t)))
            .unwrap_or_default();
        if e.unit == "text" {
            out.push(format!("  {}", e.metric));
        } else {
            out.push(format!(
                "  {} = {} {}{threshold}",
                e.metric,
                number(e.value),
                e.unit
            ));
        }
    }
    out.push(String::new());
    out.push(format!("Why: {}", f.why));
    if !f.confirm.is_empty() {
        out.push(String::new());
        out.push("Confirm:".into());
        out.extend(f.confirm.iter().map(|c| format!("  {c}")));
    }
    if !f.fix.is_empty() {
        out.push(String::new());
        out.push("Fix:".into());
        out.extend(f.fix.iter().map(|c| format!("  {c}")));
    }
    for s in &f.symptoms {
        out.push(String::new());
        out.push(format!("Explains: {} ({})", s.title, s.rule_id));
    }
    out
}

fn draw_explain(frame: &mut Frame, area: Rect, f: &Finding, scroll: u16, paint: Paint) {
    let lines: Vec<Line> = explain_text(f)
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                Line::styled(l, paint.severity(f.severity))
            } else {
                Line::from(l)
            }
        })
        .collect();
    let rect = centered(
        area,
        area.width.saturating_sub(8),
        area.height.saturating_sub(4),
    );
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(Text::from(lines))
            .block(Block::bordered().title(" explain · ↑↓ scroll · Esc closes "))
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        rect,
    );
}

fn draw_picker(frame: &mut Frame, area: Rect, ui: &UiState, at: usize, paint: Paint) {
    let rows: Vec<Row> = ui
        .namespaces
        .iter()
        .map(|n| {
            let mark = if *n == ui.namespace { "●" } else { " " };
            Row::new(vec![Cell::from(mark), Cell::from(n.clone())])
        })
        .collect();
    let height = (rows.len() as u16 + 2).min(area.height.saturating_sub(2));
    let rect = centered(area, 48, height);
    let table = Table::new(rows, [Constraint::Length(2), Constraint::Min(10)])
        .block(Block::bordered().title(" network namespace · Enter picks "))
        .row_highlight_style(selected_style(true).patch(paint.fg(Color::Green)));
    let mut state = TableState::default().with_selected(Some(at));
    frame.render_widget(Clear, rect);
    frame.render_stateful_widget(table, rect, &mut state);
}

fn selected_style(focused: bool) -> Style {
    if focused {
        Style::default().add_modifier(Modifier::REVERSED)
    } else {
        Style::default().add_modifier(Modifier::BOLD)
    }
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

pub fn severity_tag(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "CRIT",
        Severity::Warning => "WARN",
        Severity::Info => "info",
    }
}

fn endpoint(addr: std::net::IpAddr, port: u16) -> String {
    match addr {
        std::net::IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => format!("{v4}:{port}"),
            None => format!("[{a}]:{port}"),
        },
        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
    }
}

/// 1234567 → "1.2M"; small values as integers.
pub fn si(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let units = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (scale, unit) in units {
        if v.abs() >= scale {
            return format!("{:.1}{unit}", v / scale);
        }
    }
    format!("{v:.0}")
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn seconds(s: f64) -> String {
    if s >= 1.0 && s.fract().abs() < 0.05 {
        format!("{s:.0}s")
    } else {
        format!("{s:.1}s")
    }
}

/// HH:MM:SS UTC of a unix time in milliseconds.
fn clock(unix_ms: u64) -> String {
    let day = (unix_ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02} UTC", day / 3600, day / 60 % 60, day % 60)
}

fn sum_points<'a>(
    a: &'a std::collections::VecDeque<f64>,
    b: &'a std::collections::VecDeque<f64>,
) -> impl Iterator<Item = f64> + 'a {
    a.iter().zip(b.iter()).map(|(x, y)| x + y)
}

/// The last `width` values as block characters scaled to their maximum.
pub fn spark(values: impl Iterator<Item = f64>, width: usize) -> String {
    let values: Vec<f64> = values.collect();
    let tail = &values[values.len().saturating_sub(width)..];
    let top = tail.iter().copied().fold(0.0, f64::max);
    tail.iter()
        .map(|v| {
            if top <= 0.0 || *v <= 0.0 {
                ' '
            } else {
                let level = ((v / top) * (SPARK.len() - 1) as f64).round() as usize;
                SPARK[level.min(SPARK.len() - 1)]
            }
        })
        .collect()
}
