//! Network interfaces: rtnetlink RTM_GETLINK (IFLA_STATS64, MTU, txqlen, qdisc,
//! operstate), sysfs speed/duplex, and the /proc/net/dev fallback.

use std::collections::BTreeMap;

use netlink_packet_core::NetlinkMessage;
use netlink_packet_route::link::{
    LinkAttribute, LinkFlags, LinkInfo, LinkMessage, LinkXdp, XdpAttached,
};
use netlink_packet_route::RouteNetlinkMessage;
use serde::{Deserialize, Serialize};

use crate::error::{KernelError, Result};
use crate::ethtool::EthtoolSettings;
use crate::netlink_io;
use crate::procfs::netdev::ProcNetDevRow;
use crate::rates::counter_set;
use crate::support::Support;

counter_set! {
    /// struct rtnl_link_stats64, as the kernel keeps it per interface.
    LinkStats => LinkStatsRates, kind |_| crate::rates::CounterKind::Monotonic64, {
        rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors, tx_errors,
        rx_dropped, tx_dropped, multicast, collisions,
        rx_length_errors,
        /// Receiver ring overrun (the NIC had no buffer for a frame).
        rx_over_errors,
        rx_crc_errors, rx_frame_errors,
        /// Receiver FIFO overrun.
        rx_fifo_errors,
        /// Missed by the NIC for lack of host buffers (counted as dropped in /proc/net/dev).
        rx_missed_errors,
        tx_aborted_errors, tx_carrier_errors, tx_fifo_errors, tx_heartbeat_errors, tx_window_errors,
        rx_compressed, tx_compressed,
        /// Dropped because no protocol handler wanted them.
        rx_nohandler,
        rx_otherhost_dropped,
    }
}

impl LinkStats {
    /// The /proc/net/dev view of these counters, the one sar and ifconfig use.
    pub fn proc_net_dev_view(&self) -> ProcNetDevRow {
        ProcNetDevRow {
            rx_bytes: self.rx_bytes,
            rx_packets: self.rx_packets,
            rx_errs: self.rx_errors,
            rx_drop: self.rx_dropped + self.rx_missed_errors,
            rx_fifo: self.rx_fifo_errors,
            rx_frame: self.rx_length_errors
                + self.rx_over_errors
                + self.rx_crc_errors
                + self.rx_frame_errors,
            rx_compressed: self.rx_compressed,
            rx_multicast: self.multicast,
            tx_bytes: self.tx_bytes,
            tx_packets: self.tx_packets,
            tx_errs: self.tx_errors,
            tx_drop: self.tx_dropped,
            tx_fifo: self.tx_fifo_errors,
            tx_colls: self.collisions,
            tx_carrier: self.tx_carrier_errors
                + self.tx_aborted_errors
                + self.tx_window_errors
                + self.tx_heartbeat_errors,
            tx_compressed: self.tx_compressed,
        }
    }

    /// Best effort inverse of `proc_net_dev_view`: summed columns land on one field.
    pub fn from_proc_net_dev(row: &ProcNetDevRow) -> Self {
        LinkStats {
            rx_bytes: row.rx_bytes,
            rx_packets: row.rx_packets,
            rx_errors: row.rx_errs,
            rx_dropped: row.rx_drop,
            rx_fifo_errors: row.rx_fifo,
            rx_frame_errors: row.rx_frame,
            rx_compressed: row.rx_compressed,
            multicast: row.rx_multicast,
            tx_bytes: row.tx_bytes,
            tx_packets: row.tx_packets,
            tx_errors: row.tx_errs,
            tx_dropped: row.tx_drop,
            tx_fifo_errors: row.tx_fifo,
            collisions: row.tx_colls,
            tx_carrier_errors: row.tx_carrier,
            tx_compressed: row.tx_compressed,
            ..Default::default()
        }
    }
}

