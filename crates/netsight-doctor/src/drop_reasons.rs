//! Every value of the kernel's `enum skb_drop_reason` (include/net/dropreason-core.h)
//! as data: its layer, what it means, what kind of signal it is, which rules'
//! findings it explains, and the rate at which it is a finding of its own.
//! doctor counts kfree_skb drops by reason during its interval; a reason that no
//! counter-based finding explains becomes its own finding (`attach`).

use netsight_report::{DropCell, Evidence, Finding, KernelDrops, Layer, Report, Severity, UseKind};

/// What a signal says about the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalKind {
    /// Wanted traffic lost for lack of a resource (buffer, queue, memory).
    Saturation,
    /// Wanted traffic lost for another reason (no route, neighbour failed, device down).
    Loss,
    /// Malformed or corrupt input (checksums, headers): the sender or the path is at fault.
    Error,
    /// A configured filter said no (netfilter, rp_filter, BPF, tc, XFRM, LSM).
    Policy,
    /// Normal protocol work (duplicates, old data, closing sockets): not a problem.
    Benign,
}

impl SignalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Saturation => "saturation",
            Loss => "loss",
            Error => "error",
            Policy => "policy",
            Benign => "benign",
        }
    }
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct DropReason {
    /// Without the SKB_DROP_REASON_ prefix.
    pub name: &'static str,
    pub layer: Layer,
    pub kind: SignalKind,
    pub meaning: &'static str,
    /// Rules whose finding this reason explains: it becomes their evidence.
    pub rules: &'static [&'static str],
    /// What to do when it is a finding of its own.
    pub fix: &'static str,
}

use Layer::{Config, Filter, Ip, Link, Nic, Qdisc, Sockets, Softirq, Tcp, Udp};
use SignalKind::{Benign, Error, Loss, Policy, Saturation};

macro_rules! reasons {
    ($(($name:literal, $layer:expr, $kind:expr, $meaning:literal, [$($rule:literal),*], $fix:expr)),* $(,)?) => {
        &[$(DropReason { name: $name, layer: $layer, kind: $kind, meaning: $meaning, rules: &[$($rule),*], fix: $fix }),*]
    };
}

const NO_FIX: &str = "Nothing to fix: normal protocol operation.";

