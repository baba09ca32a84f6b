//! Decoding sock_diag replies in place, and /proc/net/unix counts.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::error::{KernelError, Result};
use crate::netlink_io;

use super::*;

// inet_diag attribute types (include/uapi/linux/inet_diag.h).
pub(super) const INET_DIAG_INFO: u16 = 2;
pub(super) const INET_DIAG_CONG: u16 = 4;
pub(super) const INET_DIAG_TOS: u16 = 5;
pub(super) const INET_DIAG_SKMEMINFO: u16 = 7;
pub(super) const INET_DIAG_SHUTDOWN: u16 = 8;
pub(super) const INET_DIAG_MSG_LEN: usize = 72;
pub(super) const NLMSG_HDR_LEN: usize = 16;

fn ne_u32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decodes a dump (inet_diag_msg + attributes per socket) into `out`.
pub fn parse_dump(buf: &[u8], protocol: Protocol, out: &mut Vec<Socket>) -> Result<()> {
    netlink_io::check_framing(buf, "sock_diag", "inet_diag_msg")?;
    let bad = |detail: String| KernelError::NetlinkDecode {
        family: "sock_diag",
        what: "inet_diag_msg".into(),
        detail,
    };
    // A socket's message is ~400 bytes with tcp_info; reserving avoids regrowth copies.
    out.reserve(buf.len() / 512);
    let mut cong_names: Vec<Arc<str>> = Vec::new();
    for msg in netlink_io::data_messages(buf) {
        let body = &msg[NLMSG_HDR_LEN..];
        if body.len() < INET_DIAG_MSG_LEN {
            return Err(bad(format!("message of {} bytes", body.len())));
        }
        let family = body[0];
        let addr = |at: usize| -> IpAddr {
            if family == libc::AF_INET as u8 {
                IpAddr::V4(Ipv4Addr::new(
                    body[at],
                    body[at + 1],
                    body[at + 2],
                    body[at + 3],
                ))
            } else {
                let mut a = [0u8; 16];
                a.copy_from_slice(&body[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(a))
            }
        };
        let mut socket = Socket {
            protocol,
            ip_version: if family == libc::AF_INET as u8 { 4 } else { 6 },
            state: TcpState::from_kernel(body[1]),
            timer: body[2],
            local_port: u16::from_be_bytes([body[4], body[5]]),
            remote_port: u16::from_be_bytes([body[6], body[7]]),
            local_addr: addr(8),
            remote_addr: addr(24),
            interface: ne_u32(body, 40),
            timer_expires_ms: ne_u32(body, 52),
            recv_q: ne_u32(body, 56),
            send_q: ne_u32(body, 60),
            uid: ne_u32(body, 64),
            inode: ne_u32(body, 68),
            tcp_info: None,
            tcp_info_len: None,
            skmem: None,
            congestion_control: None,
            tos: None,
            shutdown: None,
            process: None,
        };
        for attr in netlink_io::attributes(&body[INET_DIAG_MSG_LEN..]) {
            let (kind, value) = attr.map_err(bad)?;
            match kind {
                INET_DIAG_INFO if protocol == Protocol::Tcp => {
                    socket.tcp_info = Some(TcpInfo::from_kernel_bytes(value));
                    socket.tcp_info_len = Some(value.len().min(u16::MAX as usize) as u16);
                }
                INET_DIAG_CONG => {
                    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
                    let name = &value[..end];
                    let shared = match cong_names.iter().find(|n| n.as_bytes() == name) {
                        Some(n) => n.clone(),
                        None => {
                            let n: Arc<str> = String::from_utf8_lossy(name).into();
                            cong_names.push(n.clone());
                            n
                        }
                    };
                    socket.congestion_control = Some(shared);
                }
                INET_DIAG_TOS => socket.tos = value.first().copied(),
                INET_DIAG_SHUTDOWN => socket.shutdown = value.first().copied(),
                INET_DIAG_SKMEMINFO => {
                    let v = |i: usize| {
                        if value.len() >= (i + 1) * 4 {
                            ne_u32(value, i * 4)
                        } else {
                            0
                        }
                    };
                    socket.skmem = Some(SkMemInfo {
                        rmem_alloc: v(0),
                        rcvbuf: v(1),
                        wmem_alloc: v(2),
                        sndbuf: v(3),
                        fwd_alloc: v(4),
                        wmem_queued: v(5),
                        optmem: v(6),
                        backlog: v(7),
                        drops: v(8),
                    });
                }
                _ => {}
            }
        }
        out.push(socket);
    }
    Ok(())
}

/// /proc/net/unix counted by type and state.
pub fn parse_unix_counts(text: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    // Num RefCount Protocol Flags Type St Inode Path
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(ty), Some(st)) = (f.get(4), f.get(5)) else {
            continue;
        };
        let ty = match *ty {
            "0001" => "stream",
            "0002" => "dgram",
            "0005" => "seqpacket",
            _ => "other",
        };
        let st = match *st {
            "01" => "unconnected",
            "02" => "connecting",
            "03" => "connected",
            "04" => "disconnecting",
            _ => "other",
        };
        *counts.entry(format!("{ty}/{st}")).or_insert(0) += 1;
    }
    counts
}