/// Where a link's counters came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatsSource {
    Rtnetlink,
    ProcNetDev,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub name: String,
    pub ifindex: Option<u32>,
    /// IFLA_INFO_KIND: veth, bridge, vlan...; None for physical NICs and lo.
    pub kind: Option<String>,
    pub mtu: Option<u32>,
    pub txqlen: Option<u32>,
    pub operstate: Option<String>,
    pub admin_up: bool,
    pub lower_up: bool,
    pub mac: Option<String>,
    pub qdisc: Option<String>,
    pub num_tx_queues: Option<u32>,
    pub num_rx_queues: Option<u32>,
    /// From /sys/class/net/IF/speed; None when the driver does not know (veth, lo, link down).
    pub speed_mbps: Option<u64>,
    pub duplex: Option<String>,
    pub stats_source: LinkStatsSource,
    pub stats: LinkStats,
    /// `ethtool -S` driver counters (ETHTOOL_GSTATS).
    pub driver_stats: Support<BTreeMap<String, u64>>,
    pub ethtool: EthtoolSettings,
    /// The XDP program attached (IFLA_XDP), if any.
    #[serde(default)]
    pub xdp: Option<XdpProgram>,
    /// IFLA_LINK: the peer's ifindex (veth) or the lower device's (vlan, macvlan).
    #[serde(default)]
    pub peer_ifindex: Option<u32>,
    /// IFLA_LINK_NETNSID: set when that peer is in another network namespace
    /// (this namespace's id for it); absent when it is in this one.
    #[serde(default)]
    pub peer_netnsid: Option<i32>,
    /// That peer namespace's inode, where the caller resolved the id
    /// (`netns::resolve_nsids`; doctor --netns does).
    #[serde(default)]
    pub peer_netns: Option<u32>,
}

/// An XDP program on an interface: its id (`bpftool prog show id N`) and how
/// it is attached ("driver", "generic", "offload", "multiple").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XdpProgram {
    pub id: u32,
    pub mode: String,
}

impl Link {
    /// Sets `peer_netns` on every link whose peer namespace id is in `inodes`.
    pub fn resolve_peer_namespaces(
        links: &mut [Link],
        inodes: &std::collections::HashMap<i32, u32>,
    ) {
        for link in links {
            link.peer_netns = link.peer_netnsid.and_then(|id| inodes.get(&id).copied());
        }
    }

