//! What the user chose (focus, sort, filter, overlays) and what each key does.
//! Kept apart from drawing so key handling is tested without a terminal.

use std::cell::{Ref, RefCell};
use std::sync::{Arc, Weak};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::model::{ProcessRow, SocketRow, View};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Interfaces,
    Findings,
    Sockets,
    Health,
}

impl Pane {
    const ORDER: [Pane; 4] = [
        Pane::Interfaces,
        Pane::Findings,
        Pane::Sockets,
        Pane::Health,
    ];

    fn step(self, by: isize) -> Pane {
        let i = Pane::ORDER.iter().position(|p| *p == self).unwrap_or(0) as isize;
        Pane::ORDER[(i + by).rem_euclid(Pane::ORDER.len() as isize) as usize]
    }
}

/// Virtual interfaces (lo, veth, bridges, tunnels): listed, summed into one row, or left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Virtual {
    Show,
    Group,
    Hide,
}

impl Virtual {
    pub fn name(self) -> &'static str {
        match self {
            Virtual::Show => "shown",
            Virtual::Group => "grouped",
            Virtual::Hide => "hidden",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Total,
    Rx,
    Tx,
    Rtt,
    Retransmits,
}

impl Sort {
    const ORDER: [Sort; 5] = [
        Sort::Total,
        Sort::Rx,
        Sort::Tx,
        Sort::Rtt,
        Sort::Retransmits,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Sort::Total => "rx+tx",
            Sort::Rx => "rx",
            Sort::Tx => "tx",
            Sort::Rtt => "rtt",
            Sort::Retransmits => "retrans",
        }
    }

    fn next(self) -> Sort {
        let i = Sort::ORDER.iter().position(|s| *s == self).unwrap_or(0);
        Sort::ORDER[(i + 1) % Sort::ORDER.len()]
    }

    fn key_socket(self, s: &SocketRow) -> f64 {
        match self {
            Sort::Total => s.total_bytes_per_s(),
            Sort::Rx => s.rx_bytes_per_s,
            Sort::Tx => s.tx_bytes_per_s,
            Sort::Rtt => s.rtt_ms,
            Sort::Retransmits => f64::from(s.retransmits_total),
        }
    }

    fn key_process(self, p: &ProcessRow) -> f64 {
        match self {
            Sort::Total | Sort::Rtt => p.rx_bytes_per_s + p.tx_bytes_per_s,
            Sort::Rx => p.rx_bytes_per_s,
            Sort::Tx => p.tx_bytes_per_s,
            Sort::Retransmits => p.retransmits_total as f64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help,
    /// The selected finding, explained; the number is the scroll offset.
    Explain(u16),
    /// The namespace picker, with its cursor.
    Picker(usize),
    /// Typing a filter.
    Filter,
}

/// What the caller must do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    Redraw,
    Quit,
    /// Write a snapshot bundle of what is on screen.
    Freeze,
    /// Show this namespace (a label from `namespaces`).
    Switch(String),
}

#[derive(Debug, Clone)]
pub struct UiState {
    pub focus: Pane,
    pub virtual_interfaces: Virtual,
    pub sort: Sort,
    /// The sockets pane lists processes instead of sockets.
    pub by_process: bool,
    /// Case-insensitive text every pane's rows are matched against.
    pub filter: String,
    pub paused: bool,
    pub overlay: Overlay,
    /// The selected row of each pane (Pane::ORDER).
    selected: [usize; 4],
    /// Namespaces the picker offers, "host" first.
    pub namespaces: Vec<String>,
    pub namespace: String,
    /// A line for the footer: what the last action did.
    pub status: Option<String>,
    /// NO_COLOR or --color never: no colours, only bold and reverse.
    pub color: bool,
    pub interval_s: f64,
    pub window_s: f64,
    socket_order: RefCell<SocketOrder>,
}

/// The sockets pane's order of a view's rows, kept while the rows, the sort and
/// the filter stay the same: a table of tens of thousands, shown over many
/// refreshes, is filtered and sorted once rather than at every draw.
#[derive(Debug, Clone, Default)]
struct SocketOrder {
    /// Weak: the rows are not kept alive, and their address is not reused while
    /// this points at it (a new memo's points at no rows at all).
    rows: Weak<Vec<SocketRow>>,
    sort: Sort,
    filter: String,
    order: Vec<u32>,
}

/// The sockets pane's rows: the view's, filtered, in the chosen order.
#[derive(Debug)]
pub struct ShownSockets<'a> {
    rows: &'a [SocketRow],
    order: Ref<'a, Vec<u32>>,
}