/// Every reason this kernel (6.18) defines; `inventory_covers_this_kernel` checks
/// the running kernel's BTF against it.
pub const DROP_REASONS: &[DropReason] = reasons![
    ("NOT_SPECIFIED", Config, Benign, "Freed through kfree_skb() with no reason given: many paths, benign ones included; the dropping function says which.", [], "Look at the dropping function (netsight trace drops) to tell the path."),
    ("NO_SOCKET", Sockets, Loss, "No socket wants the packet: a closed port (TCP answers RST, UDP ICMP port unreachable), or a connection already gone.", ["udp.no_port", "tcp.resets_sent"], "Start or fix the service on that port, or stop the clients sending to it (netsight trace drops shows the port)."),
    ("SOCKET_CLOSE", Sockets, Benign, "The socket was closed with data still queued in it.", [], NO_FIX),
    ("SOCKET_FILTER", Filter, Policy, "A socket filter (SO_ATTACH_FILTER, e.g. a packet capture's) rejected the packet.", [], "Expected while captures with filters run; otherwise check the application's socket filter."),
    ("SOCKET_RCVBUFF", Sockets, Saturation, "The socket's receive buffer was full: the application reads too slowly or its SO_RCVBUF is too small.", ["udp.receive_buffer_errors", "tcp.receive_pruning"], "Read faster (more threads, SO_REUSEPORT) or raise the socket's buffer (SO_RCVBUF, net.core.rmem_max / rmem_default)."),
    ("UNIX_DISCONNECT", Sockets, Benign, "A UNIX socket was disconnected with data queued.", [], NO_FIX),
    ("UNIX_SKIP_OOB", Sockets, Benign, "Out-of-band data skipped on a UNIX socket.", [], NO_FIX),
    ("PKT_TOO_SMALL", Ip, Error, "The packet is shorter than its headers say.", ["ip.input_errors"], "Find the sender of truncated packets (netsight capture)."),
    ("TCP_CSUM", Tcp, Error, "TCP checksum error: corruption on the path or a broken offload.", [], "Check NIC offloads (ethtool -k) and the link's error counters."),
    ("UDP_CSUM", Udp, Error, "UDP checksum error.", ["udp.checksum_errors"], "Check NIC offloads (ethtool -k) and the link's error counters."),
    ("NETFILTER_DROP", Filter, Policy, "A netfilter rule (iptables / nftables) dropped the packet.", ["filter.rule_drops", "conntrack.drops"], "Find the rule: nft list ruleset (or iptables-save -c); counters show which one matches."),
    ("OTHERHOST", Ip, Benign, "The packet was addressed to another host's MAC (promiscuous mode, bridges).", [], NO_FIX),
    ("IP_CSUM", Ip, Error, "IP header checksum error.", ["ip.input_errors"], "Check the path for corruption and the NIC's error counters."),
    ("IP_INHDR", Ip, Error, "Invalid IP header (version, length, options).", ["ip.input_errors"], "Find the sender (netsight capture)."),
    ("IP_RPFILTER", Filter, Policy, "Reverse-path filter: the source would not be routed back through this interface.", ["config.rp_filter_strict"], "With asymmetric routing set net.ipv4.conf.IFACE.rp_filter=2 (loose); otherwise fix the routes."),
    ("UNICAST_IN_L2_MULTICAST", Ip, Benign, "A unicast IP packet arrived in a link-layer multicast or broadcast frame.", [], NO_FIX),
    ("XFRM_POLICY", Filter, Policy, "An IPsec (XFRM) policy check failed.", [], "Check ip xfrm policy and the peers' SAs."),
    ("IP_NOPROTO", Ip, Error, "No handler for the IP protocol number.", [], "Find the sender; load the protocol's module if it is wanted."),
    ("PROTO_MEM", Sockets, Saturation, "The protocol's memory limit is reached (tcp_mem / udp_mem).", ["tcp.memory", "udp.receive_buffer_errors"], "Raise net.ipv4.tcp_mem / udp_mem, or find the sockets holding memory (netsight sockets --sort mem)."),
    ("TCP_AUTH_HDR", Tcp, Error, "TCP-AO or MD5 option malformed.", [], "Check the peers' TCP authentication configuration."),
    ("TCP_MD5NOTFOUND", Tcp, Error, "TCP MD5 signature expected but absent.", [], "Check both peers' TCP MD5 (BGP) keys."),
    ("TCP_MD5UNEXPECTED", Tcp, Error, "TCP MD5 signature present but not expected.", [], "Check both peers' TCP MD5 (BGP) keys."),
    ("TCP_MD5FAILURE", Tcp, Error, "TCP MD5 signature wrong.", [], "Check both peers' TCP MD5 (BGP) keys."),
    ("TCP_AONOTFOUND", Tcp, Error, "TCP-AO option expected but absent.", [], "Check both peers' TCP-AO keys."),
    ("TCP_AOUNEXPECTED", Tcp, Error, "TCP-AO option present but not expected.", [], "Check both peers' TCP-AO keys."),
    ("TCP_AOKEYNOTFOUND", Tcp, Error, "TCP-AO key not found.", [], "Check both peers' TCP-AO keys."),
    ("TCP_AOFAILURE", Tcp, Error, "TCP-AO signature wrong.", [], "Check both peers' TCP-AO keys."),
    ("SOCKET_BACKLOG", Sockets, Saturation, "The socket's backlog (packets arriving while the application holds the socket) was full.", ["tcp.receive_pruning"], "Raise the receive buffer; make the application hold the socket lock for shorter times."),
    ("TCP_FLAGS", Tcp, Error, "Invalid TCP flag combination.", [], "Find the sender (scanner or broken stack)."),
    ("TCP_ABORT_ON_DATA", Tcp, Benign, "Data arrived for a socket already closed by the application: the connection is reset.", [], NO_FIX),
    ("TCP_ZEROWINDOW", Tcp, Saturation, "Data arrived while this side advertised a zero window: the receiving application is not reading.", [], "Make the receiving application read faster; check its CPU."),
    ("TCP_OLD_DATA", Tcp, Benign, "Data already received (a retransmission of acknowledged data).", [], NO_FIX),
    ("TCP_OVERWINDOW", Tcp, Error, "Data beyond the advertised window.", [], "A misbehaving peer or middlebox; capture and check window scaling."),
    ("TCP_OFOMERGE", Tcp, Benign, "Out-of-order data merged with data already queued (the duplicate part is freed).", [], NO_FIX),
    ("TCP_RFC7323_PAWS", Tcp, Benign, "PAWS: a segment with an old timestamp (a delayed duplicate).", [], NO_FIX),
    ("TCP_RFC7323_PAWS_ACK", Tcp, Benign, "PAWS check failed on a pure ACK.", [], NO_FIX),
    ("TCP_RFC7323_TW_PAWS", Tcp, Benign, "PAWS check failed for a TIME-WAIT socket.", [], NO_FIX),
    ("TCP_RFC7323_TSECR", Tcp, Error, "The echoed timestamp is not one this side sent.", [], "A middlebox rewriting timestamps; capture both ends."),
    ("TCP_LISTEN_OVERFLOW", Tcp, Saturation, "A listener's accept queue (or SYN queue) was full.", ["tcp.listen_overflows", "tcp.listen_drops", "sockets.accept_queue_full"], "Make the application accept faster; raise its listen() backlog and net.core.somaxconn."),
    ("TCP_OLD_SEQUENCE", Tcp, Benign, "A segment entirely before the receive window (an old duplicate).", [], NO_FIX),
    ("TCP_INVALID_SEQUENCE", Tcp, Benign, "A segment not acceptable for the receive window (challenge ACK follows).", [], NO_FIX),
    ("TCP_INVALID_END_SEQUENCE", Tcp, Error, "A segment's end beyond the window.", [], "A misbehaving peer; capture the connection."),
    ("TCP_INVALID_ACK_SEQUENCE", Tcp, Benign, "An ACK for data never sent or too old.", [], NO_FIX),
    ("TCP_RESET", Tcp, Benign, "A valid RST ended the connection (its skb is freed as dropped).", [], NO_FIX),
    ("TCP_INVALID_SYN", Tcp, Benign, "A SYN in a synchronized state (challenge ACK follows).", [], NO_FIX),
    ("TCP_CLOSE", Tcp, Benign, "A segment for a socket in CLOSE.", [], NO_FIX),
    ("TCP_FASTOPEN", Tcp, Benign, "TCP Fast Open data not accepted (the SYN is processed normally).", [], NO_FIX),
    ("TCP_OLD_ACK", Tcp, Benign, "An ACK older than the last one (reordering).", [], NO_FIX),
    ("TCP_TOO_OLD_ACK", Tcp, Benign, "An ACK far too old.", [], NO_FIX),
    ("TCP_ACK_UNSENT_DATA", Tcp, Error, "An ACK for data not yet sent.", [], "A misbehaving peer or middlebox; capture the connection."),
    ("TCP_OFO_QUEUE_PRUNE", Tcp, Saturation, "The out-of-order queue was pruned for memory: received data thrown away.", ["tcp.receive_pruning"], "Raise tcp_rmem; look for loss or reordering on the path."),
    ("TCP_OFO_DROP", Tcp, Saturation, "Out-of-order data dropped (no room in the receive window or memory).", ["tcp.receive_pruning"], "Raise tcp_rmem; look for loss or reordering on the path."),
    ("IP_OUTNOROUTES", Ip, Loss, "No route to send the packet.", ["ip.no_route"], "Add the missing route (ip route get DEST shows the lookup)."),
    ("BPF_CGROUP_EGRESS", Filter, Policy, "A cgroup BPF egress program dropped the packet.", [], "List the programs: bpftool cgroup tree."),
    ("IPV6DISABLED", Ip, Benign, "IPv6 is disabled on the device.", [], NO_FIX),
    ("NEIGH_CREATEFAIL", Ip, Loss, "A neighbour (ARP/ND) entry could not be created: the table is full.", [], "Raise net.ipv4.neigh.default.gc_thresh3 (and the IPv6 one)."),
    ("NEIGH_FAILED", Ip, Loss, "Neighbour resolution failed: the next hop does not answer ARP/ND.", [], "Check the next hop is up and on the link (ip neigh show shows FAILED entries)."),
    ("NEIGH_QUEUEFULL", Ip, Saturation, "Packets waiting for neighbour resolution overflowed their queue.", [], "Check the next hop answers; raise neigh.*.unres_qlen_bytes for bursts."),
    ("NEIGH_DEAD", Ip, Loss, "The neighbour entry was dead (its device going away).", [], "Check interfaces going down or being deleted."),
    ("NEIGH_HH_FILLFAIL", Ip, Loss, "The hardware header could not be filled for the neighbour.", [], "Check the device's state."),
    ("TC_EGRESS", Filter, Policy, "A tc egress filter or action dropped the packet.", ["qdisc.drops"], "List the filters: tc filter show dev IFACE egress."),
    ("SECURITY_HOOK", Filter, Policy, "A security module (SELinux, AppArmor, Landlock) denied the packet.", [], "Check the LSM's audit log."),
    ("QDISC_DROP", Qdisc, Saturation, "The qdisc dropped the packet (its queue limit).", ["qdisc.drops"], "Raise the qdisc's limit or shape traffic (tc -s qdisc show)."),
    ("QDISC_OVERLIMIT", Qdisc, Saturation, "A qdisc's rate limit was exceeded.", ["qdisc.drops", "qdisc.overlimits"], "Raise the shaper's rate or burst (tc -s qdisc show)."),
    ("QDISC_CONGESTED", Qdisc, Saturation, "Dropped by the qdisc's congestion control (RED, CoDel).", ["qdisc.drops"], "Expected under overload; raise capacity or the qdisc's target."),
    ("CAKE_FLOOD", Qdisc, Saturation, "CAKE dropped packets of a flooding flow.", ["qdisc.drops"], "Find the flooding flow (netsight trace drops)."),
    ("FQ_BAND_LIMIT", Qdisc, Saturation, "fq's per-band packet limit was reached.", ["qdisc.drops"], "Raise fq's limit (tc qdisc change ... fq limit N)."),
    ("FQ_HORIZON_LIMIT", Qdisc, Saturation, "fq dropped a packet timestamped beyond its horizon.", ["qdisc.drops"], "Check the application's SO_TXTIME use, or raise fq's horizon."),
    ("FQ_FLOW_LIMIT", Qdisc, Saturation, "fq's per-flow limit was reached.", ["qdisc.drops"], "Raise fq's flow_limit."),
    ("CPU_BACKLOG", Softirq, Saturation, "The per-CPU input backlog was full (net.core.netdev_max_backlog).", ["softnet.dropped"], "Raise net.core.netdev_max_backlog; spread receive work (RPS, more queues)."),
    ("XDP", Filter, Policy, "An XDP program dropped the packet (XDP_DROP or an error).", [], "List the programs: ip link show (xdp) or bpftool net."),
    ("TC_INGRESS", Filter, Policy, "A tc ingress filter or action dropped the packet.", [], "List the filters: tc filter show dev IFACE ingress."),
    ("UNHANDLED_PROTO", Link, Benign, "No handler for the packet's protocol (an Ethertype nothing listens for).", [], NO_FIX),
    ("SKB_CSUM", Nic, Error, "Checksum computation failed on the sending side.", [], "Check the device's offloads (ethtool -k)."),
    ("SKB_GSO_SEG", Nic, Error, "GSO segmentation failed.", [], "Check the device's offloads (ethtool -k)."),
    ("SKB_UCOPY_FAULT", Sockets, Error, "Copying user data into the packet failed (a bad user buffer).", [], "An application bug: a bad buffer passed to send."),
    ("DEV_HDR", Nic, Error, "The device header is invalid.", [], "Check the sending application (raw or packet sockets)."),
    ("DEV_READY", Nic, Loss, "The device is not ready: down, no carrier, or detached.", ["nic.tx_drops", "nic.no_carrier"], "Bring the device up (ip link set IFACE up) and check its carrier."),
    ("FULL_RING", Nic, Saturation, "The device's ring was full.", ["nic.tx_drops", "nic.driver_drops"], "Grow the ring (ethtool -G) or spread the load over more queues."),
    ("NOMEM", Config, Saturation, "Memory allocation failed.", [], "Check the host's memory pressure (vmstat, /proc/meminfo)."),
    ("HDR_TRUNC", Ip, Error, "A header was truncated.", [], "Find the sender (netsight capture)."),
    ("TAP_FILTER", Filter, Policy, "A tun/tap socket filter rejected the packet.", [], "Check the tap's filter (TUNSETFILTEREBPF)."),
    ("TAP_TXFILTER", Filter, Policy, "The tap's transmit filter rejected the packet.", [], "Check the tap's filter."),
    ("ICMP_CSUM", Ip, Error, "ICMP checksum error.", [], "Check the path for corruption."),
    ("INVALID_PROTO", Ip, Error, "Invalid protocol in the packet's headers.", [], "Find the sender (netsight capture)."),
    ("IP_INADDRERRORS", Ip, Error, "Invalid destination address (not for this host and forwarding off, or martian).", ["ip.input_errors"], "Check the sender's routes, or enable forwarding if this host routes."),
    ("IP_INNOROUTES", Ip, Loss, "No route for an incoming packet to be forwarded.", ["ip.no_route"], "Add the missing route."),
    ("IP_LOCAL_SOURCE", Ip, Error, "The source address is one of this host's (a loop or a spoof).", [], "Look for a routing loop or spoofed traffic."),
    ("IP_INVALID_SOURCE", Ip, Error, "Invalid source address (martian).", [], "Find the sender; net.ipv4.conf.all.log_martians=1 logs them."),
    ("IP_LOCALNET", Ip, Error, "A 127/8 address arrived on a non-loopback device.", [], "Set route_localnet only if intended; find the sender."),
    ("IP_INVALID_DEST", Ip, Error, "Invalid destination address (multicast or broadcast where not allowed).", [], "Find the sender."),
    ("PKT_TOO_BIG", Ip, Loss, "Larger than the path MTU with DF set (ICMP fragmentation needed follows).", ["ip.fragmentation_failures"], "Lower the MTU or MSS (clamp MSS on tunnels); make sure ICMP type 3 code 4 gets through."),
    ("DUP_FRAG", Ip, Benign, "A duplicate IP fragment.", ["ip.reassembly_failures"], NO_FIX),
    ("FRAG_REASM_TIMEOUT", Ip, Loss, "A fragmented packet timed out before all fragments came.", ["ip.reassembly_failures"], "Find where fragments are lost; avoid fragmentation (lower the MTU or MSS)."),
    ("FRAG_TOO_FAR", Ip, Loss, "A fragment too far out of order (ipfrag_max_dist).", ["ip.reassembly_failures"], "Avoid fragmentation, or raise net.ipv4.ipfrag_max_dist."),
    ("TCP_MINTTL", Tcp, Policy, "Below the socket's minimum TTL (IP_MINTTL, GTSM).", [], "Check the peer's hop count against the socket's IP_MINTTL."),
    ("IPV6_BAD_EXTHDR", Ip, Error, "A bad IPv6 extension header.", [], "Find the sender."),
    ("IPV6_NDISC_FRAG", Ip, Error, "A fragmented neighbour discovery message.", [], "Find the sender."),
    ("IPV6_NDISC_HOP_LIMIT", Ip, Error, "A neighbour discovery message with a hop limit other than 255.", [], "Find the sender (spoofed ND)."),
    ("IPV6_NDISC_BAD_CODE", Ip, Error, "A neighbour discovery message with a bad code.", [], "Find the sender."),
    ("IPV6_NDISC_BAD_OPTIONS", Ip, Error, "A neighbour discovery message with bad options.", [], "Find the sender."),
    ("IPV6_NDISC_NS_OTHERHOST", Ip, Benign, "A neighbour solicitation for another host.", [], NO_FIX),
    ("QUEUE_PURGE", Sockets, Benign, "A queue purged as a whole (socket or device teardown).", [], NO_FIX),
    ("TC_COOKIE_ERROR", Filter, Error, "A tc filter's cookie was invalid.", [], "Check the tc filters."),
    ("PACKET_SOCK_ERROR", Sockets, Saturation, "A packet socket could not take the packet (its ring or buffer was full).", [], "The capturing application is too slow: a bigger ring, a tighter filter."),
    ("TC_CHAIN_NOTFOUND", Filter, Error, "A tc filter jumped to a chain that does not exist.", [], "Fix the tc filter's goto chain."),
    ("TC_RECLASSIFY_LOOP", Filter, Error, "tc reclassified the packet too often (a loop).", [], "Fix the tc filters' reclassify loop."),
    ("VXLAN_INVALID_HDR", Link, Error, "An invalid VXLAN header.", [], "Check the VXLAN peer's configuration."),
    ("VXLAN_VNI_NOT_FOUND", Link, Loss, "No VXLAN device for the packet's VNI.", [], "Create the VNI's device, or fix the peer's VNI."),
    ("MAC_INVALID_SOURCE", Link, Error, "The source MAC is invalid (multicast or zero).", [], "Find the sender."),
    ("VXLAN_ENTRY_EXISTS", Link, Error, "A VXLAN FDB entry already exists.", [], "Check the VXLAN FDB (bridge fdb show)."),
    ("NO_TX_TARGET", Link, Loss, "No target to transmit to (a tunnel or virtual device without a lower device).", [], "Check the virtual device's lower device or peer."),
    ("IP_TUNNEL_ECN", Link, Error, "Invalid ECN bits on a tunnelled packet.", [], "Check the tunnel peer."),
    ("TUNNEL_TXINFO", Link, Error, "Missing tunnel metadata for transmit.", [], "Check the tunnel's (collect_md) configuration."),
    ("LOCAL_MAC", Link, Benign, "A frame with this host's own source MAC came back (a loop, or a bridge's own frame).", [], "If frequent, look for a layer-2 loop."),
    ("ARP_PVLAN_DISABLE", Link, Policy, "ARP proxying for private VLANs is disabled.", [], NO_FIX),
    ("MAC_IEEE_MAC_CONTROL", Link, Benign, "An IEEE MAC control frame (pause frames): consumed, not forwarded.", [], NO_FIX),
    ("BRIDGE_INGRESS_STP_STATE", Link, Policy, "A bridge port in a blocking STP state dropped the frame.", [], "Check the bridge's STP state (bridge link show)."),
    ("CAN_RX_INVALID_FRAME", Link, Error, "An invalid CAN frame.", [], "Check the CAN bus."),
    ("CANFD_RX_INVALID_FRAME", Link, Error, "An invalid CAN FD frame.", [], "Check the CAN bus."),
    ("CANXL_RX_INVALID_FRAME", Link, Error, "An invalid CAN XL frame.", [], "Check the CAN bus."),
    ("PFMEMALLOC", Config, Saturation, "A packet allocated from emergency memory reached a socket not allowed to use it.", [], "The host is short of memory (vm.min_free_kbytes, memory pressure)."),
    ("DUALPI2_STEP_DROP", Qdisc, Saturation, "DualPI2's step AQM dropped the packet.", ["qdisc.drops"], "Expected under overload; raise capacity."),
    ("PSP_INPUT", Filter, Policy, "PSP (encryption) policy check failed on input.", [], "Check the PSP associations."),
    ("PSP_OUTPUT", Filter, Policy, "PSP policy check failed on output.", [], "Check the PSP associations."),
    ("RECURSION_LIMIT", Link, Loss, "Transmit recursion too deep (stacked devices looping).", [], "Look for a loop of stacked virtual devices or routes."),
    ("SKB_RX_HEADROOM", Nic, Error, "Not enough headroom in a received buffer.", [], "A driver or XDP program issue."),
];

