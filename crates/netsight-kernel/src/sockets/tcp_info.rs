//! struct tcp_info as Linux 6.18 defines it (include/uapi/linux/tcp.h), 280 bytes.
//! Older kernels send a prefix of it and newer ones may send more: we copy what
//! arrives, zero-fill the rest, and keep the length so readers know which fields are real.

use serde::{Deserialize, Serialize};
use zerocopy::{FromBytes, Immutable, KnownLayout};

#[repr(C)]
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    KnownLayout,
    Immutable,
    Serialize,
    Deserialize,
)]
pub struct TcpInfo {
    pub state: u8,
    /// Congestion-avoidance state: 0 open, 1 disorder, 2 cwr, 3 recovery, 4 loss.
    pub ca_state: u8,
    pub retransmits: u8,
    pub probes: u8,
    pub backoff: u8,
    /// TCPI_OPT_* bits: 1 timestamps, 2 sack, 4 wscale, 8 ecn, 16 ecn_seen, 32 syn_data.
    pub options: u8,
    /// snd_wscale in the low 4 bits, rcv_wscale in the high 4.
    pub wscale: u8,
    /// delivery_rate_app_limited in bit 0, fastopen_client_fail in bits 1-2.
    pub app_limited_and_fastopen: u8,
    pub rto_us: u32,
    pub ato_us: u32,
    pub snd_mss: u32,
    pub rcv_mss: u32,
    pub unacked: u32,
    pub sacked: u32,
    pub lost: u32,
    pub retrans: u32,
    pub fackets: u32,
    pub last_data_sent_ms: u32,
    pub last_ack_sent_ms: u32,
    pub last_data_recv_ms: u32,
    pub last_ack_recv_ms: u32,
    pub pmtu: u32,
    pub rcv_ssthresh: u32,
    pub rtt_us: u32,
    pub rttvar_us: u32,
    pub snd_ssthresh: u32,
    pub snd_cwnd: u32,
    pub advmss: u32,
    pub reordering: u32,
    pub rcv_rtt_us: u32,
    pub rcv_space: u32,
    pub total_retrans: u32,
    pub pacing_rate_bytes_per_s: u64,
    pub max_pacing_rate_bytes_per_s: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub segs_out: u32,
    pub segs_in: u32,
    pub notsent_bytes: u32,
    pub min_rtt_us: u32,
    pub data_segs_in: u32,
    pub data_segs_out: u32,
    pub delivery_rate_bytes_per_s: u64,
    pub busy_time_us: u64,
    pub rwnd_limited_us: u64,
    pub sndbuf_limited_us: u64,
    pub delivered: u32,
    pub delivered_ce: u32,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub dsack_dups: u32,
    pub reord_seen: u32,
    pub rcv_ooopack: u32,
    pub snd_wnd: u32,
    pub rcv_wnd: u32,
    pub rehash: u32,
    pub total_rto: u16,
    pub total_rto_recoveries: u16,
    pub total_rto_time_ms: u32,
    pub received_ce: u32,
    pub delivered_e1_bytes: u32,
    pub delivered_e0_bytes: u32,
    pub delivered_ce_bytes: u32,
    pub received_e1_bytes: u32,
    pub received_e0_bytes: u32,
    pub received_ce_bytes: u32,
    pub accecn_fail_mode: u16,
    pub accecn_opt_seen: u16,
}

pub const TCP_INFO_LEN: usize = std::mem::size_of::<TcpInfo>();
const _: () = assert!(TCP_INFO_LEN == 280);

/// Offsets where fields end, for "was this field sent": 6.18 = 280, 4.19 ≈ 192...
pub mod end_offset {
    pub const DELIVERY_RATE: usize = 168;
    pub const LIMITED_TIMES: usize = 192;
    pub const BYTES_SENT: usize = 216;
    pub const SND_WND: usize = 232;
    pub const TOTAL_RTO: usize = 248;
}

/// TCP_INFO of one of this process's own sockets (getsockopt), with the number of
/// bytes the kernel filled (older kernels fill a prefix).
#[allow(unsafe_code)]
pub fn of_socket(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<(TcpInfo, usize)> {
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; TCP_INFO_LEN];
    let mut len = TCP_INFO_LEN as libc::socklen_t;
    // SAFETY: buf is TCP_INFO_LEN writable bytes and len says so; the kernel writes
    // at most len bytes and stores how many in len.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let n = (len as usize).min(TCP_INFO_LEN);
    Ok((TcpInfo::from_kernel_bytes(&buf[..n]), n))
}

impl TcpInfo {
    /// Copies the kernel's bytes (any length) into the 6.18 layout.
    pub fn from_kernel_bytes(bytes: &[u8]) -> TcpInfo {
        let mut buf = [0u8; TCP_INFO_LEN];
        let n = bytes.len().min(TCP_INFO_LEN);
        buf[..n].copy_from_slice(&bytes[..n]);
        TcpInfo::read_from_bytes(&buf).unwrap_or_default()
    }

    pub fn snd_wscale(&self) -> u8 {
        self.wscale & 0x0f
    }
    pub fn rcv_wscale(&self) -> u8 {
        self.wscale >> 4
    }
    pub fn delivery_rate_app_limited(&self) -> bool {
        self.app_limited_and_fastopen & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_offsets_match_the_uapi_header() {
        // Write markers at known offsets of the 6.18 layout and read them back by name.
        let mut b = vec![0u8; TCP_INFO_LEN];
        b[6] = 0x97; // snd_wscale 7, rcv_wscale 9
        b[68..72].copy_from_slice(&1234u32.to_ne_bytes()); // tcpi_rtt
        b[80..84].copy_from_slice(&10u32.to_ne_bytes()); // tcpi_snd_cwnd
        b[100..104].copy_from_slice(&3u32.to_ne_bytes()); // tcpi_total_retrans
        b[160..168].copy_from_slice(&5_000_000u64.to_ne_bytes()); // tcpi_delivery_rate
        b[176..184].copy_from_slice(&77u64.to_ne_bytes()); // tcpi_rwnd_limited
        b[228..232].copy_from_slice(&65535u32.to_ne_bytes()); // tcpi_snd_wnd
        b[240..242].copy_from_slice(&2u16.to_ne_bytes()); // tcpi_total_rto
        b[278..280].copy_from_slice(&1u16.to_ne_bytes()); // tcpi_accecn_opt_seen
        let t = TcpInfo::from_kernel_bytes(&b);
        assert_eq!((t.snd_wscale(), t.rcv_wscale()), (7, 9));
        assert_eq!(t.rtt_us, 1234);
        assert_eq!(t.snd_cwnd, 10);
        assert_eq!(t.total_retrans, 3);
        assert_eq!(t.delivery_rate_bytes_per_s, 5_000_000);
        assert_eq!(t.rwnd_limited_us, 77);
        assert_eq!(t.snd_wnd, 65535);
        assert_eq!(t.total_rto, 2);
        assert_eq!(t.accecn_opt_seen, 1);
    }

    #[test]
    fn short_and_long_inputs() {
        let t = TcpInfo::from_kernel_bytes(&[1, 2, 3]);
        assert_eq!((t.state, t.ca_state, t.retransmits, t.rtt_us), (1, 2, 3, 0));
        let long = vec![0xffu8; 400];
        assert_eq!(TcpInfo::from_kernel_bytes(&long).accecn_opt_seen, 0xffff);
    }
}
