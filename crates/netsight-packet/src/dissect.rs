//! Link → IP → TCP/UDP/ICMP decoding with etherparse's lax API: snaplen-truncated frames are
//! the norm, so lengths come from the IP header (what was sent), not from what was captured.

use std::net::IpAddr;

use etherparse::{
    EtherType, LaxNetSlice, LaxSlicedPacket, TcpOptionElement, TcpOptionsIterator, TcpSlice,
    TransportSlice,
};

/// LINKTYPE_* values this decoder understands (<https://www.tcpdump.org/linktypes.html>).
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const RAW_OPENBSD: u32 = 12;
    pub const RAW_BSDOS: u32 = 14;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const ARCNET_LINUX: u32 = 129;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

/// TCP header flag bits (the low 12 bits of bytes 12–13).
pub mod tcp_flags {
    pub const FIN: u16 = 0x001;
    pub const SYN: u16 = 0x002;
    pub const RST: u16 = 0x004;
    pub const PSH: u16 = 0x008;
    pub const ACK: u16 = 0x010;
}

/// The facts about one frame the analysis uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 DF bit (IPv6 never fragments in the path, so always true there).
    pub dont_fragment: bool,
    /// A first IP fragment, or a TCP header longer than the IP length allows: counted in its
    /// flow but not sequence-analysed (as Wireshark does).
    pub partial: bool,
    pub transport: Transport,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Tcp(TcpSegment),
    Udp {
        sport: u16,
        dport: u16,
        payload_len: u32,
    },
    /// An ICMP/ICMPv6 error quoting a packet of some flow.
    IcmpError(IcmpError),
    /// Any other IP payload (ICMP echo, GRE, ESP, …): counted, not analysed.
    Other {
        ip_proto: u8,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSegment {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u16,
    /// Window field as sent (unscaled).
    pub window: u16,
    /// Payload length from the IP length fields, whatever the snaplen kept.
    pub seglen: u32,
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
}

impl TcpSegment {
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpError {
    pub kind: IcmpErrorKind,
    /// The quoted packet's addresses, protocol and ports, when the quote holds them.
    pub quoted: Option<QuotedFlow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpErrorKind {
    /// ICMP type 3 code 4 / ICMPv6 type 2: the path MTU is smaller than the packet.
    PacketTooBig {
        mtu: u32,
    },
    /// Other destination unreachable codes (port unreachable = REJECT with icmp-port-unreachable).
    Unreachable {
        code: u8,
    },
    TimeExceeded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedFlow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ip_proto: u8,
    pub sport: u16,
    pub dport: u16,
}

/// Why a frame yielded no [`Packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Undecodable {
    /// The link type is not one netsight decodes (802.11, PPP, …).
    LinkType,
    /// Not IPv4/IPv6 (ARP, LLDP, …).
    NotIp,
    /// The frame ends inside a link, IP or transport header.
    Truncated,
    /// A non-first IP fragment, or a first fragment whose transport header is not whole.
    Fragment,
}

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// Decodes one frame of link type `linktype`.
pub fn decode(linktype: u32, data: &[u8]) -> Result<Packet, Undecodable> {
    if linktype == linktype::ETHERNET {
        if let Some(packet) = ethernet_tcp(data) {
            return Ok(packet);
        }
    }
    decode_general(linktype, data)
}

/// The common frame, Ethernet → IPv4 (no options, not fragmented) or IPv6 (no extension
/// headers) → a whole TCP header, decoded in place. Anything else returns None and goes to
/// etherparse, whose sliced-packet structs cost more than the rest of the analysis of a
/// headers-only capture. Tests hold it equal to [`decode_general`] on every corpus frame.
fn ethernet_tcp(data: &[u8]) -> Option<Packet> {
    let be16 = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let ip = data.get(14..)?;
    let (src, dst, dont_fragment, header_len, tcp_len) = match be16(data, 12) {
        0x0800 => {
            let h = ip.get(..20)?;
            // Only DF may be set among the flags and offset: no evil bit, no fragment.
            if h[0] != 0x45 || h[9] != IPPROTO_TCP || be16(h, 6) & 0xbfff != 0 {
                return None;
            }
            let src: [u8; 4] = h[12..16].try_into().ok()?;
            let dst: [u8; 4] = h[16..20].try_into().ok()?;
            let tcp_len = (be16(h, 2) as usize).checked_sub(20)?;
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                h[6] & 0x40 != 0,
                20,
                tcp_len,
            )
        }
        0x86dd => {
            let h = ip.get(..40)?;
            if h[0] >> 4 != 6 || h[6] != IPPROTO_TCP {
                return None;
            }
            let src: [u8; 16] = h[8..24].try_into().ok()?;
            let dst: [u8; 16] = h[24..40].try_into().ok()?;
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                true,
                40,
                be16(h, 4) as usize,
            )
        }
        _ => return None,
    };
    // The TCP bytes captured, without Ethernet padding beyond the IP length.
    let tcp = ip.get(header_len..(header_len + tcp_len).min(ip.len()))?;
    let tcp_header_len = (*tcp.get(12)? >> 4) as usize * 4;
    // A short segment, or options cut by the snaplen: the general path's cases.
    if tcp_header_len < 20 || tcp.len() < tcp_header_len || tcp_len < tcp_header_len {
        return None;
    }
    let (mut segment, _) = fixed_tcp_header(tcp, tcp_len as u32)?;
    read_options(
        &mut segment,
        TcpOptionsIterator::from_slice(&tcp[20..tcp_header_len]),
    );
    Some(Packet {
        src,
        dst,
        dont_fragment,
        partial: false,
        transport: Transport::Tcp(segment),
    })
}

