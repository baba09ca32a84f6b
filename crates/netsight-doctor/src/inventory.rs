//! The loss inventory outside the MIBs, as data: every field of the 64-bit link
//! stats, every softnet_stat column, every /proc/net/stat table column, the qdisc
//! and conntrack counters. Each says what it means, what kind of signal it is,
//! and what covers it: a rule, a kernel drop reason (counted by doctor), or why
//! none is needed. MIB counters are in `explain` (with the rules that read them);
//! drop reasons in `drop_reasons`. A test walks this kernel's sources against it.

use crate::drop_reasons::SignalKind::{self, Benign, Error, Loss, Saturation};
use netsight_report::Layer::{self, Conntrack, Ip, Nic, Qdisc, Softirq};

#[derive(Debug, Clone, Copy)]
pub enum Coverage {
    /// Findings of these rules read it.
    Rules(&'static [&'static str]),
    /// The same loss is counted by this kernel drop reason (doctor counts them all).
    DropReason(&'static str),
    /// No finding needed, and why.
    None(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct Signal {
    /// "link", "softnet", "qdisc", "conntrack", or the /proc/net/stat table ("arp_cache").
    pub source: &'static str,
    pub name: &'static str,
    pub layer: Layer,
    pub kind: SignalKind,
    pub meaning: &'static str,
    pub coverage: Coverage,
}

use Coverage::{DropReason, Rules};

const ACTIVITY: Coverage = Coverage::None("activity, not loss: read for rates and the workload");
const GAUGE: Coverage = Coverage::None("a gauge or a cache statistic, not a count of lost packets");

macro_rules! signals {
    ($(($source:literal, $name:literal, $layer:expr, $kind:expr, $meaning:literal, $coverage:expr)),* $(,)?) => {
        &[$(Signal { source: $source, name: $name, layer: $layer, kind: $kind, meaning: $meaning, coverage: $coverage }),*]
    };
}

pub const SIGNALS: &[Signal] = signals![
    // struct rtnl_link_stats64 (ip -s -s link).
    ("link", "rx_packets", Nic, Benign, "Packets received.", ACTIVITY),
    ("link", "tx_packets", Nic, Benign, "Packets sent.", ACTIVITY),
    ("link", "rx_bytes", Nic, Benign, "Bytes received.", Rules(&["nic.utilization"])),
    ("link", "tx_bytes", Nic, Benign, "Bytes sent.", Rules(&["nic.utilization"])),
    ("link", "rx_errors", Nic, Error, "Receive errors of any kind (the sum of the rx_*_errors).", Rules(&["nic.errors"])),
    ("link", "tx_errors", Nic, Error, "Transmit errors of any kind.", Rules(&["nic.errors"])),
    ("link", "rx_dropped", Nic, Loss, "Received but dropped by the device or stack before a protocol took it (no buffer, filtered, unknown VLAN).", Rules(&["nic.rx_drops"])),
    ("link", "tx_dropped", Nic, Loss, "Dropped on transmit (device down, no buffer).", Rules(&["nic.tx_drops"])),
    ("link", "multicast", Nic, Benign, "Multicast packets received.", ACTIVITY),
    ("link", "collisions", Nic, Error, "Collisions (half duplex).", Rules(&["nic.half_duplex"])),
    ("link", "rx_length_errors", Nic, Error, "Frames with a bad length.", Rules(&["nic.crc_frame_errors"])),
    ("link", "rx_over_errors", Nic, Saturation, "Receiver ring overrun: the NIC had no descriptor for a frame.", Rules(&["nic.fifo_errors"])),
    ("link", "rx_crc_errors", Nic, Error, "Frames with a bad CRC: cabling, optics, or a duplex mismatch.", Rules(&["nic.crc_frame_errors"])),
    ("link", "rx_frame_errors", Nic, Error, "Misaligned frames.", Rules(&["nic.crc_frame_errors"])),
    ("link", "rx_fifo_errors", Nic, Saturation, "Receive FIFO overrun.", Rules(&["nic.fifo_errors"])),
    ("link", "rx_missed_errors", Nic, Saturation, "Missed by the NIC for lack of host buffers (the ring was full).", Rules(&["nic.rx_drops"])),
    ("link", "tx_aborted_errors", Nic, Error, "Transmissions aborted (excessive collisions, link loss).", Rules(&["nic.errors"])),
    ("link", "tx_carrier_errors", Nic, Error, "Carrier lost while sending.", Rules(&["nic.no_carrier", "nic.errors"])),
    ("link", "tx_fifo_errors", Nic, Saturation, "Transmit FIFO underrun.", Rules(&["nic.fifo_errors"])),
    ("link", "tx_heartbeat_errors", Nic, Error, "SQE heartbeat errors (old Ethernet).", Rules(&["nic.errors"])),
    ("link", "tx_window_errors", Nic, Error, "Late collisions.", Rules(&["nic.errors"])),
    ("link", "rx_compressed", Nic, Benign, "Compressed packets received (CSLIP, PPP).", ACTIVITY),
    ("link", "tx_compressed", Nic, Benign, "Compressed packets sent.", ACTIVITY),
    ("link", "rx_nohandler", Nic, Benign, "Dropped because no protocol handler wanted them (an Ethertype nothing listens for).", DropReason("UNHANDLED_PROTO")),
    ("link", "rx_otherhost_dropped", Nic, Benign, "Dropped because addressed to another host's MAC.", DropReason("OTHERHOST")),
    // /proc/net/softnet_stat, per CPU.
    ("softnet", "processed", Softirq, Benign, "Packets the CPU's receive softirq processed.", ACTIVITY),
    ("softnet", "dropped", Softirq, Saturation, "Dropped because the CPU's input backlog was full (netdev_max_backlog).", Rules(&["softnet.dropped"])),
    ("softnet", "time_squeeze", Softirq, Saturation, "The receive softirq ran out of budget or time with work left.", Rules(&["softnet.time_squeeze"])),
    ("softnet", "received_rps", Softirq, Benign, "Times this CPU was woken by RPS to process another CPU's packets.", ACTIVITY),
    ("softnet", "flow_limit_count", Softirq, Saturation, "Packets dropped by the flow limit (one flow hogging the backlog).", Rules(&["softnet.flow_limit"])),
    ("softnet", "backlog_len", Softirq, Benign, "Packets waiting in the CPU's backlog now.", GAUGE),
    // Queueing disciplines (tc -s qdisc), every qdisc and class including ingress/clsact.
    ("qdisc", "bytes", Qdisc, Benign, "Bytes dequeued.", ACTIVITY),
    ("qdisc", "packets", Qdisc, Benign, "Packets dequeued.", ACTIVITY),
    ("qdisc", "drops", Qdisc, Saturation, "Packets the qdisc dropped (queue limit, AQM, policer).", Rules(&["qdisc.drops"])),
    ("qdisc", "overlimits", Qdisc, Saturation, "Times a shaper throttled (over rate).", Rules(&["qdisc.overlimits"])),
    ("qdisc", "requeues", Qdisc, Saturation, "Packets the driver pushed back (device busy).", Rules(&["qdisc.requeues"])),
    ("qdisc", "backlog", Qdisc, Saturation, "Bytes queued now.", Rules(&["qdisc.standing_queue"])),
    ("qdisc", "qlen", Qdisc, Saturation, "Packets queued now.", Rules(&["qdisc.standing_queue"])),
    // Connection tracking.
    ("conntrack", "count", Conntrack, Saturation, "Entries in the table now.", Rules(&["conntrack.table_fill"])),
    ("conntrack", "max", Conntrack, Benign, "The table's limit.", Rules(&["conntrack.table_fill"])),
    // /proc/net/stat/nf_conntrack (conntrack -S), summed over CPUs.
    ("nf_conntrack", "entries", Conntrack, Benign, "Entries in the table.", GAUGE),
    ("nf_conntrack", "clashres", Conntrack, Benign, "Insert clashes resolved (parallel UDP from one socket).", ACTIVITY),
    ("nf_conntrack", "found", Conntrack, Benign, "Lookups that found an entry.", ACTIVITY),
    ("nf_conntrack", "new", Conntrack, Benign, "Entries created.", ACTIVITY),
    ("nf_conntrack", "invalid", Conntrack, Error, "Packets that matched no valid connection state (dropped by rules matching ctstate INVALID).", DropReason("NETFILTER_DROP")),
    ("nf_conntrack", "ignore", Conntrack, Benign, "Packets already tracked or untracked.", ACTIVITY),
    ("nf_conntrack", "delete", Conntrack, Benign, "Entries deleted.", ACTIVITY),
    ("nf_conntrack", "chainlength", Conntrack, Benign, "Hash chain length statistic.", GAUGE),
    ("nf_conntrack", "insert", Conntrack, Benign, "Entries inserted.", ACTIVITY),
    ("nf_conntrack", "insert_failed", Conntrack, Loss, "Packets dropped because their entry could not be inserted (a race, often DNS over NAT).", Rules(&["conntrack.drops"])),
    ("nf_conntrack", "drop", Conntrack, Saturation, "Packets dropped because the table was full.", Rules(&["conntrack.drops"])),
    ("nf_conntrack", "early_drop", Conntrack, Saturation, "Unassured entries evicted to make room.", Rules(&["conntrack.drops"])),
    ("nf_conntrack", "icmp_error", Conntrack, Error, "ICMP errors that matched no connection.", Coverage::None("usually scans or late errors; the packets are not the host's own traffic")),
    ("nf_conntrack", "expect_new", Conntrack, Benign, "Expectations created (FTP, SIP helpers).", ACTIVITY),
    ("nf_conntrack", "expect_create", Conntrack, Benign, "Expectations created.", ACTIVITY),
    ("nf_conntrack", "expect_delete", Conntrack, Benign, "Expectations deleted.", ACTIVITY),
    ("nf_conntrack", "search_restart", Conntrack, Benign, "Lookups restarted (table resized meanwhile).", ACTIVITY),
    // /proc/net/stat/arp_cache and ndisc_cache: the neighbour tables.
    ("arp_cache", "entries", Ip, Benign, "Neighbour entries.", GAUGE),
    ("arp_cache", "allocs", Ip, Benign, "Entries allocated.", ACTIVITY),
    ("arp_cache", "destroys", Ip, Benign, "Entries freed.", ACTIVITY),
    ("arp_cache", "hash_grows", Ip, Benign, "Hash table resizes.", ACTIVITY),
    ("arp_cache", "lookups", Ip, Benign, "Lookups.", ACTIVITY),
    ("arp_cache", "hits", Ip, Benign, "Lookups that found an entry.", ACTIVITY),
    ("arp_cache", "res_failed", Ip, Loss, "Resolutions that failed: the next hop does not answer.", DropReason("NEIGH_FAILED")),
    ("arp_cache", "rcv_probes_mcast", Ip, Benign, "Multicast probes received.", ACTIVITY),
    ("arp_cache", "rcv_probes_ucast", Ip, Benign, "Unicast probes received.", ACTIVITY),
    ("arp_cache", "periodic_gc_runs", Ip, Benign, "Garbage collections.", ACTIVITY),
    ("arp_cache", "forced_gc_runs", Ip, Saturation, "Collections forced by a full table (gc_thresh3).", DropReason("NEIGH_CREATEFAIL")),
    ("arp_cache", "unresolved_discards", Ip, Loss, "Packets discarded while waiting for resolution (queue full or resolution failed).", DropReason("NEIGH_QUEUEFULL")),
    ("arp_cache", "table_fulls", Ip, Saturation, "Entries refused: the table is full.", DropReason("NEIGH_CREATEFAIL")),
    ("ndisc_cache", "entries", Ip, Benign, "IPv6 neighbour entries.", GAUGE),
    ("ndisc_cache", "allocs", Ip, Benign, "Entries allocated.", ACTIVITY),
    ("ndisc_cache", "destroys", Ip, Benign, "Entries freed.", ACTIVITY),
    ("ndisc_cache", "hash_grows", Ip, Benign, "Hash table resizes.", ACTIVITY),
    ("ndisc_cache", "lookups", Ip, Benign, "Lookups.", ACTIVITY),
    ("ndisc_cache", "hits", Ip, Benign, "Lookups that found an entry.", ACTIVITY),
    ("ndisc_cache", "res_failed", Ip, Loss, "Resolutions that failed.", DropReason("NEIGH_FAILED")),
    ("ndisc_cache", "rcv_probes_mcast", Ip, Benign, "Multicast probes received.", ACTIVITY),
    ("ndisc_cache", "rcv_probes_ucast", Ip, Benign, "Unicast probes received.", ACTIVITY),
    ("ndisc_cache", "periodic_gc_runs", Ip, Benign, "Garbage collections.", ACTIVITY),
    ("ndisc_cache", "forced_gc_runs", Ip, Saturation, "Collections forced by a full table.", DropReason("NEIGH_CREATEFAIL")),
    ("ndisc_cache", "unresolved_discards", Ip, Loss, "Packets discarded while waiting for resolution.", DropReason("NEIGH_QUEUEFULL")),
    ("ndisc_cache", "table_fulls", Ip, Saturation, "Entries refused: the table is full.", DropReason("NEIGH_CREATEFAIL")),
    // /proc/net/stat/rt_cache: route lookups (the cache itself is gone since 3.6).
    ("rt_cache", "entries", Ip, Benign, "Dst entries.", GAUGE),
    ("rt_cache", "in_hit", Ip, Benign, "Input route hits.", ACTIVITY),
    ("rt_cache", "in_slow_tot", Ip, Benign, "Input route slow-path lookups.", ACTIVITY),
    ("rt_cache", "in_slow_mc", Ip, Benign, "Multicast input lookups.", ACTIVITY),
    ("rt_cache", "in_no_route", Ip, Loss, "Incoming packets with no route.", Rules(&["ip.no_route"])),
    ("rt_cache", "in_brd", Ip, Benign, "Broadcasts received.", ACTIVITY),
    ("rt_cache", "in_martian_dst", Ip, Error, "Martian destinations dropped.", DropReason("IP_INVALID_DEST")),
    ("rt_cache", "in_martian_src", Ip, Error, "Martian sources dropped.", DropReason("IP_INVALID_SOURCE")),
    ("rt_cache", "out_hit", Ip, Benign, "Output route hits.", ACTIVITY),
    ("rt_cache", "out_slow_tot", Ip, Benign, "Output slow-path lookups.", ACTIVITY),
    ("rt_cache", "out_slow_mc", Ip, Benign, "Multicast output lookups.", ACTIVITY),
    ("rt_cache", "gc_total", Ip, Benign, "Dst garbage collections.", ACTIVITY),
    ("rt_cache", "gc_ignored", Ip, Benign, "Collections skipped.", ACTIVITY),
    ("rt_cache", "gc_goal_miss", Ip, Benign, "Collections that missed their goal.", ACTIVITY),
    ("rt_cache", "gc_dst_overflow", Ip, Saturation, "Dst table overflows (routes refused).", DropReason("IP_OUTNOROUTES")),
    ("rt_cache", "in_hlist_search", Ip, Benign, "Input hash searches.", ACTIVITY),
    ("rt_cache", "out_hlist_search", Ip, Benign, "Output hash searches.", ACTIVITY),
    // /proc/net/stat/synproxy.
    ("synproxy", "entries", Conntrack, Benign, "SYN proxy entries.", GAUGE),
    ("synproxy", "syn_received", Conntrack, Benign, "SYNs the proxy answered.", ACTIVITY),
    ("synproxy", "cookie_invalid", Conntrack, Error, "ACKs with an invalid cookie (dropped).", DropReason("NETFILTER_DROP")),
    ("synproxy", "cookie_valid", Conntrack, Benign, "Valid cookies.", ACTIVITY),
    ("synproxy", "cookie_retrans", Conntrack, Benign, "Retransmitted cookies.", ACTIVITY),
    ("synproxy", "conn_reopened", Conntrack, Benign, "Connections reopened.", ACTIVITY),
    // ethtool -S (ETHTOOL_GSTATS): driver counters, by name with each queue number
    // as N. Drivers name their own; these are the ones of veth, virtio_net, ifb and
    // the common NICs (mlx5, ixgbe/i40e/ice, ena). Any other name is classified by
    // its words (`classify_driver_counter`).
    ("ethtool", "peer_ifindex", Nic, Benign, "veth: the peer's interface index (not a counter).", GAUGE),
    ("ethtool", "rx_queue_N_packets", Nic, Benign, "Packets received on queue N.", ACTIVITY),
    ("ethtool", "rx_queue_N_bytes", Nic, Benign, "Bytes received on queue N.", ACTIVITY),
    ("ethtool", "tx_queue_N_packets", Nic, Benign, "Packets sent on queue N.", ACTIVITY),
    ("ethtool", "tx_queue_N_bytes", Nic, Benign, "Bytes sent on queue N.", ACTIVITY),
    ("ethtool", "rx_queue_N_drops", Nic, Loss, "veth: packets dropped on the peer's receive queue N (its NAPI ring was full, with XDP or GRO on).", DRIVER_DROPS),
    ("ethtool", "rx_queue_N_xdp_packets", Nic, Benign, "veth: packets the XDP program on queue N ran on.", ACTIVITY),
    ("ethtool", "rx_queue_N_xdp_bytes", Nic, Benign, "veth: bytes the XDP program on queue N ran on.", ACTIVITY),
    ("ethtool", "rx_queue_N_xdp_redirect", Nic, Benign, "veth: XDP_REDIRECT verdicts on queue N.", ACTIVITY),
    ("ethtool", "rx_queue_N_xdp_drops", Nic, Loss, "veth: packets the XDP program on queue N dropped (XDP_DROP, XDP_ABORTED or a failed verdict).", XDP_DROPS),
    ("ethtool", "rx_queue_N_xdp_tx", Nic, Benign, "veth: XDP_TX verdicts on queue N.", ACTIVITY),
    ("ethtool", "rx_queue_N_xdp_tx_errors", Nic, Loss, "veth: XDP_TX packets of queue N that could not be sent back.", XDP_DROPS),
    ("ethtool", "tx_queue_N_xdp_xmit", Nic, Benign, "veth: packets redirected by XDP into queue N.", ACTIVITY),
    ("ethtool", "tx_queue_N_xdp_xmit_errors", Nic, Loss, "veth: packets XDP redirected into queue N that were lost.", XDP_DROPS),
    ("ethtool", "rx_packets", Nic, Benign, "Packets received.", ACTIVITY),
    ("ethtool", "rx_bytes", Nic, Benign, "Bytes received.", ACTIVITY),
    ("ethtool", "tx_packets", Nic, Benign, "Packets sent.", ACTIVITY),
    ("ethtool", "tx_bytes", Nic, Benign, "Bytes sent.", ACTIVITY),
    ("ethtool", "rxN_packets", Nic, Benign, "virtio_net: packets received on queue N.", ACTIVITY),
    ("ethtool", "rxN_bytes", Nic, Benign, "virtio_net: bytes received on queue N.", ACTIVITY),
    ("ethtool", "txN_packets", Nic, Benign, "virtio_net: packets sent on queue N.", ACTIVITY),
    ("ethtool", "txN_bytes", Nic, Benign, "virtio_net: bytes sent on queue N.", ACTIVITY),
    ("ethtool", "rx_drops", Nic, Loss, "virtio_net: received packets the driver dropped (no buffer, bad length).", DRIVER_DROPS),
    ("ethtool", "rxN_drops", Nic, Loss, "virtio_net: received packets the driver dropped on queue N.", DRIVER_DROPS),
    ("ethtool", "rx_xdp_packets", Nic, Benign, "virtio_net: packets the XDP program ran on.", ACTIVITY),
    ("ethtool", "rxN_xdp_packets", Nic, Benign, "virtio_net: packets the XDP program ran on, queue N.", ACTIVITY),
    ("ethtool", "rx_xdp_tx", Nic, Benign, "virtio_net: XDP_TX verdicts.", ACTIVITY),
    ("ethtool", "rxN_xdp_tx", Nic, Benign, "virtio_net: XDP_TX verdicts, queue N.", ACTIVITY),
    ("ethtool", "rx_xdp_redirects", Nic, Benign, "virtio_net: XDP_REDIRECT verdicts.", ACTIVITY),
    ("ethtool", "rxN_xdp_redirects", Nic, Benign, "virtio_net: XDP_REDIRECT verdicts, queue N.", ACTIVITY),
    ("ethtool", "rx_xdp_drops", Nic, Loss, "virtio_net: packets the XDP program dropped (XDP_DROP, XDP_ABORTED or a failed verdict).", XDP_DROPS),
    ("ethtool", "rxN_xdp_drops", Nic, Loss, "virtio_net: packets the XDP program dropped, queue N.", XDP_DROPS),
    ("ethtool", "rx_kicks", Nic, Benign, "virtio_net: notifications to the host that receive buffers were added.", ACTIVITY),
    ("ethtool", "rxN_kicks", Nic, Benign, "virtio_net: receive notifications, queue N.", ACTIVITY),
    ("ethtool", "tx_kicks", Nic, Benign, "virtio_net: notifications to the host that packets were queued.", ACTIVITY),
    ("ethtool", "txN_kicks", Nic, Benign, "virtio_net: transmit notifications, queue N.", ACTIVITY),
    ("ethtool", "tx_xdp_tx", Nic, Benign, "virtio_net: packets sent by XDP_TX or redirect.", ACTIVITY),
    ("ethtool", "txN_xdp_tx", Nic, Benign, "virtio_net: packets sent by XDP_TX or redirect, queue N.", ACTIVITY),
    ("ethtool", "tx_xdp_tx_drops", Nic, Loss, "virtio_net: XDP_TX or redirected packets that could not be queued.", XDP_DROPS),
    ("ethtool", "txN_xdp_tx_drops", Nic, Loss, "virtio_net: XDP_TX or redirected packets lost, queue N.", XDP_DROPS),
    ("ethtool", "tx_tx_timeouts", Nic, Error, "virtio_net: transmit watchdog timeouts (the host stopped consuming the queue).", DRIVER_DROPS),
    ("ethtool", "txN_tx_timeouts", Nic, Error, "virtio_net: transmit watchdog timeouts, queue N.", DRIVER_DROPS),
    ("ethtool", "bw_in_allowance_exceeded", Nic, Saturation, "ena (AWS): packets queued or dropped because inbound bandwidth exceeded the instance's allowance.", DRIVER_DROPS),
    ("ethtool", "bw_out_allowance_exceeded", Nic, Saturation, "ena (AWS): packets queued or dropped because outbound bandwidth exceeded the instance's allowance.", DRIVER_DROPS),
    ("ethtool", "pps_allowance_exceeded", Nic, Saturation, "ena (AWS): packets dropped because the packet rate exceeded the instance's allowance.", DRIVER_DROPS),
    ("ethtool", "conntrack_allowance_exceeded", Nic, Saturation, "ena (AWS): packets dropped because the instance's connection-tracking allowance was exhausted.", DRIVER_DROPS),
    ("ethtool", "linklocal_allowance_exceeded", Nic, Saturation, "ena (AWS): packets to link-local services (DNS, metadata) dropped over their rate limit.", DRIVER_DROPS),
    ("ethtool", "rx_out_of_buffer", Nic, Saturation, "mlx5: packets dropped because no receive descriptor was free (the ring was full).", DRIVER_DROPS),
    ("ethtool", "rx_discards_phy", Nic, Saturation, "mlx5: packets the port discarded for lack of buffer (host too slow, or pause frames off).", DRIVER_DROPS),
    ("ethtool", "tx_discards_phy", Nic, Saturation, "mlx5: packets the port discarded on transmit (congestion).", DRIVER_DROPS),
    ("ethtool", "rx_xdp_drop", Nic, Loss, "mlx5: packets the XDP program dropped.", XDP_DROPS),
    ("ethtool", "rx_no_dma_resources", Nic, Saturation, "ixgbe: packets dropped for lack of receive buffers.", DRIVER_DROPS),
    ("ethtool", "alloc_rx_buff_failed", Nic, Saturation, "ixgbe/igb: receive buffer allocations that failed (memory pressure).", DRIVER_DROPS),
    ("ethtool", "alloc_rx_page_failed", Nic, Saturation, "ixgbe: receive page allocations that failed.", DRIVER_DROPS),
    ("ethtool", "port.rx_discards", Nic, Saturation, "i40e/ice: packets the port discarded for lack of buffers.", DRIVER_DROPS),
    ("ethtool", "rx_dropped", Nic, Loss, "i40e/ice: received packets the driver dropped.", DRIVER_DROPS),
];

const DRIVER_DROPS: Coverage = Rules(&["nic.driver_drops"]);
const XDP_DROPS: Coverage = Rules(&["nic.xdp_drops"]);

/// A driver counter's name with each run of digits as N: "rx_queue_3_drops"
/// becomes "rx_queue_N_drops", "rx12_drops" becomes "rxN_drops".
pub fn driver_counter_pattern(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_digits = false;
    for c in name.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

/// What a driver counter is: its inventory entry, or, for a name no entry has
/// (drivers invent their own), a kind and coverage from its words.
pub fn classify_driver_counter(name: &str) -> (SignalKind, Coverage) {
    if let Some(s) = find("ethtool", &driver_counter_pattern(name)) {
        return (s.kind, s.coverage);
    }
    let n = name.to_ascii_lowercase();
    let lossy = [
        "drop",
        "discard",
        "miss",
        "no_buf",
        "alloc_fail",
        "overrun",
        "exceeded",
    ]
    .iter()
    .any(|w| n.contains(w));
    let error = ["err", "timeout", "fail"].iter().any(|w| n.contains(w));
    match (n.contains("xdp"), lossy || error) {
        (true, true) => (Loss, XDP_DROPS),
        (false, true) if lossy => (Loss, DRIVER_DROPS),
        (false, true) => (Error, DRIVER_DROPS),
        _ => (Benign, ACTIVITY),
    }
}

/// MIB counters (snmp, netstat, snmp6) that count loss, errors or saturation, or that
/// look like they do: kind and coverage. Meanings are in `explain`; every other MIB
/// counter of this kernel is activity (explain knows all of them).
pub const MIB_SIGNALS: &[(&str, &str, SignalKind, Coverage)] = &[
    ("Ip", "InHdrErrors", Error, Rules(&["ip.input_errors"])),
    ("Ip", "InAddrErrors", Error, Rules(&["ip.input_errors"])),
    ("Ip", "InDiscards", Saturation, Rules(&["ip.input_errors"])),
    ("Ip", "OutDiscards", Saturation, DropReason("NOMEM")),
    ("Ip", "OutNoRoutes", Loss, Rules(&["ip.no_route"])),
    ("Ip", "ReasmTimeout", Loss, Rules(&["ip.reassembly_failures"])),
    ("Ip", "ReasmFails", Loss, Rules(&["ip.reassembly_failures"])),
    ("Ip", "FragFails", Loss, Rules(&["ip.fragmentation_failures"])),
    ("IpExt", "InNoRoutes", Loss, DropReason("IP_INNOROUTES")),
    ("IpExt", "InCsumErrors", Error, Rules(&["ip.input_errors"])),
    ("Icmp", "InErrors", Error, DropReason("ICMP_CSUM")),
    ("Icmp", "InCsumErrors", Error, DropReason("ICMP_CSUM")),
    ("Icmp", "InDestUnreachs", Loss, Rules(&["ip.icmp_unreachable"])),
    ("Icmp", "OutErrors", Error, Coverage::None("ICMP messages this host failed to send: an effect of the loss the other signals name")),
    ("Icmp", "OutRateLimitGlobal", Saturation, Coverage::None("ICMP replies suppressed by the rate limit: protection working, not packet loss")),
    ("Icmp", "OutRateLimitHost", Saturation, Coverage::None("ICMP replies suppressed by the per-host rate limit: protection working")),
    ("Icmp", "OutDestUnreachs", Loss, Rules(&["ip.icmp_unreachable", "udp.no_port"])),
    ("Tcp", "AttemptFails", Loss, Rules(&["tcp.connect_failures"])),
    ("Tcp", "EstabResets", Loss, Rules(&["tcp.resets_received"])),
    ("Tcp", "RetransSegs", Loss, Rules(&["tcp.retransmissions"])),
    ("Tcp", "InErrs", Error, Rules(&["tcp.receive_pruning"])),
    ("Tcp", "OutRsts", Loss, Rules(&["tcp.resets_sent"])),
    ("Tcp", "InCsumErrors", Error, DropReason("TCP_CSUM")),
    ("Udp", "NoPorts", Loss, Rules(&["udp.no_port"])),
    ("Udp", "InErrors", Error, Rules(&["udp.receive_buffer_errors", "udp.checksum_errors"])),
    ("Udp", "RcvbufErrors", Saturation, Rules(&["udp.receive_buffer_errors"])),
    ("Udp", "SndbufErrors", Saturation, Rules(&["udp.send_buffer_errors"])),
    ("Udp", "InCsumErrors", Error, Rules(&["udp.checksum_errors"])),
    ("Udp", "MemErrors", Saturation, DropReason("PROTO_MEM")),
    ("UdpLite", "NoPorts", Loss, DropReason("NO_SOCKET")),
    ("UdpLite", "InErrors", Error, DropReason("UDP_CSUM")),
    ("UdpLite", "RcvbufErrors", Saturation, DropReason("SOCKET_RCVBUFF")),
    ("UdpLite", "SndbufErrors", Saturation, Coverage::None("UDP-Lite sends that failed: the sender sees ENOBUFS itself")),
    ("UdpLite", "InCsumErrors", Error, DropReason("UDP_CSUM")),
    ("UdpLite", "MemErrors", Saturation, DropReason("PROTO_MEM")),
    ("Ip6", "InHdrErrors", Error, DropReason("IP_INHDR")),
    ("Ip6", "InTooBigErrors", Loss, DropReason("PKT_TOO_BIG")),
    ("Ip6", "InNoRoutes", Loss, DropReason("IP_INNOROUTES")),
    ("Ip6", "InAddrErrors", Error, DropReason("IP_INADDRERRORS")),
    ("Ip6", "InDiscards", Saturation, DropReason("NOMEM")),
    ("Ip6", "OutDiscards", Saturation, DropReason("NOMEM")),
    ("Ip6", "OutNoRoutes", Loss, DropReason("IP_OUTNOROUTES")),
    ("Ip6", "ReasmTimeout", Loss, DropReason("FRAG_REASM_TIMEOUT")),
    ("Ip6", "ReasmFails", Loss, DropReason("FRAG_REASM_TIMEOUT")),
    ("Ip6", "FragFails", Loss, DropReason("PKT_TOO_BIG")),
    ("Icmp6", "InErrors", Error, DropReason("ICMP_CSUM")),
    ("Icmp6", "OutErrors", Error, Coverage::None("ICMPv6 messages this host failed to send: an effect of the loss the other signals name")),
    ("Icmp6", "InCsumErrors", Error, DropReason("ICMP_CSUM")),
    ("Icmp6", "OutRateLimitHost", Saturation, Coverage::None("ICMPv6 replies suppressed by the rate limit: protection working")),
    ("Icmp6", "InDestUnreachs", Loss, Coverage::None("peers reporting unreachable destinations: the loss is on their side of the path")),
    ("Icmp6", "InPktTooBigs", Loss, Coverage::None("PMTU discovery working: the path told us its MTU")),
    ("Icmp6", "OutDestUnreachs", Loss, DropReason("NO_SOCKET")),
    ("Icmp6", "OutPktTooBigs", Loss, DropReason("PKT_TOO_BIG")),
    ("Udp6", "NoPorts", Loss, Rules(&["udp.no_port"])),
    ("Udp6", "InErrors", Error, Rules(&["udp.receive_buffer_errors", "udp.checksum_errors"])),
    ("Udp6", "RcvbufErrors", Saturation, Rules(&["udp.receive_buffer_errors"])),
    ("Udp6", "SndbufErrors", Saturation, Rules(&["udp.send_buffer_errors"])),
    ("Udp6", "InCsumErrors", Error, Rules(&["udp.checksum_errors"])),
    ("Udp6", "MemErrors", Saturation, DropReason("PROTO_MEM")),
    ("UdpLite6", "NoPorts", Loss, DropReason("NO_SOCKET")),
    ("UdpLite6", "InErrors", Error, DropReason("UDP_CSUM")),
    ("UdpLite6", "RcvbufErrors", Saturation, DropReason("SOCKET_RCVBUFF")),
    ("UdpLite6", "SndbufErrors", Saturation, Coverage::None("UDP-Lite sends that failed: the sender sees ENOBUFS itself")),
    ("UdpLite6", "InCsumErrors", Error, DropReason("UDP_CSUM")),
    ("UdpLite6", "MemErrors", Saturation, DropReason("PROTO_MEM")),
    ("TcpExt", "SyncookiesFailed", Error, Rules(&["tcp.syncookies_sent"])),
    ("TcpExt", "EmbryonicRsts", Loss, Rules(&["tcp.resets_received"])),
    ("TcpExt", "PruneCalled", Saturation, Rules(&["tcp.receive_pruning"])),
    ("TcpExt", "RcvPruned", Saturation, Rules(&["tcp.receive_pruning"])),
    ("TcpExt", "OfoPruned", Saturation, Rules(&["tcp.receive_pruning"])),
    ("TcpExt", "LockDroppedIcmps", Saturation, Coverage::None("ICMP errors dropped because the socket was busy; TCP retries on its own")),
    ("TcpExt", "PAWSActive", Benign, BENIGN),
    ("TcpExt", "PAWSEstab", Benign, BENIGN),
    ("TcpExt", "TSEcrRejected", Error, DropReason("TCP_RFC7323_TSECR")),
    ("TcpExt", "PAWSOldAck", Benign, BENIGN),
    ("TcpExt", "PAWSTimewait", Benign, BENIGN),
    ("TcpExt", "DelayedACKLost", Benign, Coverage::None("our delayed ACK arrived late and the peer retransmitted: counted with the peer's retransmissions")),
    ("TcpExt", "ListenOverflows", Saturation, Rules(&["tcp.listen_overflows"])),
    ("TcpExt", "ListenDrops", Saturation, Rules(&["tcp.listen_drops"])),
    ("TcpExt", "TCPFullUndo", Benign, BENIGN),
    ("TcpExt", "TCPPartialUndo", Benign, BENIGN),
    ("TcpExt", "TCPDSACKUndo", Benign, BENIGN),
    ("TcpExt", "TCPDSACKIgnoredNoUndo", Benign, BENIGN),
    ("TcpExt", "TCPWinProbe", Benign, Coverage::None("zero-window probes sent: the peer's window is closed; sockets.window_limited names such connections")),
    ("TcpExt", "TCPLossUndo", Benign, BENIGN),
    ("TcpExt", "TCPLostRetransmit", Loss, Rules(&["tcp.retransmissions"])),
    ("TcpExt", "TCPRenoFailures", Loss, Rules(&["tcp.retransmissions"])),
    ("TcpExt", "TCPSackFailures", Loss, Rules(&["tcp.retransmissions"])),
    ("TcpExt", "TCPLossFailures", Loss, Rules(&["tcp.rto_timeouts"])),
    ("TcpExt", "TCPFastRetrans", Loss, Rules(&["tcp.retransmissions"])),
    ("TcpExt", "TCPSlowStartRetrans", Loss, Rules(&["tcp.retransmissions"])),
    ("TcpExt", "TCPTimeouts", Loss, Rules(&["tcp.rto_timeouts"])),
    ("TcpExt", "TCPLossProbes", Benign, Coverage::None("tail loss probes sent: normal TCP, part of the retransmissions when they fire")),
    ("TcpExt", "TCPLossProbeRecovery", Benign, BENIGN),
    ("TcpExt", "TCPRenoRecoveryFail", Loss, Rules(&["tcp.rto_timeouts"])),
    ("TcpExt", "TCPSackRecoveryFail", Loss, Rules(&["tcp.rto_timeouts"])),
    ("TcpExt", "TCPRcvCollapsed", Saturation, Rules(&["tcp.receive_pruning"])),
    ("TcpExt", "TCPBacklogCoalesce", Benign, BENIGN),
    ("TcpExt", "TCPAbortOnData", Benign, Coverage::None("the application closed with unread data: an application choice")),
    ("TcpExt", "TCPAbortOnClose", Benign, Coverage::None("the application closed with unread data: an application choice")),
    ("TcpExt", "TCPAbortOnMemory", Saturation, Rules(&["tcp.memory"])),
    ("TcpExt", "TCPAbortOnTimeout", Loss, Rules(&["tcp.rto_timeouts"])),
    ("TcpExt", "TCPAbortOnLinger", Benign, BENIGN),
    ("TcpExt", "TCPAbortFailed", Error, Rules(&["tcp.memory"])),
    ("TcpExt", "TCPMemoryPressures", Saturation, Rules(&["tcp.memory"])),
    ("TcpExt", "TCPMemoryPressuresChrono", Saturation, Rules(&["tcp.memory"])),
    ("TcpExt", "TCPSACKDiscard", Benign, BENIGN),
    ("TcpExt", "TCPMD5Failure", Error, DropReason("TCP_MD5FAILURE")),
    ("TcpExt", "TCPBacklogDrop", Saturation, DropReason("SOCKET_BACKLOG")),
    ("TcpExt", "PFMemallocDrop", Saturation, DropReason("PFMEMALLOC")),
    ("TcpExt", "TCPMinTTLDrop", Error, DropReason("TCP_MINTTL")),
    ("TcpExt", "TCPDeferAcceptDrop", Benign, Coverage::None("TCP_DEFER_ACCEPT waiting for data: by design")),
    ("TcpExt", "TCPTimeWaitOverflow", Saturation, Rules(&["tcp.time_wait"])),
    ("TcpExt", "TCPReqQFullDoCookies", Saturation, Rules(&["tcp.syncookies_sent"])),
    ("TcpExt", "TCPReqQFullDrop", Saturation, Rules(&["tcp.syn_queue_full"])),
    ("TcpExt", "TCPRetransFail", Loss, Rules(&["tcp.retransmissions"])),
    ("TcpExt", "TCPOFODrop", Saturation, DropReason("TCP_OFO_DROP")),
    ("TcpExt", "TCPChallengeACK", Benign, BENIGN),
    ("TcpExt", "TCPSYNChallenge", Benign, BENIGN),
    ("TcpExt", "TCPFastOpenActiveFail", Loss, Coverage::None("Fast Open fell back to a normal handshake: the connection still works")),
    ("TcpExt", "TCPFastOpenPassiveFail", Loss, Coverage::None("Fast Open fell back to a normal handshake: the connection still works")),
    ("TcpExt", "TCPFastOpenListenOverflow", Saturation, Coverage::None("Fast Open requests over the listener's TFO queue fall back to a normal handshake")),
    ("TcpExt", "TCPSynRetrans", Loss, Rules(&["tcp.syn_retransmits"])),
    ("TcpExt", "TCPACKSkippedPAWS", Benign, BENIGN),
    ("TcpExt", "TCPACKSkippedChallenge", Benign, BENIGN),
    ("TcpExt", "TCPMTUPFail", Loss, Coverage::None("a larger MTU probe was lost: PMTU probing keeps the working size")),
    ("TcpExt", "TCPZeroWindowDrop", Saturation, Rules(&["tcp.receive_pruning"])),
    ("TcpExt", "TCPRcvQDrop", Saturation, Rules(&["tcp.receive_pruning"])),
    ("TcpExt", "TCPWqueueTooBig", Saturation, Coverage::None("a send refused because the write queue is too fragmented: the application sees it and retries")),
    ("TcpExt", "TcpTimeoutRehash", Loss, Rules(&["tcp.rto_timeouts"])),
    ("TcpExt", "TCPMigrateReqFailure", Error, Coverage::None("SO_REUSEPORT request migration failed: the request falls back to the closing listener")),
    ("TcpExt", "TCPAOBad", Error, DropReason("TCP_AOFAILURE")),
    ("TcpExt", "TCPAODroppedIcmps", Error, Coverage::None("ICMP errors ignored on TCP-AO connections, by design (RFC 5925)")),
];

const BENIGN: Coverage = Coverage::None("normal protocol operation, not loss");

/// MPTCP's own counters: its subflows are TCP connections, whose loss the TCP
/// counters (and rules) carry.
pub const MPTCP_COVERAGE: Coverage = Coverage::None(
    "MPTCP path management: its subflows' loss shows in the TCP counters the rules read",
);

pub fn find(source: &str, name: &str) -> Option<&'static Signal> {
    SIGNALS
        .iter()
        .find(|s| s.source == source && s.name == name)
}

/// "arp_cache.unresolved_discards", "link.rx_missed_errors", or a bare name
/// that only one source has.
pub fn lookup(query: &str) -> Option<&'static Signal> {
    if let Some((source, name)) = query.split_once('.') {
        let name = if source == "ethtool" {
            driver_counter_pattern(name)
        } else {
            name.to_string()
        };
        if let Some(s) = find(source, &name) {
            return Some(s);
        }
    }
    let mut hits = SIGNALS.iter().filter(|s| s.name == query);
    match (hits.next(), hits.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cover_exists() {
        let ids: Vec<&str> = crate::rules::all().iter().map(|r| r.id).collect();
        for s in SIGNALS {
            match s.coverage {
                Rules(rules) => {
                    for r in rules {
                        assert!(ids.contains(r), "{}.{}: unknown rule {r}", s.source, s.name);
                    }
                }
                DropReason(reason) => assert!(
                    crate::drop_reasons::find(reason).is_some(),
                    "{}.{}: unknown reason {reason}",
                    s.source,
                    s.name
                ),
                Coverage::None(why) => assert!(!why.is_empty()),
            }
            // A loss or saturation signal is covered by something that can report it.
            if matches!(s.kind, Loss | Saturation | Error) {
                assert!(
                    !matches!(s.coverage, Coverage::None(_)) || s.name == "icmp_error",
                    "{}.{} loses packets but nothing covers it",
                    s.source,
                    s.name
                );
            }
        }
    }

    #[test]
    fn every_mib_cover_exists() {
        let ids: Vec<&str> = crate::rules::all().iter().map(|r| r.id).collect();
        for (group, name, _, coverage) in MIB_SIGNALS {
            match coverage {
                Rules(rules) => assert!(rules.iter().all(|r| ids.contains(r)), "{group}.{name}"),
                DropReason(r) => assert!(
                    crate::drop_reasons::find(r).is_some(),
                    "{group}.{name}: {r}"
                ),
                Coverage::None(why) => assert!(!why.is_empty()),
            }
        }
    }

    #[test]
    fn every_counter_the_snapshot_keeps_is_listed() {
        let sets = [
            ("link", netsight_kernel::link::LinkStats::FIELDS),
            ("qdisc", netsight_kernel::qdisc::QdiscCounters::FIELDS),
        ];
        for (source, fields) in sets {
            for f in fields {
                assert!(find(source, f).is_some(), "{source} counter {f} missing");
            }
        }
    }
}
