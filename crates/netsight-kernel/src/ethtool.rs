//! NIC settings and driver counters.
//! - features, rings, coalescing, channels: the ethtool generic-netlink family, one
//!   dump per kind for all interfaces (an interface missing from a dump did not support it);
//! - `ethtool -S` driver counters: the ETHTOOL_GSTATS ioctl (no netlink equivalent).

use std::collections::BTreeMap;

use ethtool::{
    EthtoolAttr, EthtoolChannelAttr, EthtoolCoalesceAttr, EthtoolHeader, EthtoolMessage,
    EthtoolRingAttr,
};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::GenlMessage;
use serde::{Deserialize, Serialize};

use crate::error::{KernelError, Result};
use crate::netlink_io;
use crate::support::Support;

/// What `ethtool -k/-g/-c/-l` show, per interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthtoolSettings {
    /// Offload features: active ones true; changeable but off ones false.
    pub features: Support<BTreeMap<String, bool>>,
    /// Ring sizes: rx, rx_max, tx, tx_max, ...
    pub rings: Support<BTreeMap<String, u64>>,
    /// Interrupt coalescing: rx_usecs, rx_max_frames, adaptive_rx, ...
    pub coalesce: Support<BTreeMap<String, u64>>,
    /// Queues: rx, tx, combined, other, and their *_max.
    pub channels: Support<BTreeMap<String, u64>>,
}

/// The four ethtool netlink dumps we take, with their bundle names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EthtoolDump {
    Features,
    Rings,
    Coalesce,
    Channels,
}

impl EthtoolDump {
    pub const ALL: [EthtoolDump; 4] = [
        EthtoolDump::Features,
        EthtoolDump::Rings,
        EthtoolDump::Coalesce,
        EthtoolDump::Channels,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EthtoolDump::Features => "features",
            EthtoolDump::Rings => "rings",
            EthtoolDump::Coalesce => "coalesce",
            EthtoolDump::Channels => "channels",
        }
    }

    fn request(self) -> EthtoolMessage {
        match self {
            EthtoolDump::Features => EthtoolMessage::new_feature_get(None),
            EthtoolDump::Rings => EthtoolMessage::new_ring_get(None),
            EthtoolDump::Coalesce => EthtoolMessage::new_coalesce_get(None),
            EthtoolDump::Channels => EthtoolMessage::new_channel_get(None),
        }
    }
}

/// Resolves the "ethtool" generic netlink family id.
pub fn resolve_family() -> Result<u16> {
    let request = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName("ethtool".into())],
    });
    let reply = netlink_io::request(
        netlink_sys::protocols::NETLINK_GENERIC,
        "nlctrl",
        request,
        false,
    )?;
    for raw in netlink_io::data_messages(&reply) {
        if let Ok(msg) = NetlinkMessage::<GenlMessage<GenlCtrl>>::deserialize(raw) {
            if let NetlinkPayload::InnerMessage(genl) = msg.payload {
                for nla in genl.payload.nlas {
                    if let GenlCtrlAttrs::FamilyId(id) = nla {
                        return Ok(id);
                    }
                }
            }
        }
    }
    Err(KernelError::NetlinkDecode {
        family: "nlctrl",
        what: "CTRL_CMD_GETFAMILY ethtool".into(),
        detail: "no family id in reply".into(),
    })
}

pub fn dump(family_id: u16, what: EthtoolDump) -> Result<Vec<u8>> {
    let mut request = GenlMessage::from_payload(what.request());
    request.set_resolved_family_id(family_id);
    netlink_io::request(
        netlink_sys::protocols::NETLINK_GENERIC,
        "ethtool",
        request,
        true,
    )
}

