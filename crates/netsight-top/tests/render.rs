//! The dashboard drawn on ratatui's TestBackend: what a user would read, at
//! several sizes, with and without colour; and the model fed by live snapshots.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use netsight_kernel::LiveSource;
use netsight_report::{Evidence, Finding, Layer, Severity, UseKind};
use netsight_top::model::{Health, InterfaceRow, ProcessRow, Series, SocketRow};
use netsight_top::state::{Overlay, Pane, Virtual};
use netsight_top::{SocketActivity, Tracker, UiState, View};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use ratatui::Terminal;

fn finding(rule: &str, severity: Severity, title: &str) -> Finding {
    Finding {
        rule_id: rule.into(),
        layer: Layer::Udp,
        use_kind: UseKind::Errors,
        severity,
        title: title.into(),
        subject: Some(rule.split('.').next().unwrap_or("").into()),
        evidence: vec![Evidence::new(
            "Udp.RcvbufErrors",
            1234.0,
            "per_s",
            Some(1.0),
        )],
        why: "datagrams arrived faster than the application read them".into(),
        confirm: vec!["nstat -az UdpRcvbufErrors".into()],
        fix: vec!["raise net.core.rmem_max and the socket's SO_RCVBUF".into()],
        impact: 1234.0,
        symptoms: Vec::new(),
    }
}

fn interface(name: &str, kind: Option<&str>, rx_bits: f64) -> InterfaceRow {
    let mut series = Series::default();
    for i in 0..30 {
        series
            .rx_bits_per_s
            .push_back(rx_bits * f64::from(i) / 30.0);
        series.tx_bits_per_s.push_back(rx_bits / 10.0);
        series.rx_packets_per_s.push_back(f64::from(i));
        series.tx_packets_per_s.push_back(1.0);
    }
    InterfaceRow {
        name: name.into(),
        kind: kind.map(str::to_string),
        is_virtual: kind.is_some() || name == "lo",
        up: true,
        rx_bits_per_s: rx_bits,
        tx_bits_per_s: rx_bits / 10.0,
        rx_packets_per_s: 81_234.0,
        tx_packets_per_s: 40_000.0,
        drops_per_s: 17.0,
        errors_per_s: 0.0,
        drops_total: 1000,
        errors_total: 0,
        series,
    }
}

fn sample_view() -> View {
    let socket = SocketRow {
        local_addr: "10.231.9.1".parse().unwrap(),
        local_port: 5201,
        remote_addr: "10.231.9.2".parse().unwrap(),
        remote_port: 40_000,
        state: "ESTAB",
        rx_bytes_per_s: 0.0,
        tx_bytes_per_s: 117_000_000.0,
        rtt_ms: 0.25,
        retransmits_total: 3,
        pid: Some(4242),
        comm: Some(Arc::from("iperf3")),
    };
    let mut health = Health {
        tcp_out_segments_per_s: 80_000.0,
        udp_receive_buffer_errors_per_s: 1234.0,
        ..Health::default()
    };
    health.tcp_states.insert("ESTAB".into(), 2);
    health.tcp_states.insert("LISTEN".into(), 1);
    View {
        namespace: "host".into(),
        taken_at_unix_ms: 1_796_285_420_178,
        interval_s: 1.0,
        window_s: 10.0,
        samples: 11,
        interfaces: vec![
            interface("eth0", None, 936_000_000.0),
            interface("lo", None, 1_000.0),
            interface("veth1a2b", Some("veth"), 2_000_000.0),
            interface("br0", Some("bridge"), 3_000_000.0),
        ],
        health,
        sockets_age_s: 0.0,
        sockets: Arc::new(vec![socket.clone()]),
        top_sockets: vec![socket],
        processes: vec![ProcessRow {
            pid: Some(4242),
            comm: "iperf3".into(),
            sockets: 1,
            rx_bytes_per_s: 0.0,
            tx_bytes_per_s: 117_000_000.0,
            retransmits_total: 3,
        }],
        findings: vec![
            finding(
                "udp.receive_buffer_errors",
                Severity::Critical,
                "UDP receive buffers overflow",
            ),
            finding(
                "config.keepalive_default",
                Severity::Info,
                "TCP keepalive waits two hours",
            ),
        ],
        unavailable: Vec::new(),
    }
}

fn render(view: &View, ui: &UiState, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| netsight_top::ui::draw(frame, view, ui))
        .unwrap();
    terminal.backend().buffer().clone()
}

fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        for x in 0..area.width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn ui() -> UiState {
    UiState::new("host".into(), true, 1.0, 10.0)
}

