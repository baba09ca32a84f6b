//! Sockets over NETLINK_SOCK_DIAG (TCP and UDP, IPv4 and IPv6) with tcp_info,
//! memory, congestion control, TOS and shutdown state; owners from /proc/PID/fd;
//! UNIX socket counts from /proc/net/unix.
//!
//! Replies are parsed in place (no per-socket attribute vectors): at 60k sockets
//! the parse is on the hot path of `netsight sockets`, and tcp_info must be kept
//! at the length the kernel sent, which the sock-diag crate's typed struct cuts.

pub mod owners;
pub mod owners_bpf;
pub mod summary;
pub mod tcp_info;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use serde::{Deserialize, Serialize};

use crate::error::{KernelError, Result};
use crate::netlink_io;
pub use tcp_info::TcpInfo;

/// TCP states as the kernel numbers them (include/net/tcp_states.h), named as `ss` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    /// TCP_CLOSE; for UDP "unconnected".
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    NewSynRecv,
    Other(u8),
}

impl TcpState {
    pub fn from_kernel(v: u8) -> TcpState {
        match v {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            12 => TcpState::NewSynRecv,
            other => TcpState::Other(other),
        }
    }

    /// The name `ss` uses.
    pub fn as_str(&self) -> &'static str {
        match self {
            TcpState::Established => "ESTAB",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynRecv | TcpState::NewSynRecv => "SYN-RECV",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::TimeWait => "TIME-WAIT",
            TcpState::Close => "UNCONN",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::LastAck => "LAST-ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::Other(_) => "UNKNOWN",
        }
    }

    /// Parses `ss` names and common spellings ("time-wait", "TIME_WAIT", "estab").
    pub fn parse(name: &str) -> Option<TcpState> {
        let n = name.to_ascii_uppercase().replace('_', "-");
        Some(match n.as_str() {
            "ESTAB" | "ESTABLISHED" => TcpState::Established,
            "SYN-SENT" => TcpState::SynSent,
            "SYN-RECV" => TcpState::SynRecv,
            "FIN-WAIT-1" => TcpState::FinWait1,
            "FIN-WAIT-2" => TcpState::FinWait2,
            "TIME-WAIT" => TcpState::TimeWait,
            "UNCONN" | "CLOSE" | "CLOSED" => TcpState::Close,
            "CLOSE-WAIT" => TcpState::CloseWait,
            "LAST-ACK" => TcpState::LastAck,
            "LISTEN" => TcpState::Listen,
            "CLOSING" => TcpState::Closing,
            _ => return None,
        })
    }
}

impl Serialize for TcpState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TcpState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(TcpState::parse(&s).unwrap_or(TcpState::Other(0)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// The kernel's socket memory view (INET_DIAG_SKMEMINFO, `ss -m` "skmem").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkMemInfo {
    pub rmem_alloc: u32,
    pub rcvbuf: u32,
    pub wmem_alloc: u32,
    pub sndbuf: u32,
    pub fwd_alloc: u32,
    pub wmem_queued: u32,
    pub optmem: u32,
    pub backlog: u32,
    /// Packets dropped on this socket (receive buffer full, filter) — SK_MEMINFO_DROPS.
    pub drops: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    pub pid: u32,
    pub comm: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Socket {
    pub protocol: Protocol,
    /// 4 or 6.
    pub ip_version: u8,
    pub state: TcpState,
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub remote_addr: IpAddr,
    pub remote_port: u16,
    /// Bound interface index (0 = any).
    pub interface: u32,
    /// Bytes not yet read by the application; for a listener, the accept queue length.
    pub recv_q: u32,
    /// Bytes not yet acknowledged; for a listener, the accept backlog limit.
    pub send_q: u32,
    pub uid: u32,
    pub inode: u32,
    /// Active timer: 0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 zero-window probe.
    pub timer: u8,
    pub timer_expires_ms: u32,
    pub tcp_info: Option<TcpInfo>,
    /// Bytes of tcp_info the kernel sent (280 on 6.18); fields past it read 0.
    pub tcp_info_len: Option<u16>,
    pub skmem: Option<SkMemInfo>,
    /// Shared between sockets: there are only a few algorithm names.
    pub congestion_control: Option<Arc<str>>,
    pub tos: Option<u8>,
    /// Bit 0: no more receives (SHUT_RD), bit 1: no more sends (SHUT_WR).
    pub shutdown: Option<u8>,
    pub process: Option<ProcessRef>,
}

impl Socket {
    /// What limits this connection's sending, from the time shares tcp_info keeps:
    /// "rwnd" (peer's receive window) or "sndbuf" (our send buffer) when one of them
    /// covers at least a quarter of the busy time; "app" when the last delivery-rate
    /// sample was application limited; "cwnd" (network/congestion) otherwise.
    pub fn limited_by(&self) -> Option<&'static str> {
        let t = self.tcp_info.as_ref()?;
        if self.tcp_info_len.unwrap_or(0) < tcp_info::end_offset::LIMITED_TIMES as u16
            || t.busy_time_us == 0
        {
            return None;
        }
        let quarter = t.busy_time_us / 4;
        if t.rwnd_limited_us >= quarter && t.rwnd_limited_us >= t.sndbuf_limited_us {
            Some("rwnd")
        } else if t.sndbuf_limited_us >= quarter {
            Some("sndbuf")
        } else if t.delivery_rate_app_limited() {
            Some("app")
        } else {
            Some("cwnd")
        }
    }
}

/// Every socket of one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SocketTable {
    pub sockets: Vec<Socket>,
    /// UNIX sockets by "type/state" ("stream/connected", "dgram/unconnected"...).
    pub unix_counts: BTreeMap<String, u64>,
    /// False when /proc/PID/fd could not be read (no privilege): owners are then partial.
    pub owners_complete: bool,
}

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