    /// The distinct peer namespace ids of `links`.
    pub fn peer_netnsids(links: &[Link]) -> Vec<i32> {
        let mut ids: Vec<i32> = links.iter().filter_map(|l| l.peer_netnsid).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// A NIC: no rtnetlink kind (veth, bridge, bond, tun, macvlan... have one) and not lo.
    pub fn is_physical(&self) -> bool {
        self.kind.is_none() && self.name != "lo"
    }

    /// The speed, when it is a real line rate: virtual devices report a nominal
    /// speed (veth says 10000) or none, and rules must not measure load against it.
    pub fn line_rate_mbps(&self) -> Option<u64> {
        self.speed_mbps.filter(|s| *s > 0 && self.is_physical())
    }

    fn new(name: String, stats_source: LinkStatsSource, stats: LinkStats) -> Self {
        Link {
            name,
            ifindex: None,
            kind: None,
            mtu: None,
            txqlen: None,
            operstate: None,
            admin_up: false,
            lower_up: false,
            mac: None,
            qdisc: None,
            num_tx_queues: None,
            num_rx_queues: None,
            speed_mbps: None,
            duplex: None,
            stats_source,
            stats,
            driver_stats: Support::default(),
            ethtool: EthtoolSettings::default(),
            xdp: None,
            peer_ifindex: None,
            peer_netnsid: None,
            peer_netns: None,
        }
    }
}

/// Dumps RTM_GETLINK; the raw reply bytes.
pub fn dump_links() -> Result<Vec<u8>> {
    netlink_io::request(
        netlink_sys::protocols::NETLINK_ROUTE,
        "rtnetlink",
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        true,
    )
}

/// XDP attach flags (linux/if_link.h).
pub const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1 << 0;
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
pub const XDP_FLAGS_REPLACE: u32 = 1 << 4;

/// Attaches the XDP program `fd` to `ifindex` (netlink, so it stays attached
/// after this process exits), or detaches with `fd` -1. `expected_fd` makes the
/// change conditional on that program being the one attached (XDP_FLAGS_REPLACE);
/// XDP_FLAGS_UPDATE_IF_NOEXIST in `flags` refuses to replace any program.
pub fn set_xdp(ifindex: u32, fd: i32, flags: u32, expected_fd: Option<i32>) -> Result<()> {
    let mut xdp = vec![LinkXdp::Fd(fd)];
    let mut flags = flags;
    if let Some(expected) = expected_fd {
        flags |= XDP_FLAGS_REPLACE;
        xdp.push(LinkXdp::ExpectedFd(expected as u32));
    }
    xdp.push(LinkXdp::Flags(flags));
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    msg.attributes.push(LinkAttribute::Xdp(xdp));
    netlink_io::command(
        netlink_sys::protocols::NETLINK_ROUTE,
        "rtnetlink",
        RouteNetlinkMessage::SetLink(msg),
    )
}

/// Decodes an RTM_GETLINK dump into links (without sysfs/ethtool parts).
pub fn parse_link_dump(buf: &[u8]) -> Result<Vec<Link>> {
    netlink_io::check_framing(buf, "rtnetlink", "RTM_NEWLINK")?;
    let mut links = Vec::new();
    for raw in netlink_io::data_messages(buf) {
        let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw).map_err(|e| {
            KernelError::NetlinkDecode {
                family: "rtnetlink",
                what: "RTM_NEWLINK".into(),
                detail: e.to_string(),
            }
        })?;
        if let netlink_packet_core::NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(
            msg,
        )) = message.payload
        {
            links.push(link_from_message(&msg));
        }
    }
    Ok(links)
}

fn xdp_program(attrs: &[LinkXdp]) -> Option<XdpProgram> {
    let mut mode = None;
    let mut id = None;
    for attr in attrs {
        match attr {
            LinkXdp::Attached(attached) => {
                mode = match attached {
                    XdpAttached::None => return None,
                    XdpAttached::Driver => Some("driver"),
                    XdpAttached::SocketBuffer => Some("generic"),
                    XdpAttached::Hardware => Some("offload"),
                    XdpAttached::Multiple => Some("multiple"),
                    _ => Some("unknown"),
                }
            }
            LinkXdp::ProgId(n) => id = Some(*n),
            LinkXdp::DrvProgId(n) | LinkXdp::SkbProgId(n) | LinkXdp::HwProgId(n) => {
                id = id.or(Some(*n))
            }
            _ => {}
        }
    }
    Some(XdpProgram {
        id: id?,
        mode: mode?.to_string(),
    })
}