/// Every link type, every IP and transport case, through etherparse's lax sliced packet.
pub fn decode_general(linktype: u32, data: &[u8]) -> Result<Packet, Undecodable> {
    let sliced = match linktype {
        linktype::ETHERNET => match pppoe_payload(data) {
            // PPPoE session frames carry IP behind 8 more bytes, as tshark decodes them.
            Some((ether_type, ip)) => LaxSlicedPacket::from_ether_type(EtherType(ether_type), ip),
            None => LaxSlicedPacket::from_ethernet(data).map_err(|_| Undecodable::Truncated)?,
        },
        linktype::RAW | linktype::RAW_OPENBSD | linktype::RAW_BSDOS => {
            LaxSlicedPacket::from_ip(data).map_err(|_| Undecodable::Truncated)?
        }
        // These two link types promise one IP version; a packet of the other is malformed.
        linktype::IPV4 | linktype::IPV6 => {
            let want = if linktype == linktype::IPV4 { 4 } else { 6 };
            if data.first().map(|b| b >> 4) != Some(want) {
                return Err(Undecodable::NotIp);
            }
            LaxSlicedPacket::from_ip(data).map_err(|_| Undecodable::Truncated)?
        }
        linktype::LINUX_SLL => {
            let header = data.get(..16).ok_or(Undecodable::Truncated)?;
            let proto = u16::from_be_bytes([header[14], header[15]]);
            LaxSlicedPacket::from_ether_type(EtherType(proto), &data[16..])
        }
        linktype::LINUX_SLL2 => {
            let header = data.get(..20).ok_or(Undecodable::Truncated)?;
            let proto = u16::from_be_bytes([header[0], header[1]]);
            LaxSlicedPacket::from_ether_type(EtherType(proto), &data[20..])
        }
        linktype::ARCNET_LINUX => {
            // source, dest, 2-byte offset, then the protocol: RFC 1201 adds split flag + sequence.
            let ip_at = match data.get(4) {
                Some(0xd4) => 8,
                Some(0xf0) => 5,
                Some(_) => return Err(Undecodable::NotIp),
                None => return Err(Undecodable::Truncated),
            };
            let ip = data.get(ip_at..).ok_or(Undecodable::Truncated)?;
            LaxSlicedPacket::from_ip(ip).map_err(|_| Undecodable::Truncated)?
        }
        linktype::NULL | linktype::LOOP => {
            let header = data.get(..4).ok_or(Undecodable::Truncated)?;
            // NULL stores the address family in the capturing host's byte order, LOOP in
            // network order: as Wireshark's null dissector, a value with its upper half set
            // is byte-swapped. Some writers put an Ethertype there instead of a family:
            // anything above the 802.3 length limit (1500) is one.
            let mut family = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
            if family & 0xffff_0000 != 0 {
                family = family.swap_bytes();
            }
            if family > 1500 {
                let sliced = LaxSlicedPacket::from_ether_type(EtherType(family as u16), &data[4..]);
                return from_sliced(&sliced);
            }
            match family {
                // AF_INET everywhere; AF_INET6 is 10 (Linux), 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
                2 | 10 | 24 | 28 | 30 => {
                    LaxSlicedPacket::from_ip(&data[4..]).map_err(|_| Undecodable::Truncated)?
                }
                _ => return Err(Undecodable::NotIp),
            }
        }
        _ => return Err(Undecodable::LinkType),
    };
    from_sliced(&sliced)
}