fn inet_request(family: u8, protocol: Protocol) -> SockDiagMessage {
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

/// Every TCP/UDP socket of the running system for `netsight sockets`, which keeps
/// no raw bytes: replies are decoded on a second thread while the kernel is still
/// dumping, and owners are looked up on a third. Returns the table and, when the
/// BPF owner iterator could not run, why (the /proc scan was used instead).
pub fn live_table(
    proc_root: &std::path::Path,
    with_owners: bool,
) -> Result<(SocketTable, Option<String>)> {
    std::thread::scope(|scope| {
        let owners = scope.spawn(|| with_owners.then(|| owners::scan_live(proc_root)));
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Protocol, Vec<u8>)>(256);
        // Decoded reply buffers go back to the reader: no per-reply allocation or copy.
        let (recycle_tx, recycle_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let expected = expected_socket_count(proc_root);
        let parser = scope.spawn(move || {
            let mut sockets = Vec::with_capacity(expected);
            let mut first_error = None;
            for (protocol, chunk) in rx {
                if let Err(e) = parse_dump(&chunk, protocol, &mut sockets) {
                    first_error.get_or_insert(e);
                }
                let _ = recycle_tx.send(chunk);
            }
            (sockets, first_error)
        });
        let mut dump_error = None;
        for (_, family, protocol) in DUMPS {
            let sent = netlink_io::request_each(
                netlink_sys::protocols::NETLINK_SOCK_DIAG,
                "sock_diag",
                inet_request(family, protocol),
                true,
                |reply| {
                    let spare = recycle_rx.try_recv().unwrap_or_default();
                    let _ = tx.send((protocol, std::mem::replace(reply, spare)));
                },
            );
            if let Err(e) = sent {
                dump_error.get_or_insert(e);
            }
        }
        drop(tx);
        let (mut sockets, parse_error) = parser.join().map_err(|_| KernelError::NetlinkDecode {
            family: "sock_diag",
            what: "inet_diag_msg".into(),
            detail: "decoder thread panicked".into(),
        })?;
        if let Some(e) = dump_error.or(parse_error) {
            return Err(e);
        }
        let mut table = SocketTable {
            sockets: Vec::new(),
            unix_counts: std::fs::read_to_string(proc_root.join("net/unix"))
                .map(|t| parse_unix_counts(&t))
                .unwrap_or_default(),
            owners_complete: false,
        };
        let mut bpf_note = None;
        if let Ok(Some((found, bpf_error))) = owners.join() {
            table.owners_complete = found.complete;
            let map = if found.records.is_empty() {
                found.by_inode
            } else {
                owners_bpf::parse_records(&found.records)
            };
            attach_owners(&mut sockets, &map);
            bpf_note = bpf_error;
        }
        table.sockets = sockets;
        Ok((table, bpf_note))
    })
}

/// Sockets the kernel counts in /proc/net/sockstat{,6} (TCP in use + TIME-WAIT, UDP),
/// to size the table once instead of growing it; 0 when unreadable.
fn expected_socket_count(proc_root: &std::path::Path) -> usize {
    let mut total = 0;
    for file in ["net/sockstat", "net/sockstat6"] {
        let Ok(text) = std::fs::read_to_string(proc_root.join(file)) else {
            continue;
        };
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let Some(proto) = words.next() else { continue };
            if !matches!(proto, "TCP:" | "TCP6:" | "UDP:" | "UDP6:") {
                continue;
            }
            while let Some(key) = words.next() {
                let value: usize = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                if key == "inuse" || key == "tw" {
                    total += value;
                }
            }
        }
    }
    total
}

// inet_diag attribute types (include/uapi/linux/inet_diag.h).
const INET_DIAG_INFO: u16 = 2;
const INET_DIAG_CONG: u16 = 4;
const INET_DIAG_TOS: u16 = 5;
const INET_DIAG_SKMEMINFO: u16 = 7;
const INET_DIAG_SHUTDOWN: u16 = 8;
const INET_DIAG_MSG_LEN: usize = 72;
const NLMSG_HDR_LEN: usize = 16;

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

/// Attaches owners (inode → process) to sockets.
pub fn attach_owners(sockets: &mut [Socket], owners: &HashMap<u32, ProcessRef>) {
    for s in sockets.iter_mut().filter(|s| s.inode != 0) {
        s.process = owners.get(&s.inode).cloned();
    }
}

#[cfg(test)]
mod tests {
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