pub fn find(name: &str) -> Option<&'static DropReason> {
    let name = name.trim_start_matches("SKB_DROP_REASON_");
    DROP_REASONS.iter().find(|r| r.name == name)
}

/// Per second at or above which a reason with no explaining finding is a warning
/// (a tenth of it is info); benign reasons never are. Policy drops are often
/// intended, so they need more before they warn.
fn warn_per_s(kind: SignalKind) -> Option<f64> {
    match kind {
        Saturation | Loss | Error => Some(1.0),
        Policy => Some(10.0),
        Benign => None,
    }
}

/// Fewer drops than this in an interval are noise, whatever the rate.
const MIN_COUNT: u64 = 10;

/// One namespace's drops of one reason, summed over dropping functions.
struct ReasonTotal<'a> {
    netns: u32,
    reason: &'a str,
    count: u64,
    /// Functions by count, most first.
    locations: Vec<(&'a str, u64)>,
}

fn totals(cells: &[DropCell]) -> Vec<ReasonTotal<'_>> {
    let mut out: Vec<ReasonTotal> = Vec::new();
    for c in cells {
        let function = c.location.split('+').next().unwrap_or(&c.location);
        let at = match out
            .iter()
            .position(|t| t.netns == c.netns && t.reason == c.reason)
        {
            Some(at) => at,
            None => {
                out.push(ReasonTotal {
                    netns: c.netns,
                    reason: &c.reason,
                    count: 0,
                    locations: Vec::new(),
                });
                out.len() - 1
            }
        };
        let t = &mut out[at];
        t.count += c.count;
        match t.locations.iter_mut().find(|(f, _)| *f == function) {
            Some((_, n)) => *n += c.count,
            None => t.locations.push((function, c.count)),
        }
    }
    for t in &mut out {
        t.locations.sort_by_key(|l| std::cmp::Reverse(l.1));
    }
    out.sort_by_key(|t| std::cmp::Reverse(t.count));
    out
}

