//! Sockets over NETLINK_SOCK_DIAG (TCP and UDP, IPv4 and IPv6) with tcp_info,
//! memory, congestion control, TOS and shutdown state; owners from /proc/PID/fd;
//! UNIX socket counts from /proc/net/unix.
//!
//! Replies are parsed in place (no per-socket attribute vectors): at 60k sockets
//! the parse is on the hot path of `netsight sockets`, and tcp_info must be kept
//! at the length the kernel sent, which the sock-diag crate's typed struct cuts.

pub mod own_options;
pub mod owners;
pub mod owners_bpf;
pub mod summary;
pub mod tcp_info;

mod model;
mod parse;
mod pipeline;
mod request;

pub use model::*;
pub use parse::{parse_dump, parse_unix_counts};
pub use pipeline::live_table;
pub use request::*;

pub use tcp_info::TcpInfo;

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::parse::*;
    use super::*;

    /// A hand-built SOCK_DIAG_BY_FAMILY reply: 127.0.0.1:8080 → 127.0.0.1:40000, ESTAB,
    /// with a 232-byte tcp_info (an older kernel) and a congestion-control name.
    fn reply() -> Vec<u8> {
        let mut body = vec![0u8; INET_DIAG_MSG_LEN];
        body[0] = libc::AF_INET as u8;
        body[1] = 1; // ESTABLISHED
        body[4..6].copy_from_slice(&8080u16.to_be_bytes());
        body[6..8].copy_from_slice(&40000u16.to_be_bytes());
        body[8..12].copy_from_slice(&[127, 0, 0, 1]);
        body[24..28].copy_from_slice(&[127, 0, 0, 1]);
        body[56..60].copy_from_slice(&5u32.to_ne_bytes()); // rqueue
        body[68..72].copy_from_slice(&4242u32.to_ne_bytes()); // inode
        let mut info = vec![0u8; 232];
        info[68..72].copy_from_slice(&250u32.to_ne_bytes()); // rtt
        let mut attr = |kind: u16, value: &[u8]| {
            body.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
            body.extend_from_slice(&kind.to_ne_bytes());
            body.extend_from_slice(value);
            while !body.len().is_multiple_of(4) {
                body.push(0);
            }
        };
        attr(INET_DIAG_INFO, &info);
        attr(INET_DIAG_CONG, b"cubic\0");
        attr(INET_DIAG_SHUTDOWN, &[2]);
        let mut msg = Vec::new();
        msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&20u16.to_ne_bytes());
        msg.extend_from_slice(&[0u8; 10]);
        msg.extend_from_slice(&body);
        msg
    }

    #[test]
    fn parses_inet_diag_msg_and_attributes() {
        let mut out = Vec::new();
        parse_dump(&reply(), Protocol::Tcp, &mut out).unwrap();
        let s = &out[0];
        assert_eq!(s.state, TcpState::Established);
        assert_eq!((s.local_port, s.remote_port), (8080, 40000));
        assert_eq!(s.local_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!((s.recv_q, s.inode), (5, 4242));
        assert_eq!(s.tcp_info_len, Some(232));
        assert_eq!(s.tcp_info.unwrap().rtt_us, 250);
        assert_eq!(s.congestion_control.as_deref(), Some("cubic"));
        assert_eq!(s.shutdown, Some(2));
        // 232 bytes predate the busy/limited times' full set? No: they end at 192.
        assert_eq!(s.limited_by(), None, "busy_time is zero");
    }

    #[test]
    fn truncated_message_is_an_error() {
        let mut m = reply();
        m.truncate(16 + 40);
        m[0..4].copy_from_slice(&(56u32).to_ne_bytes());
        assert!(parse_dump(&m, Protocol::Tcp, &mut Vec::new()).is_err());
    }

    #[test]
    fn state_names_round_trip() {
        for v in 1..=11u8 {
            let s = TcpState::from_kernel(v);
            assert_eq!(TcpState::parse(s.as_str()), Some(s), "{v}");
        }
        assert_eq!(TcpState::parse("time_wait"), Some(TcpState::TimeWait));
        assert_eq!(TcpState::parse("bogus"), None);
    }

    #[test]
    fn unix_counts() {
        let text = "Num       RefCount Protocol Flags    Type St Inode Path\n\
                    0000: 00000002 00000000 00010000 0001 01 1234 /run/x.sock\n\
                    0000: 00000003 00000000 00000000 0001 03 1235\n\
                    0000: 00000002 00000000 00000000 0002 01 1236\n";
        let c = parse_unix_counts(text);
        assert_eq!(c["stream/unconnected"], 1);
        assert_eq!(c["stream/connected"], 1);
        assert_eq!(c["dgram/unconnected"], 1);
    }
}
