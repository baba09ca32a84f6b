//! Queueing disciplines: rtnetlink RTM_GETQDISC with TCA_STATS2.

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::tc::{TcAttribute, TcMessage, TcStats2};
use netlink_packet_route::RouteNetlinkMessage;
use serde::{Deserialize, Serialize};

use crate::error::{KernelError, Result};
use crate::netlink_io;
use crate::rates::counter_set;

counter_set! {
    /// TCA_STATS2 basic and queue counters.
    /// Bytes are 64-bit; packets, drops, overlimits and requeues are the u32s of
    /// gnet_stats_basic / gnet_stats_queue.
    QdiscCounters => QdiscCountersRates,
    kind |field| if field == "bytes" { crate::rates::CounterKind::Monotonic64 } else { crate::rates::CounterKind::Wrapping32 },
    {
        bytes, packets,
        /// Packets dropped by the qdisc (full queue, AQM, policing).
        drops,
        /// Times the qdisc throttled a packet (shaper over rate: tbf/htb).
        overlimits,
        /// Packets the driver pushed back (device busy).
        requeues,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Qdisc {
    pub ifindex: u32,
    /// Interface name, resolved from the link dump.
    pub link: Option<String>,
    pub kind: String,
    /// As tc prints it: "8001:", "0:".
    pub handle: String,
    /// "root", "ingress" or "major:minor" in hex, as tc prints it.
    pub parent: String,
    #[serde(flatten)]
    pub counters: QdiscCounters,
    /// Bytes queued now (a gauge).
    pub backlog_bytes: u64,
    /// Packets queued now (a gauge).
    pub qlen: u64,
}

pub fn dump_qdiscs() -> Result<Vec<u8>> {
    netlink_io::request(
        netlink_sys::protocols::NETLINK_ROUTE,
        "rtnetlink",
        RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default()),
        true,
    )
}

const TC_H_ROOT: u32 = 0xFFFF_FFFF;
const TC_H_INGRESS: u32 = 0xFFFF_FFF1;

/// tc's sprint_tc_classid.
fn format_tc_handle(h: u32) -> String {
    match (h, h >> 16, h & 0xffff) {
        (TC_H_ROOT, _, _) => "root".into(),
        (TC_H_INGRESS, _, _) => "ingress".into(),
        (_, 0, minor) if h != 0 => format!(":{minor:x}"),
        (_, major, 0) => format!("{major:x}:"),
        (_, major, minor) => format!("{major:x}:{minor:x}"),
    }
}

pub fn parse_qdisc_dump(buf: &[u8]) -> Result<Vec<Qdisc>> {
    netlink_io::check_framing(buf, "rtnetlink", "RTM_NEWQDISC")?;
    let mut out = Vec::new();
    for raw in netlink_io::data_messages(buf) {
        let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw).map_err(|e| {
            KernelError::NetlinkDecode {
                family: "rtnetlink",
                what: "RTM_NEWQDISC".into(),
                detail: e.to_string(),
            }
        })?;
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewQueueDiscipline(msg)) =
            message.payload
        else {
            continue;
        };
        let handle = u32::from(msg.header.handle.major) << 16 | u32::from(msg.header.handle.minor);
        let parent = u32::from(msg.header.parent.major) << 16 | u32::from(msg.header.parent.minor);
        let mut q = Qdisc {
            ifindex: msg.header.index as u32,
            link: None,
            kind: String::new(),
            handle: format!("{:x}:", handle >> 16),
            parent: format_tc_handle(parent),
            counters: QdiscCounters::default(),
            backlog_bytes: 0,
            qlen: 0,
        };
        for attr in &msg.attributes {
            match attr {
                TcAttribute::Kind(kind) => q.kind = kind.clone(),
                TcAttribute::Stats2(stats) => {
                    for s in stats {
                        match s {
                            TcStats2::Basic(b) => {
                                q.counters.bytes = b.bytes;
                                q.counters.packets = u64::from(b.packets);
                            }
                            TcStats2::Queue(qs) => {
                                q.counters.drops = u64::from(qs.drops);
                                q.counters.overlimits = u64::from(qs.overlimits);
                                q.counters.requeues = u64::from(qs.requeues);
                                q.backlog_bytes = u64::from(qs.backlog);
                                q.qlen = u64::from(qs.qlen);
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        out.push(q);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_print_like_tc() {
        assert_eq!(format_tc_handle(TC_H_ROOT), "root");
        assert_eq!(format_tc_handle(TC_H_INGRESS), "ingress");
        assert_eq!(format_tc_handle(0x8001_0000), "8001:");
        assert_eq!(format_tc_handle(0x0001_0001), "1:1");
        assert_eq!(format_tc_handle(0x0000_0003), ":3");
        assert_eq!(format_tc_handle(0), "0:");
    }
}