/// PPPoE session (Ethertype 0x8864, optionally behind one 802.1Q tag) carrying
/// PPP IPv4 (0x0021) or IPv6 (0x0057): the IP Ethertype and the IP bytes.
fn pppoe_payload(data: &[u8]) -> Option<(u16, &[u8])> {
    let at = match u16::from_be_bytes([*data.get(12)?, *data.get(13)?]) {
        0x8100 | 0x88a8 => 16,
        _ => 12,
    };
    if u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]) != 0x8864 {
        return None;
    }
    // PPPoE header: ver/type, code (0 = session data), session id, length; then PPP protocol.
    let pppoe = at + 2;
    if *data.get(pppoe + 1)? != 0 {
        return None;
    }
    let ether_type = match u16::from_be_bytes([*data.get(pppoe + 6)?, *data.get(pppoe + 7)?]) {
        0x0021 => 0x0800,
        0x0057 => 0x86dd,
        _ => return None,
    };
    Some((ether_type, data.get(pppoe + 8..)?))
}

fn from_sliced(sliced: &LaxSlicedPacket<'_>) -> Result<Packet, Undecodable> {
    let (src, dst, dont_fragment, first_fragment, payload) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(ip)) => {
            let h = ip.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                h.dont_fragment(),
                h.fragments_offset().value() == 0,
                ip.payload(),
            )
        }
        Some(LaxNetSlice::Ipv6(ip)) => {
            let h = ip.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                true,
                false,
                ip.payload(),
            )
        }
        Some(LaxNetSlice::Arp(_)) => return Err(Undecodable::NotIp),
        None => {
            return Err(match sliced.stop_err {
                Some(_) => Undecodable::Truncated,
                None => Undecodable::NotIp,
            })
        }
    };
    if payload.fragmented {
        if !first_fragment {
            return Err(Undecodable::Fragment);
        }
        let transport = match payload.ip_number.0 {
            IPPROTO_TCP => TcpSlice::from_slice(payload.payload)
                .map(|tcp| Transport::Tcp(tcp_segment(&tcp, 0)))
                .ok(),
            IPPROTO_UDP => payload.payload.get(..8).map(|h| Transport::Udp {
                sport: u16::from_be_bytes([h[0], h[1]]),
                dport: u16::from_be_bytes([h[2], h[3]]),
                payload_len: 0,
            }),
            _ => None,
        };
        return transport
            .map(|transport| Packet {
                src,
                dst,
                dont_fragment,
                partial: true,
                transport,
            })
            .ok_or(Undecodable::Fragment);
    }
    let ip_payload_len = declared_payload_len(sliced, payload.payload.len(), payload.incomplete);
    let transport = match &sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => Transport::Tcp(tcp_segment(tcp, ip_payload_len)),
        Some(TransportSlice::Udp(udp)) => Transport::Udp {
            sport: udp.source_port(),
            dport: udp.destination_port(),
            payload_len: ip_payload_len.saturating_sub(8),
        },
        Some(TransportSlice::Icmpv4(icmp)) => icmp_error(
            false,
            icmp.type_u8(),
            icmp.code_u8(),
            icmp.slice(),
            icmp.payload(),
        )
        .unwrap_or(Transport::Other { ip_proto: 1 }),
        Some(TransportSlice::Icmpv6(icmp)) => icmp_error(
            true,
            icmp.type_u8(),
            icmp.code_u8(),
            icmp.slice(),
            icmp.payload(),
        )
        .unwrap_or(Transport::Other { ip_proto: 58 }),
        _ => match payload.ip_number.0 {
            // etherparse wants the whole header; like Wireshark, settle for its fixed part
            // when the snaplen cut the options or the header claims more than was captured.
            IPPROTO_TCP => {
                let t = fixed_tcp_header(payload.payload, ip_payload_len)
                    .ok_or(Undecodable::Truncated)?;
                return Ok(Packet {
                    src,
                    dst,
                    dont_fragment,
                    partial: t.1,
                    transport: Transport::Tcp(t.0),
                });
            }
            IPPROTO_UDP => {
                let h = payload.payload.get(..8).ok_or(Undecodable::Truncated)?;
                Transport::Udp {
                    sport: u16::from_be_bytes([h[0], h[1]]),
                    dport: u16::from_be_bytes([h[2], h[3]]),
                    payload_len: ip_payload_len.saturating_sub(8),
                }
            }
            ip_proto => Transport::Other { ip_proto },
        },
    };
    Ok(Packet {
        src,
        dst,
        dont_fragment,
        partial: false,
        transport,
    })
}

