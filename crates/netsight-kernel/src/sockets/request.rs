//! The sock_diag requests: which dumps, and how each is asked for.

use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;

use crate::error::Result;
use crate::netlink_io;

use super::*;

/// The four dumps taken, with their bundle key names.
pub const DUMPS: [(&str, u8, Protocol); 4] = [
    ("tcp4", libc::AF_INET as u8, Protocol::Tcp),
    ("tcp6", libc::AF_INET6 as u8, Protocol::Tcp),
    ("udp4", libc::AF_INET as u8, Protocol::Udp),
    ("udp6", libc::AF_INET6 as u8, Protocol::Udp),
];

/// Address families as sock_diag takes them.
pub const AF_INET: u8 = libc::AF_INET as u8;
pub const AF_INET6: u8 = libc::AF_INET6 as u8;

/// A dump of TCP listeners and half-open connections only (LISTEN, SYN-RECV,
/// NEW_SYN_RECV), with no extensions: the accept queue and backlog are in the
/// base message. What `trace synbl` samples ten times a second.
pub fn dump_listen_queues(family: u8) -> Result<Vec<u8>> {
    let states = (1u32 << 10) | (1 << 3) | (1 << 12);
    netlink_io::request(
        netlink_sys::protocols::NETLINK_SOCK_DIAG,
        "sock_diag",
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: libc::IPPROTO_TCP as u8,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::from_bits_retain(states),
            socket_id: if family == AF_INET {
                SocketId::new_v4()
            } else {
                SocketId::new_v6()
            },
        }),
        true,
    )
}

pub(super) fn inet_request(family: u8, protocol: Protocol) -> SockDiagMessage {
    // SKMEMINFO supersedes MEMINFO (which we would not read); asking less is cheaper.
    let mut extensions = ExtensionFlags::SKMEMINFO | ExtensionFlags::TOS;
    if protocol == Protocol::Tcp {
        extensions |= ExtensionFlags::INFO | ExtensionFlags::CONG;
    }
    SockDiagMessage::InetRequest(InetRequest {
        family,
        protocol: match protocol {
            Protocol::Tcp => libc::IPPROTO_TCP as u8,
            Protocol::Udp => libc::IPPROTO_UDP as u8,
        },
        extensions,
        // States 0..=11 plus NEW_SYN_RECV (12), as `ss -a` asks; not BOUND_INACTIVE (13).
        states: StateFlags::from_bits_retain(0x1fff),
        socket_id: if family == libc::AF_INET as u8 {
            SocketId::new_v4()
        } else {
            SocketId::new_v6()
        },
    })
}

/// One sock_diag dump of every socket of a family and protocol.
pub fn dump(family: u8, protocol: Protocol) -> Result<Vec<u8>> {
    netlink_io::request(
        netlink_sys::protocols::NETLINK_SOCK_DIAG,
        "sock_diag",
        inet_request(family, protocol),
        true,
    )
}