/// Decodes one dump into per-interface name → value maps.
pub fn parse_dump(what: EthtoolDump, buf: &[u8]) -> Result<BTreeMap<String, EthtoolValues>> {
    netlink_io::check_framing(buf, "ethtool", "dump")?;
    if what == EthtoolDump::Features {
        return parse_features_dump(buf);
    }
    let mut out = BTreeMap::new();
    for raw in netlink_io::data_messages(buf) {
        let msg = NetlinkMessage::<GenlMessage<EthtoolMessage>>::deserialize(raw).map_err(|e| {
            KernelError::NetlinkDecode {
                family: "ethtool",
                what: what.name().into(),
                detail: e.to_string(),
            }
        })?;
        let NetlinkPayload::InnerMessage(genl) = msg.payload else {
            continue;
        };
        let mut dev = None;
        let mut values = EthtoolValues::default();
        for attr in &genl.payload.nlas {
            if let Some(name) = header_dev_name(attr) {
                dev = Some(name);
            }
            collect_attr(attr, &mut values);
        }
        if let Some(dev) = dev {
            out.insert(dev, values);
        }
    }
    Ok(out)
}

/// Values of one interface from one dump: numbers, or feature flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EthtoolValues {
    pub numbers: BTreeMap<String, u64>,
    pub flags: BTreeMap<String, bool>,
}

fn header_dev_name(attr: &EthtoolAttr) -> Option<String> {
    let headers = match attr {
        EthtoolAttr::Ring(EthtoolRingAttr::Header(h))
        | EthtoolAttr::Coalesce(EthtoolCoalesceAttr::Header(h))
        | EthtoolAttr::Channel(EthtoolChannelAttr::Header(h)) => h,
        _ => return None,
    };
    headers.iter().find_map(|h| match h {
        EthtoolHeader::DevName(n) => Some(n.clone()),
        _ => None,
    })
}

fn collect_attr(attr: &EthtoolAttr, v: &mut EthtoolValues) {
    let mut num = |name: &str, value: u64| {
        v.numbers.insert(name.to_string(), value);
    };
    match attr {
        EthtoolAttr::Ring(r) => match r {
            EthtoolRingAttr::RxMax(x) => num("rx_max", (*x).into()),
            EthtoolRingAttr::RxMiniMax(x) => num("rx_mini_max", (*x).into()),
            EthtoolRingAttr::RxJumboMax(x) => num("rx_jumbo_max", (*x).into()),
            EthtoolRingAttr::TxMax(x) => num("tx_max", (*x).into()),
            EthtoolRingAttr::Rx(x) => num("rx", (*x).into()),
            EthtoolRingAttr::RxMini(x) => num("rx_mini", (*x).into()),
            EthtoolRingAttr::RxJumbo(x) => num("rx_jumbo", (*x).into()),
            EthtoolRingAttr::Tx(x) => num("tx", (*x).into()),
            EthtoolRingAttr::RxBufLen(x) => num("rx_buf_len", (*x).into()),
            EthtoolRingAttr::CqeSize(x) => num("cqe_size", (*x).into()),
            EthtoolRingAttr::TcpDataSplit(x) => num("tcp_data_split", (*x).into()),
            EthtoolRingAttr::TxPush(x) => num("tx_push", (*x).into()),
            _ => {}
        },
        EthtoolAttr::Channel(c) => match c {
            EthtoolChannelAttr::RxMax(x) => num("rx_max", (*x).into()),
            EthtoolChannelAttr::TxMax(x) => num("tx_max", (*x).into()),
            EthtoolChannelAttr::OtherMax(x) => num("other_max", (*x).into()),
            EthtoolChannelAttr::CombinedMax(x) => num("combined_max", (*x).into()),
            EthtoolChannelAttr::RxCount(x) => num("rx", (*x).into()),
            EthtoolChannelAttr::TxCount(x) => num("tx", (*x).into()),
            EthtoolChannelAttr::OtherCount(x) => num("other", (*x).into()),
            EthtoolChannelAttr::CombinedCount(x) => num("combined", (*x).into()),
            _ => {}
        },
        EthtoolAttr::Coalesce(c) => {
            use EthtoolCoalesceAttr as C;
            let (name, value): (&str, u64) = match c {
                C::RxUsecs(x) => ("rx_usecs", (*x).into()),
                C::RxMaxFrames(x) => ("rx_max_frames", (*x).into()),
                C::RxUsecsIrq(x) => ("rx_usecs_irq", (*x).into()),
                C::RxMaxFramesIrq(x) => ("rx_max_frames_irq", (*x).into()),
                C::TxUsecs(x) => ("tx_usecs", (*x).into()),
                C::TxMaxFrames(x) => ("tx_max_frames", (*x).into()),
                C::TxUsecsIrq(x) => ("tx_usecs_irq", (*x).into()),
                C::TxMaxFramesIrq(x) => ("tx_max_frames_irq", (*x).into()),
                C::StatsBlockUsecs(x) => ("stats_block_usecs", (*x).into()),
                C::UseAdaptiveRx(x) => ("adaptive_rx", (*x).into()),
                C::UseAdaptiveTx(x) => ("adaptive_tx", (*x).into()),
                C::PktRateLow(x) => ("pkt_rate_low", (*x).into()),
                C::RxUsecsLow(x) => ("rx_usecs_low", (*x).into()),
                C::RxMaxFramesLow(x) => ("rx_max_frames_low", (*x).into()),
                C::TxUsecsLow(x) => ("tx_usecs_low", (*x).into()),
                C::TxMaxFramesLow(x) => ("tx_max_frames_low", (*x).into()),
                C::PktRateHigh(x) => ("pkt_rate_high", (*x).into()),
                C::RxUsecsHigh(x) => ("rx_usecs_high", (*x).into()),
                C::RxMaxFramesHigh(x) => ("rx_max_frames_high", (*x).into()),
                C::TxUsecsHigh(x) => ("tx_usecs_high", (*x).into()),
                C::TxMaxFramesHigh(x) => ("tx_max_frames_high", (*x).into()),
                C::RateSampleInterval(x) => ("rate_sample_interval", (*x).into()),
                _ => return,
            };
            num(name, value);
        }
        _ => {}
    }
}