#[test]
fn every_pane_shows_its_data() {
    let screen = text(&render(&sample_view(), &ui(), 120, 34));
    for expect in [
        "netsight top",
        "Interfaces (4",
        "eth0",
        "936.0M", // rx bit/s
        "81.2k",  // rx packets/s
        "veth1a2b",
        "CRIT",
        "UDP receive buffers overflow",
        "10.231.9.1:5201",
        "117.0M",
        "iperf3[4242]",
        "ESTAB 2",
        "LISTEN 1",
        "rcvbuf err",
        "1.2k/s",
        "findings over 10s",
    ] {
        assert!(
            screen.contains(expect),
            "{expect:?} not on screen:\n{screen}"
        );
    }
    // The selected interface's chart is drawn under the table.
    assert!(screen.contains("eth0 bit/s, last 30 samples"), "{screen}");
    // Sparklines reach the top block for the busiest point.
    assert!(screen.contains('█'), "{screen}");
}

#[test]
fn worst_finding_comes_first_and_is_red_only_with_colour() {
    let view = sample_view();
    let buffer = render(&view, &ui(), 120, 34);
    let screen = text(&buffer);
    let crit = screen.find("CRIT").unwrap();
    let info = screen.find("info TCP keepalive").unwrap();
    assert!(crit < info);
    let red = |buffer: &Buffer| buffer.content().iter().any(|c| c.fg == Color::Red);
    assert!(red(&buffer), "a critical finding is red with colour");
    let mut plain = ui();
    plain.color = false;
    let buffer = render(&view, &plain, 120, 34);
    assert!(
        buffer
            .content()
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "NO_COLOR: no cell has a colour"
    );
    assert_eq!(text(&buffer), screen, "the same text either way");
}

#[test]
fn explain_overlay_shows_evidence_why_and_fix() {
    let mut ui = ui();
    ui.focus = Pane::Findings;
    ui.overlay = Overlay::Explain(0);
    let screen = text(&render(&sample_view(), &ui, 120, 34));
    for expect in [
        "UDP receive buffers overflow (udp.receive_buffer_errors)",
        "Udp.RcvbufErrors = 1234 per_s (threshold 1)",
        "Why: datagrams arrived faster",
        "nstat -az UdpRcvbufErrors",
        "raise net.core.rmem_max",
    ] {
        assert!(
            screen.contains(expect),
            "{expect:?} not in the explanation:\n{screen}"
        );
    }
}

#[test]
fn virtual_interfaces_group_and_hide() {
    let view = sample_view();
    let mut ui = ui();
    ui.virtual_interfaces = Virtual::Group;
    let screen = text(&render(&view, &ui, 120, 34));
    assert!(screen.contains("virtual (3)"), "{screen}");
    assert!(
        !screen.contains("veth1a2b") && !screen.contains("br0"),
        "{screen}"
    );
    // The group's rate is the sum: 1 kbit + 2 Mbit + 3 Mbit.
    assert!(screen.contains("5.0M"), "{screen}");
    ui.virtual_interfaces = Virtual::Hide;
    let screen = text(&render(&view, &ui, 120, 34));
    assert!(
        !screen.contains("virtual (") && !screen.contains("veth1a2b"),
        "{screen}"
    );
    assert!(
        screen.contains("Interfaces (1, virtual hidden)"),
        "{screen}"
    );
}

#[test]
fn filter_applies_to_every_pane() {
    let mut ui = ui();
    ui.filter = "udp".into();
    let screen = text(&render(&sample_view(), &ui, 120, 34));
    assert!(screen.contains("UDP receive buffers overflow"));
    assert!(!screen.contains("TCP keepalive waits"), "{screen}");
    assert!(
        !screen.contains("eth0 "),
        "no interface matches udp:\n{screen}"
    );
    assert!(screen.contains("filter: udp"));
}

#[test]
fn help_and_picker_overlays() {
    let mut ui = ui();
    ui.overlay = Overlay::Help;
    let screen = text(&render(&sample_view(), &ui, 120, 34));
    for key in [
        "freeze",
        "virtual interfaces",
        "explain the selected finding",
        "pause",
    ] {
        assert!(screen.contains(key), "{key:?} not in help:\n{screen}");
    }
    ui.namespaces = vec!["host".into(), "web1".into(), "net:[4026532290]".into()];
    ui.overlay = Overlay::Picker(1);
    let screen = text(&render(&sample_view(), &ui, 120, 34));
    assert!(
        screen.contains("web1") && screen.contains("net:[4026532290]"),
        "{screen}"
    );
}

#[test]
fn any_size_draws_without_panic_and_small_ones_say_so() {
    let view = sample_view();
    let mut ui = ui();
    for overlay in [
        Overlay::None,
        Overlay::Help,
        Overlay::Explain(3),
        Overlay::Picker(0),
    ] {
        ui.overlay = overlay;
        for (w, h) in [
            (1, 1),
            (10, 3),
            (59, 40),
            (60, 16),
            (80, 24),
            (100, 30),
            (250, 80),
            (61, 17),
        ] {
            render(&view, &ui, w, h);
        }
    }
    let screen = text(&render(
        &view,
        &UiState::new("host".into(), true, 1.0, 10.0),
        50,
        12,
    ));
    assert!(screen.contains("needs at least 60×16"), "{screen}");
    // At 80×24 the sockets pane still shows the endpoints and rates.
    let screen = text(&render(
        &view,
        &UiState::new("host".into(), true, 1.0, 10.0),
        80,
        24,
    ));
    assert!(
        screen.contains("10.231.9.1:5201") && screen.contains("117.0M"),
        "{screen}"
    );
}