impl ShownSockets<'_> {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &SocketRow> + '_ {
        self.order.iter().map(|&i| &self.rows[i as usize])
    }
}

impl UiState {
    pub fn new(namespace: String, color: bool, interval_s: f64, window_s: f64) -> Self {
        UiState {
            focus: Pane::Interfaces,
            virtual_interfaces: Virtual::Show,
            sort: Sort::Total,
            by_process: false,
            filter: String::new(),
            paused: false,
            overlay: Overlay::None,
            selected: [0; 4],
            namespaces: vec![namespace.clone()],
            namespace,
            status: None,
            color,
            interval_s,
            window_s,
            socket_order: RefCell::default(),
        }
    }

    pub fn selected(&self, pane: Pane) -> usize {
        self.selected[pane_index(pane)]
    }

    fn matches(&self, text: &str) -> bool {
        self.filter.is_empty() || text.to_lowercase().contains(&self.filter.to_lowercase())
    }

    /// Interfaces as shown: filtered, virtual ones shown, grouped or hidden.
    pub fn interfaces(&self, view: &View) -> Vec<crate::model::InterfaceRow> {
        let mut rows: Vec<_> = view
            .interfaces
            .iter()
            .filter(|i| self.matches(&i.name))
            .filter(|i| self.virtual_interfaces == Virtual::Show || !i.is_virtual)
            .cloned()
            .collect();
        if self.virtual_interfaces == Virtual::Group {
            let virtual_rows: Vec<_> = view
                .interfaces
                .iter()
                .filter(|i| i.is_virtual && self.matches(&i.name))
                .collect();
            if !virtual_rows.is_empty() {
                rows.push(crate::model::group(&virtual_rows));
            }
        }
        rows
    }

    fn socket_matches(&self, s: &SocketRow) -> bool {
        self.filter.is_empty()
            || self.matches(&format!(
                "{}:{} {}:{} {} {}",
                s.local_addr,
                s.local_port,
                s.remote_addr,
                s.remote_port,
                s.comm.as_deref().unwrap_or(""),
                s.pid.map_or(String::new(), |p| p.to_string())
            ))
    }

    pub fn sockets<'a>(&'a self, view: &'a View) -> ShownSockets<'a> {
        let fresh = {
            let memo = self.socket_order.borrow();
            std::ptr::eq(memo.rows.as_ptr(), Arc::as_ptr(&view.sockets))
                && memo.sort == self.sort
                && memo.filter == self.filter
        };
        if !fresh {
            let rows = &view.sockets;
            let mut order: Vec<u32> = (0..rows.len() as u32)
                .filter(|&i| self.socket_matches(&rows[i as usize]))
                .collect();
            let sort = self.sort;
            let key = |i: &u32| sort.key_socket(&rows[*i as usize]);
            // Stable: equal keys keep the tracker's order (busiest first).
            order.sort_by(|a, b| key(b).total_cmp(&key(a)));
            *self.socket_order.borrow_mut() = SocketOrder {
                rows: Arc::downgrade(rows),
                sort,
                filter: self.filter.clone(),
                order,
            };
        }
        ShownSockets {
            rows: &view.sockets,
            order: Ref::map(self.socket_order.borrow(), |m| &m.order),
        }
    }

