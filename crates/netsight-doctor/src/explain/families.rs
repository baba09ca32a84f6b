//! Counters explained by family: ICMP message kinds and types, IPv6 and UDP-Lite
//! counterparts of IPv4/UDP counters, and MPTCP groups.

/// ICMP (v4 and v6) message kinds after the In/Out prefix.
pub const ICMP_KINDS: &[(&str, &str)] = &[
    ("Msgs", "ICMP messages, all types"),
    ("Errors", "ICMP messages with errors (bad length, rate-limited on send, no memory)"),
    ("CsumErrors", "ICMP messages with a bad checksum"),
    ("DestUnreachs", "destination-unreachable messages (port/host/net unreachable, fragmentation needed)"),
    ("TimeExcds", "time-exceeded messages (TTL expired in transit: traceroute, routing loops; or reassembly timeout)"),
    ("ParmProbs", "parameter-problem messages (bad header fields)"),
    ("ParmProblems", "parameter-problem messages (bad header fields)"),
    ("SrcQuenchs", "source-quench messages (obsolete)"),
    ("Redirects", "redirect messages (a better next hop exists)"),
    ("Echos", "echo requests (ping)"),
    ("EchoReps", "echo replies"),
    ("EchoReplies", "echo replies"),
    ("Timestamps", "timestamp requests"),
    ("TimestampReps", "timestamp replies"),
    ("AddrMasks", "address-mask requests"),
    ("AddrMaskReps", "address-mask replies"),
    ("RateLimitGlobal", "ICMP messages suppressed by the global ICMP rate limit (net.ipv4.icmp_msgs_per_sec)"),
    ("RateLimitHost", "ICMP messages suppressed by the per-destination rate limit (icmp_ratelimit)"),
    ("PktTooBigs", "packet-too-big messages (IPv6 path MTU discovery)"),
    ("RouterSolicits", "router solicitations (NDP)"),
    ("RouterAdvertisements", "router advertisements (NDP)"),
    ("NeighborSolicits", "neighbour solicitations (NDP address resolution)"),
    ("NeighborAdvertisements", "neighbour advertisements (NDP)"),
    ("GroupMembQueries", "multicast listener queries (MLD)"),
    ("GroupMembResponses", "multicast listener reports (MLDv1)"),
    ("GroupMembReductions", "multicast listener done messages (MLD)"),
    ("MLDv2Reports", "MLDv2 listener reports"),
];

/// ICMPv4 type numbers (IcmpMsg InTypeN/OutTypeN).
pub const ICMP_TYPES: &[(u32, &str)] = &[
    (0, "echo reply"),
    (
        3,
        "destination unreachable (port/host/net unreachable, fragmentation needed)",
    ),
    (4, "source quench"),
    (5, "redirect"),
    (8, "echo request"),
    (9, "router advertisement"),
    (10, "router solicitation"),
    (11, "time exceeded"),
    (12, "parameter problem"),
    (13, "timestamp request"),
    (14, "timestamp reply"),
];

/// ICMPv6 type numbers (Icmp6 InTypeN/OutTypeN).
pub const ICMP6_TYPES: &[(u32, &str)] = &[
    (1, "destination unreachable"),
    (2, "packet too big (path MTU)"),
    (3, "time exceeded"),
    (4, "parameter problem"),
    (128, "echo request"),
    (129, "echo reply"),
    (130, "multicast listener query"),
    (131, "multicast listener report"),
    (132, "multicast listener done"),
    (133, "router solicitation"),
    (134, "router advertisement"),
    (135, "neighbour solicitation"),
    (136, "neighbour advertisement"),
    (137, "redirect"),
    (143, "MLDv2 listener report"),
];

/// IPv6 counters with no IPv4 twin of the same name.
pub const IP6_OWN: &[(&str, &str, &str)] = &[
    ("InTooBigErrors", "IPv6 packets that could not be forwarded because they exceeded the outgoing MTU (IPv6 routers never fragment).", "Path MTU problems for forwarded traffic."),
    ("OutForwDatagrams", "IPv6 packets forwarded.", "More routed IPv6 traffic."),
];

/// MPTCP counter families by name prefix (net/mptcp/mib.c).
pub const MPTCP_FAMILIES: &[(&str, &str)] = &[
    ("MPCapable", "the MP_CAPABLE handshake that turns a TCP connection into an MPTCP connection (SYN/SYN-ACK/ACK sent, received, dropped, or fallen back to plain TCP)"),
    ("MPJoin", "MP_JOIN handshakes that add subflows to an MPTCP connection (SYN/ACK sent and received, HMAC failures, rejections, bind/connect errors)"),
    ("MPFallback", "MPTCP connections that fell back to plain TCP"),
    ("MPCurrEstab", "MPTCP connections now established (a gauge)"),
    ("MPFail", "MP_FAIL options: data checksum failures on a subflow"),
    ("MPFastclose", "MP_FASTCLOSE options: abortive close of an MPTCP connection"),
    ("MPRst", "MP_RST options resetting a subflow"),
    ("MPPrio", "MP_PRIO options changing a subflow's backup priority"),
    ("MPTCPRetrans", "data retransmitted at the MPTCP level (across subflows)"),
    ("AddAddr", "ADD_ADDR options advertising an additional address"),
    ("EchoAdd", "echoed ADD_ADDR options (acknowledging an advertised address)"),
    ("RmAddr", "REMOVE_ADDR options withdrawing an address"),
    ("RmSubflow", "subflows removed"),
    ("PortAdd", "ADD_ADDR options carrying a port"),
    ("MismatchPort", "MP_JOIN attempts on a port that did not match the advertised one"),
    ("DSS", "Data Sequence Signal mapping problems (corruption, mismatches, no matching TCP data)"),
    ("Dss", "Data Sequence Signal fallbacks"),
    ("NoDSSInWindow", "data mappings outside the receive window"),
    ("DataCsumErr", "MPTCP data checksum errors"),
    ("DuplicateData", "duplicate data received at the MPTCP level"),
    ("OFO", "out-of-order data queued or merged at the MPTCP level"),
    ("InfiniteMap", "infinite mappings (fallback during the connection)"),
    ("RcvWnd", "receive-window conflicts and sharing between subflows"),
    ("SndWnd", "send-window sharing between subflows"),
    ("Subflow", "subflows marked stale or recovered by the path manager"),
    ("SimultConnect", "simultaneous connects that fell back to TCP"),
    ("FallbackFailed", "fallbacks to TCP that could not be done"),
    ("Blackhole", "MPTCP black holes detected (middleboxes dropping MPTCP options)"),
    ("MD5Sig", "connections that fell back because TCP-MD5 is in use"),
    ("WinProbe", "MPTCP-level zero-window probes"),
];