#[test]
fn empty_view_says_it_is_collecting() {
    let view = View {
        namespace: "host".into(),
        samples: 1,
        ..View::default()
    };
    let screen = text(&render(&view, &ui(), 100, 30));
    assert!(screen.contains("collecting the first interval"), "{screen}");
}

/// Live: a loopback connection moves a known number of bytes between two
/// samples; its row carries exactly those bytes over the interval, and lo's rate
/// covers them.
#[test]
fn live_socket_rates_are_exact_from_tcp_info() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let source = LiveSource {
        include_socket_owners: false,
        ..LiveSource::default().with_sockets()
    };
    let mut tracker = Tracker::new("host", Duration::from_secs(10), &[]);
    tracker.push(source.collect());
    const SENT: usize = 3_000_000;
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0;
        while got < SENT {
            got += server.read(&mut buf).unwrap();
        }
        (got, server)
    });
    client.write_all(&vec![7u8; SENT]).unwrap();
    // The server socket stays open until the second sample is taken.
    let (got, mut server) = reader.join().unwrap();
    assert_eq!(got, SENT);
    let second = source.collect();
    let view = tracker.push(second.clone());
    assert!(view.interval_s > 0.0);
    let row = view
        .sockets
        .iter()
        .find(|s| s.local_port != port && s.remote_port == port)
        .expect("the client's socket is listed");
    let tx = row.tx_bytes_per_s * view.interval_s;
    assert!(
        (tx - SENT as f64).abs() < 1.0,
        "client sent {tx} bytes by tcp_info, wrote {SENT}"
    );
    let server_row = view
        .sockets
        .iter()
        .find(|s| s.local_port == port && s.state == "ESTAB")
        .unwrap_or_else(|| panic!("no server socket in {:#?}", view.sockets));
    let rx = server_row.rx_bytes_per_s * view.interval_s;
    assert!((rx - SENT as f64).abs() < 1.0, "server received {rx}");
    let lo = view.interfaces.iter().find(|i| i.name == "lo").unwrap();
    assert!(
        lo.rx_bits_per_s * view.interval_s / 8.0 >= SENT as f64,
        "lo moved at least the payload"
    );
    assert_eq!(
        view.window_s, view.interval_s,
        "two samples: the window is one interval"
    );
    // The sockets are the busiest: listed first by rx+tx.
    assert!(view.top_sockets[0].total_bytes_per_s() >= row.total_bytes_per_s() - 1.0);
    assert!(view.health.tcp_states.get("LISTEN").copied().unwrap_or(0) >= 1);

    // A sample without a socket table (the sampler skipped it) keeps the last
    // one: with no bytes when the activity says nothing moved, else as it was
    // and marked with its age.
    let before = (view.sockets.len(), row.tx_bytes_per_s);
    let counters_only = LiveSource::default();
    let skipped = counters_only.collect();
    let unchanged = SocketActivity::of_raw(&skipped).same_as(&SocketActivity::of_raw(&second));
    let view = tracker.push(skipped);
    assert_eq!(view.sockets.len(), before.0, "the table is kept");
    let kept = view
        .sockets
        .iter()
        .find(|s| s.local_port != port && s.remote_port == port)
        .expect("the client's socket is still listed");
    if unchanged {
        assert_eq!((kept.tx_bytes_per_s, view.sockets_age_s), (0.0, 0.0));
    } else {
        assert_eq!(kept.tx_bytes_per_s, before.1);
        assert!(
            view.sockets_age_s > 0.0,
            "a table that may have changed says its age"
        );
    }
    // A bundle of the screen holds the table shown, in its newest sample.
    let window = tracker.window().snapshots();
    let newest = window.last().unwrap();
    assert!(newest.entries.contains_key("netlink/sock_diag/tcp4"));
    assert!(window[..window.len() - 1]
        .iter()
        .all(|r| !r.entries.keys().any(|k| k.starts_with("netlink/sock_diag"))));
    // The next read counts the bytes since the counters were last known.
    client.write_all(&[1u8; 1000]).unwrap();
    let mut buf = [0u8; 1000];
    server.read_exact(&mut buf).unwrap();
    let view = tracker.push(source.collect());
    let row = view
        .sockets
        .iter()
        .find(|s| s.local_port != port && s.remote_port == port)
        .unwrap();
    assert_eq!(view.sockets_age_s, 0.0);
    assert!(row.tx_bytes_per_s > 0.0);
}
