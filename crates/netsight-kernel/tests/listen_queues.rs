//! `dump_listen_queues` (what `trace synbl` samples) asks the kernel for
//! listeners and half-open connections only: established sockets never cross.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use netsight_kernel::sockets::{self, Protocol, TcpState};

#[test]
fn only_listeners_and_half_open_connections_are_dumped() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_server, _) = listener.accept().unwrap();
    let client_port = client.local_addr().unwrap().port();

    let mut socks = Vec::new();
    for family in [sockets::AF_INET, sockets::AF_INET6] {
        let bytes = sockets::dump_listen_queues(family).unwrap();
        sockets::parse_dump(&bytes, Protocol::Tcp, &mut socks).unwrap();
    }
    assert!(
        socks.iter().all(|s| matches!(
            s.state,
            TcpState::Listen | TcpState::SynRecv | TcpState::NewSynRecv
        )),
        "{:?}",
        socks.iter().map(|s| s.state).collect::<Vec<_>>()
    );
    assert!(socks
        .iter()
        .any(|s| s.state == TcpState::Listen && s.local_port == port));
    assert!(
        !socks.iter().any(|s| s.local_port == client_port),
        "an established socket was dumped"
    );
    // The full dump does have the connection.
    let mut all = Vec::new();
    sockets::parse_dump(
        &sockets::dump(sockets::AF_INET, Protocol::Tcp).unwrap(),
        Protocol::Tcp,
        &mut all,
    )
    .unwrap();
    assert!(all.iter().any(|s| s.local_port == client_port));
}