/// The fixed 20-byte TCP header alone (options lost to the snaplen), and whether the segment
/// is too short for analysis (Wireshark's "short segment": IP length below the header length).
fn fixed_tcp_header(bytes: &[u8], ip_payload_len: u32) -> Option<(TcpSegment, bool)> {
    let h = bytes.get(..20)?;
    let header_len = (h[12] >> 4) as u32 * 4;
    if header_len < 20 {
        return None;
    }
    let be32 = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    Some((
        TcpSegment {
            sport: u16::from_be_bytes([h[0], h[1]]),
            dport: u16::from_be_bytes([h[2], h[3]]),
            seq: be32(4),
            ack: be32(8),
            flags: u16::from_be_bytes([h[12], h[13]]) & 0x0fff,
            window: u16::from_be_bytes([h[14], h[15]]),
            seglen: ip_payload_len.saturating_sub(header_len),
            mss: None,
            wscale: None,
            sack_permitted: false,
        },
        ip_payload_len < header_len,
    ))
}

/// The TCP facts the analysis needs; `ip_payload_len` is the TCP length the IP header states.
fn tcp_segment(tcp: &TcpSlice<'_>, ip_payload_len: u32) -> TcpSegment {
    let raw = tcp.slice();
    let mut segment = TcpSegment {
        sport: tcp.source_port(),
        dport: tcp.destination_port(),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: u16::from_be_bytes([raw[12], raw[13]]) & 0x0fff,
        window: tcp.window_size(),
        seglen: ip_payload_len.saturating_sub(tcp.header_len() as u32),
        mss: None,
        wscale: None,
        sack_permitted: false,
    };
    read_options(&mut segment, tcp.options_iterator());
    segment
}