// ETHTOOL_MSG_FEATURES_GET_REPLY attributes and the verbose bitset layout
// (Documentation/networking/ethtool-netlink.rst, "Bit sets").
const ETHTOOL_A_FEATURES_HEADER: u16 = 1;
const ETHTOOL_A_FEATURES_HW: u16 = 2;
const ETHTOOL_A_FEATURES_ACTIVE: u16 = 4;
const ETHTOOL_A_HEADER_DEV_NAME: u16 = 2;
const ETHTOOL_A_BITSET_BITS: u16 = 3;
const ETHTOOL_A_BITSET_BITS_BIT: u16 = 1;
const ETHTOOL_A_BITSET_BIT_NAME: u16 = 2;
const GENL_HEADER_LEN: usize = 4;

/// Decodes the features dump ourselves: the ethtool crate skips bit index 0
/// (tx-scatter-gather). Bitsets come without a mask, so a listed bit is set:
/// active features are true, changeable (hw) but inactive ones false.
fn parse_features_dump(buf: &[u8]) -> Result<BTreeMap<String, EthtoolValues>> {
    let bad = |detail: String| KernelError::NetlinkDecode {
        family: "ethtool",
        what: "features".into(),
        detail,
    };
    let mut out = BTreeMap::new();
    for raw in netlink_io::data_messages(buf) {
        let attrs = raw
            .get(16 + GENL_HEADER_LEN..)
            .ok_or_else(|| bad("message shorter than its headers".into()))?;
        let mut dev = None;
        let (mut hw, mut active) = (Vec::new(), Vec::new());
        for nla in netlink_io::attributes(attrs) {
            let (kind, value) = nla.map_err(bad)?;
            match kind {
                ETHTOOL_A_FEATURES_HEADER => {
                    for h in netlink_io::attributes(value) {
                        let (k, v) = h.map_err(bad)?;
                        if k == ETHTOOL_A_HEADER_DEV_NAME {
                            dev = Some(nul_terminated(v));
                        }
                    }
                }
                ETHTOOL_A_FEATURES_HW => hw = bitset_names(value).map_err(bad)?,
                ETHTOOL_A_FEATURES_ACTIVE => active = bitset_names(value).map_err(bad)?,
                _ => {}
            }
        }
        if let Some(dev) = dev {
            let mut values = EthtoolValues::default();
            for name in hw {
                values.flags.insert(name, false);
            }
            for name in active {
                values.flags.insert(name, true);
            }
            out.insert(dev, values);
        }
    }
    Ok(out)
}