    pub fn processes<'a>(&self, view: &'a View) -> Vec<&'a ProcessRow> {
        let mut rows: Vec<&ProcessRow> = view
            .processes
            .iter()
            .filter(|p| {
                self.filter.is_empty()
                    || self.matches(&format!(
                        "{} {}",
                        p.comm,
                        p.pid.map_or(String::new(), |p| p.to_string())
                    ))
            })
            .collect();
        let sort = self.sort;
        rows.sort_by(|a, b| sort.key_process(b).total_cmp(&sort.key_process(a)));
        rows
    }

    pub fn findings<'a>(&self, view: &'a View) -> Vec<&'a netsight_report::Finding> {
        view.findings
            .iter()
            .filter(|f| {
                self.filter.is_empty()
                    || self.matches(&format!(
                        "{} {} {}",
                        f.rule_id,
                        f.title,
                        f.subject.as_deref().unwrap_or("")
                    ))
            })
            .collect()
    }

    fn rows_in(&self, pane: Pane, view: &View) -> usize {
        match pane {
            Pane::Interfaces => self.interfaces(view).len(),
            Pane::Findings => self.findings(view).len(),
            Pane::Sockets if self.by_process => self.processes(view).len(),
            Pane::Sockets => self.sockets(view).len(),
            Pane::Health => 0,
        }
    }

    /// Keeps every selection on a row that exists (rows come and go).
    pub fn clamp(&mut self, view: &View) {
        for pane in Pane::ORDER {
            let rows = self.rows_in(pane, view);
            let i = pane_index(pane);
            self.selected[i] = self.selected[i].min(rows.saturating_sub(1));
        }
    }

    fn move_selection(&mut self, by: isize, view: &View) {
        let rows = self.rows_in(self.focus, view);
        let i = pane_index(self.focus);
        let at = self.selected[i] as isize + by;
        self.selected[i] = at.clamp(0, rows.saturating_sub(1) as isize) as usize;
    }

    /// Applies one key press.
    pub fn handle_key(&mut self, key: KeyEvent, view: &View) -> Action {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('q')) {
            return Action::Quit;
        }
        match self.overlay.clone() {
            Overlay::Filter => {
                match key.code {
                    KeyCode::Enter => self.overlay = Overlay::None,
                    KeyCode::Esc => {
                        self.filter.clear();
                        self.overlay = Overlay::None;
                    }
                    KeyCode::Backspace => {
                        self.filter.pop();
                    }
                    KeyCode::Char(c) if !ctrl && self.filter.chars().count() < 64 => {
                        self.filter.push(c)
                    }
                    _ => return Action::None,
                }
                self.clamp(view);
                return Action::Redraw;
            }
            Overlay::Picker(at) => {
                let last = self.namespaces.len().saturating_sub(1);
                match key.code {
                    KeyCode::Esc | KeyCode::Char('n') => self.overlay = Overlay::None,
                    KeyCode::Char('q') => return Action::Quit,
                    KeyCode::Up | KeyCode::Char('k') => {
                        self.overlay = Overlay::Picker(at.saturating_sub(1))
                    }
                    KeyCode::Down | KeyCode::Char('j') => {
                        self.overlay = Overlay::Picker((at + 1).min(last))
                    }
                    KeyCode::Enter => {
                        self.overlay = Overlay::None;
                        if let Some(name) = self.namespaces.get(at).cloned() {
                            if name != self.namespace {
                                self.namespace = name.clone();
                                self.selected = [0; 4];
                                return Action::Switch(name);
                            }
                        }
                    }
                    _ => return Action::None,
                }
                return Action::Redraw;
            }
            Overlay::Explain(scroll) => {
                match key.code {
                    KeyCode::Esc | KeyCode::Enter => self.overlay = Overlay::None,
                    KeyCode::Char('q') => return Action::Quit,
                    KeyCode::Up | KeyCode::Char('k') => {
                        self.overlay = Overlay::Explain(scroll.saturating_sub(1))
                    }
                    KeyCode::Down | KeyCode::Char('j') => {
                        self.overlay = Overlay::Explain(scroll.saturating_add(1))
                    }
                    _ => return Action::None,
                }
                return Action::Redraw;
            }
            Overlay::Help => {
                if key.code == KeyCode::Char('q') {
                    return Action::Quit;
                }
                self.overlay = Overlay::None;
                return Action::Redraw;
            }
            Overlay::None => {}
        }
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char('?') | KeyCode::Char('h') | KeyCode::F(1) => self.overlay = Overlay::Help,
            KeyCode::Tab => self.focus = self.focus.step(1),
            KeyCode::BackTab => self.focus = self.focus.step(-1),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1, view),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1, view),
            KeyCode::PageUp => self.move_selection(-10, view),
            KeyCode::PageDown => self.move_selection(10, view),
            KeyCode::Home | KeyCode::Char('g') => self.move_selection(isize::MIN / 2, view),
            KeyCode::End | KeyCode::Char('G') => self.move_selection(isize::MAX / 2, view),
            KeyCode::Enter if self.focus == Pane::Findings => {
                if self.findings(view).is_empty() {
                    self.status = Some("no finding to explain".into());
                } else {
                    self.overlay = Overlay::Explain(0);
                }
            }
            KeyCode::Char('e') => {
                self.focus = Pane::Findings;
                if self.findings(view).is_empty() {
                    self.status = Some("no finding to explain".into());
                } else {
                    self.overlay = Overlay::Explain(0);
                }
            }
            KeyCode::Char('s') => {
                self.sort = self.sort.next();
                self.status = Some(format!("sockets sorted by {}", self.sort.name()));
            }
            KeyCode::Char('p') => {
                self.by_process = !self.by_process;
                self.selected[pane_index(Pane::Sockets)] = 0;
            }
            KeyCode::Char('v') => {
                self.virtual_interfaces = match self.virtual_interfaces {
                    Virtual::Show => Virtual::Group,
                    Virtual::Group => Virtual::Hide,
                    Virtual::Hide => Virtual::Show,
                };
                self.status = Some(format!(
                    "virtual interfaces {}",
                    self.virtual_interfaces.name()
                ));
                self.clamp(view);
            }
            KeyCode::Char('/') => self.overlay = Overlay::Filter,
            KeyCode::Esc if !self.filter.is_empty() => {
                self.filter.clear();
                self.clamp(view);
            }
            KeyCode::Char(' ') | KeyCode::Pause => {
                self.paused = !self.paused;
                self.status = Some(if self.paused { "paused" } else { "resumed" }.into());
            }
            KeyCode::Char('f') => return Action::Freeze,
            KeyCode::Char('n') => {
                let at = self
                    .namespaces
                    .iter()
                    .position(|n| *n == self.namespace)
                    .unwrap_or(0);
                self.overlay = Overlay::Picker(at);
            }
            _ => return Action::None,
        }
        Action::Redraw
    }
}