/// MSS, window scale and SACK-permitted, up to the first malformed option.
fn read_options(segment: &mut TcpSegment, options: TcpOptionsIterator<'_>) {
    for option in options {
        match option {
            Ok(TcpOptionElement::MaximumSegmentSize(mss)) => segment.mss = Some(mss),
            // Wireshark (and RFC 7323 §2.3) clamp shifts above 14 to 14.
            Ok(TcpOptionElement::WindowScale(shift)) => segment.wscale = Some(shift.min(14)),
            Ok(TcpOptionElement::SelectiveAcknowledgementPermitted) => {
                segment.sack_permitted = true
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
}

/// IP payload length as the sender's IP header states it (TSO captures with a zero IPv4 total
/// length fall back to what was captured, as Wireshark does).
fn declared_payload_len(sliced: &LaxSlicedPacket<'_>, captured: usize, incomplete: bool) -> u32 {
    if !incomplete {
        return captured as u32;
    }
    match &sliced.net {
        Some(LaxNetSlice::Ipv4(ip)) => {
            let h = ip.header();
            (h.total_len() as u32).saturating_sub(h.slice().len() as u32)
        }
        Some(LaxNetSlice::Ipv6(ip)) => {
            let exts = ip.extensions().slice().len() as u32;
            (ip.header().payload_length() as u32).saturating_sub(exts)
        }
        _ => captured as u32,
    }
}

fn icmp_error(v6: bool, icmp_type: u8, code: u8, header: &[u8], quote: &[u8]) -> Option<Transport> {
    let mtu_field = |at: usize| {
        header
            .get(at..at + 2)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) as u32)
    };
    let kind = match (v6, icmp_type, code) {
        (false, 3, 4) => IcmpErrorKind::PacketTooBig { mtu: mtu_field(6) },
        (false, 3, c) => IcmpErrorKind::Unreachable { code: c },
        (false, 11, _) => IcmpErrorKind::TimeExceeded,
        (true, 2, _) => IcmpErrorKind::PacketTooBig {
            mtu: header
                .get(4..8)
                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        },
        (true, 1, c) => IcmpErrorKind::Unreachable { code: c },
        (true, 3, _) => IcmpErrorKind::TimeExceeded,
        _ => return None,
    };
    Some(Transport::IcmpError(IcmpError {
        kind,
        quoted: quoted_flow(quote),
    }))
}

/// Addresses and ports of the packet an ICMP error quotes (its IP header plus at least 8 bytes).
fn quoted_flow(quote: &[u8]) -> Option<QuotedFlow> {
    let sliced = LaxSlicedPacket::from_ip(quote).ok()?;
    let (src, dst, payload) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(ip)) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            ip.payload(),
        ),
        Some(LaxNetSlice::Ipv6(ip)) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            ip.payload(),
        ),
        _ => return None,
    };
    let ports = payload.payload.get(..4)?;
    Some(QuotedFlow {
        src,
        dst,
        ip_proto: payload.ip_number.0,
        sport: u16::from_be_bytes([ports[0], ports[1]]),
        dport: u16::from_be_bytes([ports[2], ports[3]]),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// An IPv4/TCP SYN from 10.0.0.1:1234 to 10.0.0.2:80 with MSS 1460 and window scale 7.
    fn syn_ip() -> Vec<u8> {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1234, 80, 1000, 64240)
            .syn()
            .options(&[
                TcpOptionElement::MaximumSegmentSize(1460),
                TcpOptionElement::WindowScale(7),
            ])
            .unwrap()
            .write(&mut out, &[])
            .unwrap();
        out
    }

    fn check(p: Packet) {
        assert_eq!(p.src, IpAddr::from([10, 0, 0, 1]));
        let Transport::Tcp(t) = p.transport else {
            panic!("not TCP")
        };
        assert_eq!((t.sport, t.dport, t.seq, t.seglen), (1234, 80, 1000, 0));
        assert!(t.has(tcp_flags::SYN) && !t.has(tcp_flags::ACK));
        assert_eq!((t.mss, t.wscale), (Some(1460), Some(7)));
    }

    #[test]
    fn every_link_layer_reaches_the_same_segment() {
        let ip = syn_ip();
        let with = |header: &[u8]| [header, &ip[..]].concat();
        let mut sll = vec![0u8; 16];
        sll[14..16].copy_from_slice(&[0x08, 0x00]);
        let mut sll2 = vec![0u8; 20];
        sll2[0..2].copy_from_slice(&[0x08, 0x00]);
        let mut ether = vec![0u8; 12];
        ether.extend_from_slice(&[0x08, 0x00]);
        let mut vlan = vec![0u8; 12];
        vlan.extend_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x08, 0x00]);
        for (linktype, frame) in [
            (linktype::RAW, ip.clone()),
            (linktype::IPV4, ip.clone()),
            (linktype::ETHERNET, with(&ether)),
            (linktype::ETHERNET, with(&vlan)),
            (linktype::LINUX_SLL, with(&sll)),
            (linktype::LINUX_SLL2, with(&sll2)),
            (linktype::NULL, with(&2u32.to_le_bytes())),
            (linktype::LOOP, with(&2u32.to_be_bytes())),
        ] {
            check(
                decode(linktype, &frame).unwrap_or_else(|e| panic!("link type {linktype}: {e:?}")),
            );
        }
        assert_eq!(
            decode(linktype::IPV6, &ip),
            Err(Undecodable::NotIp),
            "IPv4 in an IPv6-only link type"
        );
        assert_eq!(decode(105, &ip), Err(Undecodable::LinkType));
    }

    #[test]
    fn a_snaplen_cut_keeps_the_length_the_ip_header_states() {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1234, 80, 1000, 64240)
            .ack(1)
            .write(&mut out, &[0u8; 1000])
            .unwrap();
        out.truncate(60);
        let Transport::Tcp(t) = decode(linktype::RAW, &out).unwrap().transport else {
            panic!("not TCP")
        };
        assert_eq!(t.seglen, 1000);
    }
}