/// Names of the bits listed in a verbose bitset.
fn bitset_names(bitset: &[u8]) -> std::result::Result<Vec<String>, String> {
    let mut names = Vec::new();
    for nla in netlink_io::attributes(bitset) {
        let (kind, bits) = nla?;
        if kind != ETHTOOL_A_BITSET_BITS {
            continue;
        }
        for bit in netlink_io::attributes(bits) {
            let (kind, fields) = bit?;
            if kind != ETHTOOL_A_BITSET_BITS_BIT {
                continue;
            }
            for field in netlink_io::attributes(fields) {
                let (kind, value) = field?;
                if kind == ETHTOOL_A_BITSET_BIT_NAME {
                    names.push(nul_terminated(value));
                }
            }
        }
    }
    Ok(names)
}

fn nul_terminated(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// `ethtool -S` through the SIOCETHTOOL ioctl. Unsafe is confined here.
#[allow(unsafe_code)]
pub mod driver_stats {
    use std::io;

    use crate::error::{KernelError, Result};

    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    const ETHTOOL_GSTRINGS: u32 = 0x1b;
    const ETHTOOL_GSTATS: u32 = 0x1d;
    const ETHTOOL_GSSET_INFO: u32 = 0x37;
    const ETH_SS_STATS: u32 = 1;
    const ETH_GSTRING_LEN: usize = 32;
    /// A sanity bound on what a driver may claim; real NICs have a few hundred.
    const MAX_STATS: usize = 1 << 16;

    #[repr(C)]
    struct IfReq {
        name: [libc::c_char; libc::IFNAMSIZ],
        data: *mut libc::c_void,
        _pad: [u8; 16],
    }

    /// The driver counters of `interface` as `ethtool -S` prints them, or
    /// Ok(None) when the driver has none (EOPNOTSUPP, e.g. lo).
    pub fn read(interface: &str) -> Result<Option<Vec<(String, u64)>>> {
        // SAFETY: plain socket(2) call; the fd is owned and closed by OwnedFd.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(err("socket", interface, io::Error::last_os_error()));
        }
        // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let fd = std::os::fd::AsRawFd::as_raw_fd(&fd);
        read_via(interface, &mut |buf: &mut [u8]| {
            ioctl(fd, interface, buf.as_mut_ptr().cast())
        })
    }

    /// The SIOCETHTOOL exchange over any transport (the kernel, or a fake driver in tests).
    fn read_via(
        interface: &str,
        ioctl: &mut dyn FnMut(&mut [u8]) -> io::Result<()>,
    ) -> Result<Option<Vec<(String, u64)>>> {
        // The kernel sizes GSTRINGS and GSTATS replies by the driver's count *now*,
        // not by the count we pass: a driver whose count changes between calls
        // (a module reconfigured, queues added) would write past a tight buffer. So
        // the buffers get headroom, and the count each reply carries is checked: a
        // change means start again, a count beyond the buffer is an error.
        for _ in 0..3 {
            let Some(count) = stats_count(ioctl, interface)? else {
                return Ok(None);
            };
            if count == 0 {
                return Ok(Some(Vec::new()));
            }
            let room = count + count / 2 + 16;

            // ethtool_gstrings { cmd, string_set, len, data: [u8; len * 32] }
            let mut strings = vec![0u8; 12 + room * ETH_GSTRING_LEN];
            strings[0..4].copy_from_slice(&ETHTOOL_GSTRINGS.to_ne_bytes());
            strings[4..8].copy_from_slice(&ETH_SS_STATS.to_ne_bytes());
            strings[8..12].copy_from_slice(&(count as u32).to_ne_bytes());
            ioctl(&mut strings).map_err(|e| err("ETHTOOL_GSTRINGS", interface, e))?;
            let names_count =
                u32::from_ne_bytes([strings[8], strings[9], strings[10], strings[11]]) as usize;

            // ethtool_stats { cmd, n_stats, data: [u64; n] }; the kernel copies bytes, no alignment needed.
            let mut stats = vec![0u8; 8 + room * 8];
            stats[0..4].copy_from_slice(&ETHTOOL_GSTATS.to_ne_bytes());
            stats[4..8].copy_from_slice(&(count as u32).to_ne_bytes());
            ioctl(&mut stats).map_err(|e| err("ETHTOOL_GSTATS", interface, e))?;
            let values_count =
                u32::from_ne_bytes([stats[4], stats[5], stats[6], stats[7]]) as usize;

            if names_count > room || values_count > room {
                return Err(err(
                    "ETHTOOL_GSTATS",
                    interface,
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "driver count grew from {count} to {} during the read",
                            names_count.max(values_count)
                        ),
                    ),
                ));
            }
            if names_count != count || values_count != count {
                continue; // the driver's count changed between calls: read again
            }
            let values = stats[8..8 + count * 8]
                .chunks_exact(8)
                .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])));
            let names = strings[12..12 + count * ETH_GSTRING_LEN]
                .chunks_exact(ETH_GSTRING_LEN)
                .map(|raw| {
                    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                    String::from_utf8_lossy(&raw[..end]).into_owned()
                });
            return Ok(Some(names.zip(values).collect()));
        }
        Err(err(
            "ETHTOOL_GSTATS",
            interface,
            io::Error::new(
                io::ErrorKind::Interrupted,
                "the driver's counter set kept changing during the read",
            ),
        ))
    }

    /// The driver's number of ETH_SS_STATS counters; None when it has none.
    fn stats_count(
        ioctl: &mut dyn FnMut(&mut [u8]) -> io::Result<()>,
        interface: &str,
    ) -> Result<Option<usize>> {
        // ethtool_sset_info { cmd, reserved, sset_mask: u64, data: [u32] }
        let mask = u64::from(1u32 << ETH_SS_STATS);
        let mut sset_bytes = [0u8; 20];
        sset_bytes[0..4].copy_from_slice(&ETHTOOL_GSSET_INFO.to_ne_bytes());
        sset_bytes[8..16].copy_from_slice(&mask.to_ne_bytes());
        match ioctl(&mut sset_bytes) {
            Ok(()) => {}
            Err(e) if is_not_supported(&e) => return Ok(None),
            Err(e) => return Err(err("ETHTOOL_GSSET_INFO", interface, e)),
        }
        let returned_mask = u64::from_ne_bytes(sset_bytes[8..16].try_into().unwrap_or([0; 8]));
        if returned_mask & mask == 0 {
            return Ok(None);
        }
        let count = u32::from_ne_bytes(sset_bytes[16..20].try_into().unwrap_or([0; 4])) as usize;
        if count > MAX_STATS {
            return Err(err(
                "ETHTOOL_GSSET_INFO",
                interface,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("driver claims {count} stats"),
                ),
            ));
        }
        Ok(Some(count))
    }

    fn ioctl(fd: libc::c_int, interface: &str, data: *mut libc::c_void) -> io::Result<()> {
        let bytes = interface.as_bytes();
        if bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad interface name",
            ));
        }
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            data,
            _pad: [0; 16],
        };
        for (dst, src) in req.name.iter_mut().zip(bytes) {
            *dst = *src as libc::c_char;
        }
        // SAFETY: req is a valid ifreq whose data points at a buffer sized for the
        // command, as the kernel's ethtool_* struct layouts require (checked above).
        let rc = unsafe { libc::ioctl(fd, SIOCETHTOOL as _, &mut req as *mut IfReq) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn is_not_supported(e: &io::Error) -> bool {
        matches!(
            e.raw_os_error(),
            Some(libc::EOPNOTSUPP) | Some(libc::EINVAL)
        )
    }

    fn err(command: &'static str, interface: &str, source: io::Error) -> KernelError {
        KernelError::Ethtool {
            command,
            interface: interface.to_string(),
            source,
        }
    }

    /// The bundle's text form: one "name value" per line, like `ethtool -S` minus indentation.
    pub fn to_text(stats: &[(String, u64)]) -> String {
        stats.iter().map(|(n, v)| format!("{n} {v}\n")).collect()
    }

    pub fn parse_text(text: &str) -> Result<Vec<(String, u64)>> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let (name, value) = line.rsplit_once(' ').ok_or_else(|| {
                    KernelError::parse("ethtool stats", format!("bad line {line:.60}"))
                })?;
                let value = value
                    .parse::<u64>()
                    .map_err(|e| KernelError::parse("ethtool stats", format!("{name}: {e}")))?;
                Ok((name.to_string(), value))
            })
            .collect()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// A fake driver: answers GSSET_INFO, GSTRINGS and GSTATS the way the kernel
        /// does, by the count it has at that call (`counts[call]`, then the last one),
        /// writing only inside the buffer it was given.
        fn fake(counts: Vec<usize>) -> impl FnMut(&mut [u8]) -> io::Result<()> {
            let mut call = 0;
            move |buf: &mut [u8]| {
                let n = counts[call.min(counts.len() - 1)];
                call += 1;
                let cmd = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
                match cmd {
                    ETHTOOL_GSSET_INFO => buf[16..20].copy_from_slice(&(n as u32).to_ne_bytes()),
                    ETHTOOL_GSTRINGS => {
                        buf[8..12].copy_from_slice(&(n as u32).to_ne_bytes());
                        for i in 0..n {
                            let at = 12 + i * ETH_GSTRING_LEN;
                            if let Some(slot) = buf.get_mut(at..at + 8) {
                                slot.copy_from_slice(format!("stat_{i:03}").as_bytes());
                            }
                        }
                    }
                    ETHTOOL_GSTATS => {
                        buf[4..8].copy_from_slice(&(n as u32).to_ne_bytes());
                        for i in 0..n {
                            if let Some(slot) = buf.get_mut(8 + i * 8..16 + i * 8) {
                                slot.copy_from_slice(&(i as u64 * 10).to_ne_bytes());
                            }
                        }
                    }
                    _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
                }
                Ok(())
            }
        }

        #[test]
        fn a_count_that_changes_between_calls_is_never_trusted() {
            // Steady: names and values line up.
            let stats = read_via("x", &mut fake(vec![4])).unwrap().unwrap();
            assert_eq!(stats.len(), 4);
            assert_eq!(stats[3], ("stat_003".to_string(), 30));
            // Grows between GSTRINGS and GSTATS, then settles: read again.
            let stats = read_via("x", &mut fake(vec![4, 4, 5, 5])).unwrap().unwrap();
            assert_eq!(stats.len(), 5);
            assert_eq!(stats[4], ("stat_004".to_string(), 40));
            // Grows past the headroom: an error, not a mismatched or overrun read.
            assert!(read_via("x", &mut fake(vec![4, 4, 400])).is_err());
            // Never settles: an error after a few tries.
            assert!(read_via("x", &mut fake(vec![4, 4, 5, 6, 6, 7, 8, 8, 9, 10])).is_err());
        }
    }
}