/// The namespace as a subject: this one (`own_netns`), or another by inode.
fn netns_label(netns: u32, own_netns: Option<u32>) -> String {
    match netns {
        0 => "no namespace (skb without device or socket)".into(),
        n if Some(n) == own_netns => format!("this network namespace (net:[{n}])"),
        n => format!("network namespace net:[{n}]"),
    }
}

/// Attaches counted drops to the report: a reason explained by a finding becomes
/// that finding's evidence; a significant one that none explains becomes a finding
/// of its own (what, why, where, in which namespace, how to confirm and fix).
pub fn attach(report: &mut Report, drops: KernelDrops, own_netns: Option<u32>) {
    let seconds = drops.seconds.max(f64::EPSILON);
    let mut own = Vec::new();
    for t in totals(&drops.cells) {
        let rate = t.count as f64 / seconds;
        let info = find(t.reason);
        // The report's counters are its own namespace's: drops elsewhere on the host
        // explain none of its findings, they are findings of their own (named by namespace).
        let same_namespace = own_netns.is_none_or(|own| own == t.netns);
        let explaining: Vec<usize> = report
            .findings
            .iter()
            .enumerate()
            .filter(|_| same_namespace)
            .filter(|(_, f)| info.is_some_and(|i| i.rules.contains(&f.rule_id.as_str())))
            .map(|(i, _)| i)
            .collect();
        if !explaining.is_empty() {
            for i in explaining {
                report.findings[i].evidence.push(Evidence::new(
                    format!(
                        "kernel drop reason {} in {} (at {})",
                        t.reason,
                        netns_label(t.netns, own_netns),
                        t.locations[0].0
                    ),
                    rate,
                    "per_s",
                    None,
                ));
            }
            continue;
        }
        let kind = info.map_or(Loss, |i| i.kind);
        let Some(warn) = warn_per_s(kind) else {
            continue;
        };
        if t.count < MIN_COUNT || rate < warn / 10.0 {
            continue;
        }
        let severity = if rate >= warn * 100.0 && matches!(kind, Saturation | Loss) {
            Severity::Critical
        } else if rate >= warn {
            Severity::Warning
        } else {
            Severity::Info
        };
        own.push(reason_finding(
            &t, info, kind, severity, rate, warn, own_netns,
        ));
    }
    report.findings.extend(own);
    crate::causes::fold(&mut report.findings);
    report.findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.impact.total_cmp(&a.impact))
    });
    report.kernel_drops = Some(drops);
}

