//! `netsight trace drops`: packets the kernel dropped, with the reason it gives.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use aya::include_bytes_aligned;
use serde::Serialize;

use crate::kallsyms::Kallsyms;
use crate::{btf_enum, loader, EndpointFilter, NsCount, Tally, TraceError};

static OBJECT: &[u8] = include_bytes_aligned!("../bpf/drops.bpf.o");
/// struct drop_event in bpf/drops.bpf.c.
const EVENT_LEN: usize = 56;

#[derive(Debug, Clone, Serialize)]
pub struct DropEvent {
    /// The kernel's name, without the SKB_DROP_REASON_ prefix ("NO_SOCKET").
    pub reason: String,
    pub reason_code: u32,
    pub protocol: String,
    /// Where the skb was freed: "function+0xoffset".
    pub location: String,
    /// From the packet's headers when they were set (None early in the receive path).
    pub src_addr: Option<IpAddr>,
    pub dst_addr: Option<IpAddr>,
    /// TCP/UDP ports (0 when the transport header was not parsed yet).
    pub src_port: u16,
    pub dst_port: u16,
    /// "tcp", "udp", "icmp", or the IP protocol number.
    pub ip_protocol: Option<String>,
    /// The network namespace's inode (the device's, else the socket's; 0 when neither).
    pub netns: u32,
}

/// Decodes one ring buffer record (reason names and symbols are filled by the caller).
fn decode_packet(raw: &[u8]) -> (Option<IpAddr>, Option<IpAddr>, u16, u16, Option<String>) {
    let family = raw[15];
    let addr = |at: usize| -> Option<IpAddr> {
        match family {
            2 => Some(IpAddr::V4(Ipv4Addr::new(
                raw[at],
                raw[at + 1],
                raw[at + 2],
                raw[at + 3],
            ))),
            10 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&raw[at..at + 16]);
                Some(IpAddr::V6(Ipv6Addr::from(a)))
            }
            _ => None,
        }
    };
    let proto = (family != 0).then(|| match raw[14] {
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        1 => "icmp".to_string(),
        58 => "icmpv6".to_string(),
        n => n.to_string(),
    });
    let port = |at: usize| u16::from_ne_bytes([raw[at], raw[at + 1]]);
    (addr(20), addr(36), port(16), port(18), proto)
}

#[derive(Debug, Clone, Serialize)]
pub struct DropSummary {
    pub duration_s: f64,
    /// Events lost because the ring buffer was full (0 means a complete trace).
    pub lost_events: u64,
    pub total: u64,
    /// Reasons by namespace and count, most frequent first.
    pub by_reason: Vec<NsCount>,
    /// Dropping functions by namespace and count, most frequent first (top 10).
    pub by_location: Vec<NsCount>,
}

fn protocol_name(be: u16) -> String {
    match u16::from_be(be) {
        0x0800 => "ipv4".into(),
        0x86dd => "ipv6".into(),
        0x0806 => "arp".into(),
        other => format!("{other:#06x}"),
    }
}

/// Attaches one of the object's programs to kfree_skb, with the kernel's drop
/// reason names: one read and parse of the kernel BTF serves both.
fn attach_program(
    program: &str,
) -> Result<(loader::Attached, std::collections::BTreeMap<u64, String>), TraceError> {
    let btf = loader::kernel_btf()?;
    let reasons =
        btf_enum::enum_values(&btf.bytes, "skb_drop_reason").map_err(|e| TraceError::Bpf {
            what: "reading enum skb_drop_reason".into(),
            detail: e,
        })?;
    let attached = loader::attach_with(btf, OBJECT, &[(program, "kfree_skb")], &[])?;
    Ok((attached, reasons))
}