fn pane_index(pane: Pane) -> usize {
    Pane::ORDER.iter().position(|p| *p == pane).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyEventKind;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent {
            code,
            modifiers: KeyModifiers::NONE,
            kind: KeyEventKind::Press,
            state: ratatui::crossterm::event::KeyEventState::NONE,
        }
    }

    fn view_with_findings(n: usize) -> View {
        let mut view = View::default();
        for i in 0..n {
            view.findings.push(netsight_report::Finding {
                rule_id: format!("tcp.rule{i}"),
                layer: netsight_report::Layer::Tcp,
                use_kind: netsight_report::UseKind::Errors,
                severity: netsight_report::Severity::Warning,
                title: format!("finding {i}"),
                subject: None,
                evidence: Vec::new(),
                why: String::new(),
                confirm: Vec::new(),
                fix: Vec::new(),
                impact: 1.0,
                symptoms: Vec::new(),
            });
        }
        view
    }

    #[test]
    fn selection_stays_on_existing_rows() {
        let view = view_with_findings(3);
        let mut ui = UiState::new("host".into(), true, 1.0, 10.0);
        ui.handle_key(key(KeyCode::Tab), &view);
        assert_eq!(ui.focus, Pane::Findings);
        for _ in 0..10 {
            ui.handle_key(key(KeyCode::Down), &view);
        }
        assert_eq!(ui.selected(Pane::Findings), 2);
        ui.clamp(&view_with_findings(1));
        assert_eq!(ui.selected(Pane::Findings), 0);
        ui.handle_key(key(KeyCode::Up), &view);
        assert_eq!(ui.selected(Pane::Findings), 0);
    }

    #[test]
    fn enter_explains_only_a_finding_that_exists() {
        let mut ui = UiState::new("host".into(), true, 1.0, 10.0);
        ui.focus = Pane::Findings;
        ui.handle_key(key(KeyCode::Enter), &View::default());
        assert_eq!(ui.overlay, Overlay::None);
        assert_eq!(ui.status.as_deref(), Some("no finding to explain"));
        ui.handle_key(key(KeyCode::Enter), &view_with_findings(2));
        assert_eq!(ui.overlay, Overlay::Explain(0));
        ui.handle_key(key(KeyCode::Esc), &view_with_findings(2));
        assert_eq!(ui.overlay, Overlay::None);
    }

    #[test]
    fn filter_is_typed_then_applies_and_esc_clears_it() {
        let view = view_with_findings(12);
        let mut ui = UiState::new("host".into(), true, 1.0, 10.0);
        ui.handle_key(key(KeyCode::Char('/')), &view);
        for c in "rule1".chars() {
            assert_eq!(ui.handle_key(key(KeyCode::Char(c)), &view), Action::Redraw);
        }
        // 'q' while typing is text, not quit.
        assert_eq!(
            ui.handle_key(key(KeyCode::Char('q')), &view),
            Action::Redraw
        );
        ui.handle_key(key(KeyCode::Backspace), &view);
        ui.handle_key(key(KeyCode::Enter), &view);
        // rule1, rule10, rule11
        assert_eq!(ui.findings(&view).len(), 3);
        ui.handle_key(key(KeyCode::Esc), &view);
        assert_eq!(ui.findings(&view).len(), 12);
    }

    fn socket(port: u16, rx: f64, rtt_ms: f64) -> SocketRow {
        SocketRow {
            local_addr: std::net::Ipv4Addr::LOCALHOST.into(),
            local_port: port,
            remote_addr: std::net::Ipv4Addr::LOCALHOST.into(),
            remote_port: 80,
            state: "ESTAB",
            rx_bytes_per_s: rx,
            tx_bytes_per_s: 0.0,
            rtt_ms,
            retransmits_total: 0,
            pid: None,
            comm: None,
        }
    }

    fn ports(ui: &UiState, view: &View) -> Vec<u16> {
        ui.sockets(view).iter().map(|s| s.local_port).collect()
    }

    #[test]
    fn socket_order_follows_the_rows_sort_and_filter() {
        let view = View {
            sockets: Arc::new(vec![
                socket(1, 300.0, 1.0),
                socket(2, 200.0, 3.0),
                socket(22, 100.0, 2.0),
            ]),
            ..View::default()
        };
        let mut ui = UiState::new("host".into(), false, 1.0, 10.0);
        assert_eq!(ports(&ui, &view), [1, 2, 22]);
        ui.sort = Sort::Rtt;
        assert_eq!(ports(&ui, &view), [2, 22, 1], "a new sort is a new order");
        ui.filter = ":2 ".into();
        assert_eq!(ports(&ui, &view), [2], "and so is a new filter");
        ui.filter.clear();
        // Other rows (a new read) at whatever address: ordered afresh.
        let newer = View {
            sockets: Arc::new(vec![socket(7, 0.0, 9.0), socket(8, 0.0, 10.0)]),
            ..View::default()
        };
        drop(view);
        assert_eq!(ports(&ui, &newer), [8, 7]);
        assert_eq!(ui.rows_in(Pane::Sockets, &newer), 2);
    }

    #[test]
    fn picker_switches_namespace_and_keys_cycle() {
        let view = View::default();
        let mut ui = UiState::new("host".into(), false, 1.0, 10.0);
        ui.namespaces = vec!["host".into(), "ns-a".into(), "ns-b".into()];
        ui.handle_key(key(KeyCode::Char('n')), &view);
        assert_eq!(ui.overlay, Overlay::Picker(0));
        ui.handle_key(key(KeyCode::Down), &view);
        ui.handle_key(key(KeyCode::Down), &view);
        ui.handle_key(key(KeyCode::Down), &view);
        assert_eq!(
            ui.handle_key(key(KeyCode::Enter), &view),
            Action::Switch("ns-b".into())
        );
        assert_eq!(ui.namespace, "ns-b");
        assert_eq!(
            ui.handle_key(key(KeyCode::Char('f')), &view),
            Action::Freeze
        );
        ui.handle_key(key(KeyCode::Char(' ')), &view);
        assert!(ui.paused);
        for expect in [Virtual::Group, Virtual::Hide, Virtual::Show] {
            ui.handle_key(key(KeyCode::Char('v')), &view);
            assert_eq!(ui.virtual_interfaces, expect);
        }
        for expect in [
            Sort::Rx,
            Sort::Tx,
            Sort::Rtt,
            Sort::Retransmits,
            Sort::Total,
        ] {
            ui.handle_key(key(KeyCode::Char('s')), &view);
            assert_eq!(ui.sort, expect);
        }
        assert_eq!(ui.handle_key(key(KeyCode::Char('q')), &view), Action::Quit);
    }
}