fn reason_finding(
    t: &ReasonTotal,
    info: Option<&DropReason>,
    kind: SignalKind,
    severity: Severity,
    rate: f64,
    warn: f64,
    own_netns: Option<u32>,
) -> Finding {
    let where_ = netns_label(t.netns, own_netns);
    let mut evidence = vec![Evidence::new(
        format!("kfree_skb drops with reason {}", t.reason),
        rate,
        "per_s",
        Some(warn),
    )];
    evidence.push(Evidence::new(
        format!("dropped {} times in {where_}", t.count),
        1.0,
        "text",
        None,
    ));
    for (function, n) in t.locations.iter().take(3) {
        evidence.push(Evidence::new(
            format!("dropped in {function}"),
            *n as f64,
            "count",
            None,
        ));
    }
    let meaning = info.map_or(
        "A drop reason this netsight does not know yet (a newer kernel).",
        |i| i.meaning,
    );
    Finding {
        rule_id: format!("drops.{}", t.reason.to_ascii_lowercase()),
        layer: info.map_or(Layer::Config, |i| i.layer),
        use_kind: match kind {
            Saturation => UseKind::Saturation,
            _ => UseKind::Errors,
        },
        severity,
        title: format!(
            "The kernel dropped packets: {} ({:.0}/s)",
            t.reason, rate
        ),
        subject: Some(where_),
        evidence,
        why: format!(
            "{meaning} No counter-based finding accounts for these drops; the kernel's own drop reason names them, at {}.",
            t.locations[0].0
        ),
        confirm: vec![
            format!("netsight trace drops --duration 10s   (reason {}, with addresses and ports)", t.reason),
            format!("netsight explain {}", t.reason),
        ],
        fix: vec![info.map_or("Read the kernel source at the dropping function.", |i| i.fix).to_string()],
        impact: rate / warn,
        symptoms: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(netns: u32, reason: &str, location: &str, count: u64) -> DropCell {
        DropCell {
            netns,
            reason: reason.into(),
            location: location.into(),
            count,
        }
    }

    fn empty_report() -> Report {
        Report::default()
    }

    #[test]
    fn every_rule_a_reason_names_exists() {
        let ids: Vec<&str> = crate::rules::all().iter().map(|r| r.id).collect();
        for r in DROP_REASONS {
            for rule in r.rules {
                assert!(ids.contains(rule), "{} names unknown rule {rule}", r.name);
            }
        }
    }

    #[test]
    fn names_are_unique() {
        for (i, r) in DROP_REASONS.iter().enumerate() {
            assert!(
                DROP_REASONS[i + 1..].iter().all(|o| o.name != r.name),
                "{} twice",
                r.name
            );
        }
    }

    #[test]
    fn unexplained_reasons_become_findings_at_their_edges() {
        // NEIGH_FAILED: loss; info from 0.1/s, warning from 1/s, critical from 100/s.
        let at = |count: u64| {
            let mut r = empty_report();
            let drops = KernelDrops {
                seconds: 100.0,
                lost: 0,
                cells: vec![cell(7, "NEIGH_FAILED", "neigh_invalidate+0x8a", count)],
            };
            attach(&mut r, drops, Some(7));
            r.findings.first().map(|f| f.severity)
        };
        assert_eq!(at(9), None, "under the noise floor");
        assert_eq!(at(10), Some(Severity::Info));
        assert_eq!(at(99), Some(Severity::Info));
        assert_eq!(at(100), Some(Severity::Warning));
        assert_eq!(at(9_999), Some(Severity::Warning));
        assert_eq!(at(10_000), Some(Severity::Critical));
    }

    #[test]
    fn benign_reasons_never_alarm_and_explained_ones_become_evidence() {
        let mut r = empty_report();
        r.findings.push(crate::rules::test_support::bare_finding(
            "udp.receive_buffer_errors",
            Layer::Udp,
            Severity::Warning,
        ));
        let drops = KernelDrops {
            seconds: 1.0,
            lost: 0,
            cells: vec![
                cell(7, "TCP_OFOMERGE", "tcp_data_queue+0x1", 100_000),
                cell(7, "SOCKET_RCVBUFF", "__udp_enqueue_schedule_skb+0x2", 500),
                cell(7, "SOCKET_RCVBUFF", "udp_queue_rcv_one_skb+0x3", 100),
                cell(9, "NETFILTER_DROP", "nf_hook_slow+0x4", 50),
            ],
        };
        attach(&mut r, drops, Some(7));
        let ids: Vec<&str> = r.findings.iter().map(|f| f.rule_id.as_str()).collect();
        assert_eq!(ids, ["drops.netfilter_drop", "udp.receive_buffer_errors"]);
        // Another namespace's SOCKET_RCVBUFF does not explain this namespace's counter.
        let mut other = empty_report();
        other.findings.push(r.findings[1].clone());
        other.findings[0].evidence.clear();
        let drops = KernelDrops {
            seconds: 1.0,
            lost: 0,
            cells: vec![cell(
                9,
                "SOCKET_RCVBUFF",
                "__udp_enqueue_schedule_skb+0x2",
                500,
            )],
        };
        attach(&mut other, drops, Some(7));
        assert!(other
            .findings
            .iter()
            .any(|f| f.rule_id == "drops.socket_rcvbuff"
                && f.subject.as_deref() == Some("network namespace net:[9]")));
        let udp = other
            .findings
            .iter()
            .find(|f| f.rule_id == "udp.receive_buffer_errors")
            .unwrap();
        assert!(udp.evidence.is_empty(), "{:?}", udp.evidence);
        let nf = &r.findings[0];
        assert_eq!(nf.severity, Severity::Warning);
        assert_eq!(nf.subject.as_deref(), Some("network namespace net:[9]"));
        assert!(nf
            .evidence
            .iter()
            .any(|e| e.metric == "dropped in nf_hook_slow"));
        let udp = &r.findings[1];
        assert!(udp.evidence[0].metric.contains("SOCKET_RCVBUFF"));
        assert!(udp.evidence[0]
            .metric
            .contains("__udp_enqueue_schedule_skb"));
        assert_eq!(udp.evidence[0].value, 600.0);
    }
}