/// Traces drops for `duration`. `filter` (port, address) is matched against the
/// dropped packet's addresses; a packet whose headers were not parsed has none and
/// is left out when a filter is given. Drops happen in softirq: no --pid.
pub fn trace(
    duration: Duration,
    filter: &EndpointFilter,
    mut on_event: Option<&mut dyn FnMut(&DropEvent)>,
) -> Result<DropSummary, TraceError> {
    // Symbols first: "attached" is said when events start to flow, and the ring
    // buffer must not fill while /proc/kallsyms is parsed.
    let kallsyms = Kallsyms::load();
    let (attached, reasons) = attach_program("kfree_skb")?;
    let mut attached = attached;
    // Counted by number (namespace, reason code, address) and named once at the
    // end: at 100k+ drops/s a name and a string per event cost more than the
    // ring buffer can wait for. An event is built only for a caller that prints it.
    let mut by_code: HashMap<(u32, u32), u64> = HashMap::new();
    let mut by_address: HashMap<(u32, u64), u64> = HashMap::new();
    let mut total = 0u64;
    let reason_name = |code: u32| -> &str {
        reasons
            .get(&u64::from(code))
            .map_or("UNKNOWN", String::as_str)
            .trim_start_matches("SKB_DROP_REASON_")
    };
    let duration_s = loader::poll(&mut attached, duration, |raw| {
        let Some(raw) = raw.get(..EVENT_LEN) else {
            return;
        };
        let location = u64::from_ne_bytes(raw[0..8].try_into().unwrap_or([0; 8]));
        let code = u32::from_ne_bytes(raw[8..12].try_into().unwrap_or([0; 4]));
        let netns = u32::from_ne_bytes(raw[52..56].try_into().unwrap_or([0; 4]));
        if !filter.is_empty() || on_event.is_some() {
            let (src_addr, dst_addr, src_port, dst_port, ip_protocol) = decode_packet(raw);
            if !filter.is_empty() {
                let (Some(s), Some(d)) = (src_addr, dst_addr) else {
                    return;
                };
                if !filter.matches((s, src_port), (d, dst_port), None) {
                    return;
                }
            }
            if let Some(on_event) = on_event.as_mut() {
                let protocol = u16::from_ne_bytes([raw[12], raw[13]]);
                on_event(&DropEvent {
                    reason: reason_name(code).to_string(),
                    reason_code: code,
                    protocol: protocol_name(protocol),
                    location: kallsyms.name(location),
                    src_addr,
                    dst_addr,
                    src_port,
                    dst_port,
                    ip_protocol,
                    netns,
                });
            }
        }
        total += 1;
        *by_code.entry((netns, code)).or_insert(0) += 1;
        *by_address.entry((netns, location)).or_insert(0) += 1;
    });
    let (mut by_reason, mut by_location) = (Tally::default(), Tally::default());
    for ((netns, code), n) in by_code {
        by_reason.add_n(netns, reason_name(code), n);
    }
    for ((netns, address), n) in by_address {
        let name = kallsyms.name(address);
        by_location.add_n(netns, name.split('+').next().unwrap_or(""), n);
    }
    Ok(DropSummary {
        duration_s,
        lost_events: attached.lost_events(),
        total,
        by_reason: by_reason.ranked(usize::MAX),
        by_location: by_location.ranked(10),
    })
}

pub use netsight_report::{DropCell, KernelDrops};

/// Decodes a `drop_counts` key: netns u32, reason u32, location u64.
fn decode_count_key(k: &[u8; 16]) -> (u32, u32, u64) {
    let u32_at = |at: usize| u32::from_ne_bytes([k[at], k[at + 1], k[at + 2], k[at + 3]]);
    let mut loc = [0u8; 8];
    loc.copy_from_slice(&k[8..16]);
    (u32_at(0), u32_at(4), u64::from_ne_bytes(loc))
}

/// Counts drops in the kernel per (namespace, reason, function) while `wait`
/// runs (it is given `duration`), then reads the counts once: no per-packet
/// event reaches user space, so the cost stays in the kernel's hash update.
pub fn count(duration: Duration, wait: impl FnOnce(Duration)) -> Result<KernelDrops, TraceError> {
    let (attached, reasons) = attach_program("kfree_skb_count")?;
    // Symbols are read while the interval runs, not after it.
    let symbols = std::thread::spawn(Kallsyms::load);
    let started = std::time::Instant::now();
    wait(duration);
    let duration_s = started.elapsed().as_secs_f64();
    let map = attached.map("drop_counts").ok_or_else(|| TraceError::Bpf {
        what: "drops.bpf.o".into(),
        detail: "no drop_counts map".into(),
    })?;
    let counts = aya::maps::HashMap::<_, [u8; 16], u64>::try_from(map)
        .map_err(|e| TraceError::bpf("drop counts", e))?;
    let kallsyms = symbols.join().unwrap_or_default();
    let mut cells: Vec<DropCell> = counts
        .iter()
        .filter_map(Result::ok)
        .map(|(k, count)| {
            let (netns, code, location) = decode_count_key(&k);
            let reason = reasons
                .get(&u64::from(code))
                .map_or("UNKNOWN", String::as_str)
                .trim_start_matches("SKB_DROP_REASON_")
                .to_string();
            DropCell {
                netns,
                reason,
                location: kallsyms.name(location),
                count,
            }
        })
        .collect();
    cells.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    Ok(KernelDrops {
        seconds: duration_s,
        lost: attached.lost_events(),
        cells,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_keys_decode() {
        let mut k = [0u8; 16];
        k[0..4].copy_from_slice(&4026531840u32.to_ne_bytes());
        k[4..8].copy_from_slice(&3u32.to_ne_bytes());
        k[8..16].copy_from_slice(&0xffff_ffff_8100_0000u64.to_ne_bytes());
        assert_eq!(decode_count_key(&k), (4026531840, 3, 0xffff_ffff_8100_0000));
    }

    #[test]
    fn packet_fields_decode() {
        let mut raw = vec![0u8; EVENT_LEN];
        raw[14] = 17;
        raw[15] = 2;
        raw[16..18].copy_from_slice(&40000u16.to_ne_bytes());
        raw[18..20].copy_from_slice(&9u16.to_ne_bytes());
        raw[20..24].copy_from_slice(&[10, 0, 0, 1]);
        raw[36..40].copy_from_slice(&[10, 0, 0, 2]);
        let (src, dst, sport, dport, proto) = decode_packet(&raw);
        assert_eq!(src, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
        assert_eq!(dst, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))));
        assert_eq!((sport, dport, proto.as_deref()), (40000, 9, Some("udp")));
        raw[15] = 0;
        assert_eq!(
            decode_packet(&raw).0,
            None,
            "no addresses when the header was not parsed"
        );
    }
}