fn link_from_message(msg: &LinkMessage) -> Link {
    let mut link = Link::new(
        String::new(),
        LinkStatsSource::Rtnetlink,
        LinkStats::default(),
    );
    link.ifindex = Some(msg.header.index);
    link.admin_up = msg.header.flags.contains(LinkFlags::Up);
    link.lower_up = msg.header.flags.contains(LinkFlags::LowerUp);
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(name) => link.name = name.clone(),
            LinkAttribute::Mtu(mtu) => link.mtu = Some(*mtu),
            LinkAttribute::TxQueueLen(q) => link.txqlen = Some(*q),
            LinkAttribute::OperState(state) => link.operstate = Some(state.to_string()),
            LinkAttribute::Qdisc(q) => link.qdisc = Some(q.clone()),
            LinkAttribute::NumTxQueues(n) => link.num_tx_queues = Some(*n),
            LinkAttribute::NumRxQueues(n) => link.num_rx_queues = Some(*n),
            LinkAttribute::Address(mac) => {
                link.mac = Some(
                    mac.iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":"),
                )
            }
            LinkAttribute::Link(index) => link.peer_ifindex = Some(*index),
            LinkAttribute::LinkNetNsId(id) => link.peer_netnsid = Some(*id),
            LinkAttribute::Xdp(xdp) => link.xdp = xdp_program(xdp),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(kind) = info {
                        link.kind = Some(kind.to_string());
                    }
                }
            }
            LinkAttribute::Stats64(s) => {
                link.stats = LinkStats {
                    rx_packets: s.rx_packets,
                    tx_packets: s.tx_packets,
                    rx_bytes: s.rx_bytes,
                    tx_bytes: s.tx_bytes,
                    rx_errors: s.rx_errors,
                    tx_errors: s.tx_errors,
                    rx_dropped: s.rx_dropped,
                    tx_dropped: s.tx_dropped,
                    multicast: s.multicast,
                    collisions: s.collisions,
                    rx_length_errors: s.rx_length_errors,
                    rx_over_errors: s.rx_over_errors,
                    rx_crc_errors: s.rx_crc_errors,
                    rx_frame_errors: s.rx_frame_errors,
                    rx_fifo_errors: s.rx_fifo_errors,
                    rx_missed_errors: s.rx_missed_errors,
                    tx_aborted_errors: s.tx_aborted_errors,
                    tx_carrier_errors: s.tx_carrier_errors,
                    tx_fifo_errors: s.tx_fifo_errors,
                    tx_heartbeat_errors: s.tx_heartbeat_errors,
                    tx_window_errors: s.tx_window_errors,
                    rx_compressed: s.rx_compressed,
                    tx_compressed: s.tx_compressed,
                    rx_nohandler: s.rx_nohandler,
                    rx_otherhost_dropped: s.rx_otherhost_dropped,
                }
            }
            _ => {}
        }
    }
    link
}

/// Links from /proc/net/dev rows, for when rtnetlink is not available.
pub fn links_from_proc_net_dev(rows: &[(String, ProcNetDevRow)]) -> Vec<Link> {
    rows.iter()
        .map(|(name, row)| {
            Link::new(
                name.clone(),
                LinkStatsSource::ProcNetDev,
                LinkStats::from_proc_net_dev(row),
            )
        })
        .collect()
}

/// /sys/class/net/IF/speed: Mbit/s, or -1 / an error when unknown.
pub fn parse_speed(text: &str) -> Option<u64> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|&s| s > 0)
        .map(|s| s as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_view_sums_like_the_kernel() {
        let stats = LinkStats {
            rx_dropped: 2,
            rx_missed_errors: 3,
            rx_length_errors: 1,
            rx_over_errors: 1,
            rx_crc_errors: 1,
            rx_frame_errors: 1,
            tx_carrier_errors: 1,
            tx_aborted_errors: 2,
            tx_window_errors: 3,
            tx_heartbeat_errors: 4,
            ..Default::default()
        };
        let view = stats.proc_net_dev_view();
        assert_eq!(view.rx_drop, 5);
        assert_eq!(view.rx_frame, 4);
        assert_eq!(view.tx_carrier, 10);
    }

    #[test]
    fn speed_unknown_is_none() {
        assert_eq!(parse_speed("10000\n"), Some(10000));
        assert_eq!(parse_speed("-1\n"), None);
        assert_eq!(parse_speed("garbage"), None);
    }

    #[test]
    fn rates_follow_counters() {
        let prev = LinkStats {
            rx_bytes: 1000,
            ..Default::default()
        };
        let cur = LinkStats {
            rx_bytes: 3000,
            ..Default::default()
        };
        assert_eq!(cur.rates_since(&prev, 2.0).rx_bytes, 1000.0);
    }
}
