//! The socket table's types: states, sockets, memory, owners.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Result;

use super::*;

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

    /// The name of the kernel's state itself, as tracepoints report transitions:
    /// `ss`'s names, except CLOSE (ss says UNCONN) and NEW-SYN-RECV kept apart.
    pub fn kernel_name(&self) -> &'static str {
        match self {
            TcpState::Close => "CLOSE",
            TcpState::NewSynRecv => "NEW-SYN-RECV",
            other => other.as_str(),
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

/// Attaches owners (inode → process) to sockets.
pub fn attach_owners(sockets: &mut [Socket], owners: &HashMap<u32, ProcessRef>) {
    for s in sockets.iter_mut().filter(|s| s.inode != 0) {
        s.process = owners.get(&s.inode).cloned();
    }
}
