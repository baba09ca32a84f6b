//! IP: fragmentation, reassembly, discards, routing; PMTU hints.

use super::{counter_must_not_rise, grade, Context, Hit, Rule};
use netsight_report::{Evidence, Layer, Severity, UseKind};

pub static RULES: &[Rule] = &[
    Rule {
        id: "ip.reassembly_failures",
        layer: Layer::Ip,
        kind: UseKind::Errors,
        title: "IP fragments could not be reassembled",
        thresholds: "any Ip.ReasmFails increase warns; >= 10/s critical",
        why: "Fragments are held until the whole datagram arrives; if one is lost, or the reassembly memory (net.ipv4.ipfrag_high_thresh) fills, or the timer (ipfrag_time) expires, the whole datagram is discarded. Large UDP datagrams (DNS, NFS, VXLAN without MTU care) suffer most.",
        confirm: &["nstat -az IpReasmFails IpReasmTimeout IpReasmReqds", "netsight stat IP EIP 1 10"],
        fix: &["Avoid fragmentation: lower the sender's datagram size or raise the path MTU", "If memory is the cause: sysctl -w net.ipv4.ipfrag_high_thresh=8388608"],
        reads: &["Ip.ReasmFails", "Ip.ReasmTimeout", "net.ipv4.ipfrag_high_thresh", "net.ipv4.ipfrag_time"],
        check: |ctx| counter_must_not_rise(ctx, "Ip", "ReasmFails", Some(10.0)),
    },
    Rule {
        id: "ip.fragmentation_failures",
        layer: Layer::Ip,
        kind: UseKind::Errors,
        title: "Packets needed fragmenting but could not be (PMTU)",
        thresholds: "any Ip.FragFails increase warns; >= 10/s critical",
        why: "FragFails counts datagrams too big for the outgoing MTU that had Don't-Fragment set: the kernel drops them and sends ICMP fragmentation-needed. If that ICMP is filtered on the way back, the sender never learns the path MTU and large transfers stall (a PMTU black hole).",
        confirm: &["nstat -az IpFragFails IcmpOutDestUnreachs", "ip route get DEST   (mtu)", "tracepath DEST"],
        fix: &["Allow ICMP type 3 code 4 (and ICMPv6 packet-too-big) through firewalls", "Enable TCP MTU probing: sysctl -w net.ipv4.tcp_mtu_probing=1", "Clamp MSS on the router: iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu"],
        reads: &["Ip.FragFails", "Icmp.OutDestUnreachs", "net.ipv4.tcp_mtu_probing"],
        check: |ctx| counter_must_not_rise(ctx, "Ip", "FragFails", Some(10.0)),
    },
    Rule {
        id: "ip.input_errors",
        layer: Layer::Ip,
        kind: UseKind::Errors,
        title: "IP input discards and header/address errors",
        thresholds: "(InHdrErrors + InAddrErrors + InDiscards + InCsumErrors) >= 0.5 % of InReceives and >= 1/s warns; >= 5 % critical",
        why: "Datagrams rejected at IP input: bad headers or checksums (corruption), addresses not for this host (InAddrErrors, common with forwarding off), or discarded for lack of resources. Each is silent loss above the NIC.",
        confirm: &["nstat -az IpInHdrErrors IpInAddrErrors IpInDiscards IpExtInCsumErrors"],
        fix: &["InAddrErrors: check routing/forwarding (net.ipv4.ip_forward) and stray traffic", "InHdrErrors/InCsumErrors: look for corruption below (nic.* findings, offload bugs: ethtool -K IFACE rx off to test)"],
        reads: &["Ip.InHdrErrors", "Ip.InAddrErrors", "Ip.InDiscards", "IpExt.InCsumErrors", "Ip.InReceives"],
        check: input_errors,
    },
    Rule {
        id: "ip.no_route",
        layer: Layer::Ip,
        kind: UseKind::Errors,
        title: "Outgoing packets with no route",
        thresholds: "any Ip.OutNoRoutes increase warns",
        why: "The host tried to send to a destination it has no route for; the packet is dropped and the application gets EHOSTUNREACH/ENETUNREACH. Usually a missing default route or a policy-routing gap.",
        confirm: &["nstat -az IpOutNoRoutes", "ip route get DEST", "ip rule"],
        fix: &["Add the missing route (ip route add ...) or fix the policy rule"],
        reads: &["Ip.OutNoRoutes"],
        check: |ctx| counter_must_not_rise(ctx, "Ip", "OutNoRoutes", None),
    },
    Rule {
        id: "ip.icmp_unreachable",
        layer: Layer::Ip,
        kind: UseKind::Errors,
        title: "Many ICMP destination-unreachable messages",
        thresholds: ">= 10 ICMP dest-unreachable/s (in + out) is info; >= 100/s warns",
        why: "Destination-unreachable messages say a port is closed (port unreachable, REJECT rules), a host or network is unreachable, or fragmentation is needed (PMTU). Many outgoing ones often mean scans or clients hitting closed UDP ports; incoming ones mean our traffic is rejected.",
        confirm: &["nstat -az IcmpInDestUnreachs IcmpOutDestUnreachs UdpNoPorts", "tcpdump -ni any icmp"],
        fix: &["Find who talks to closed ports (UdpNoPorts, TCP RSTs) and fix the client or open the service", "If it is fragmentation-needed, see ip.fragmentation_failures"],
        reads: &["Icmp.InDestUnreachs", "Icmp.OutDestUnreachs"],
        check: icmp_unreachable,
    },
];

fn input_errors(ctx: &Context) -> Vec<Hit> {
    let bad = ctx.rate("Ip", "InHdrErrors")
        + ctx.rate("Ip", "InAddrErrors")
        + ctx.rate("Ip", "InDiscards")
        + ctx.rate("IpExt", "InCsumErrors");
    if bad < 1.0 {
        return Vec::new();
    }
    let percent = bad * 100.0 / ctx.rate("Ip", "InReceives").max(bad);
    let Some(severity) = grade(percent, 0.5, Some(5.0)) else {
        return Vec::new();
    };
    let ev = |name: &str, group: &str| {
        Evidence::new(
            format!("{group}.{name}"),
            ctx.rate(group, name),
            "per_s",
            None,
        )
    };
    vec![Hit::new(
        severity,
        vec![
            Evidence::new("IP input errors", percent, "percent", Some(0.5)),
            ev("InHdrErrors", "Ip"),
            ev("InAddrErrors", "Ip"),
            ev("InDiscards", "Ip"),
            ev("InCsumErrors", "IpExt"),
        ],
        percent / 0.5,
    )]
}

fn icmp_unreachable(ctx: &Context) -> Vec<Hit> {
    let (inr, outr) = (
        ctx.rate("Icmp", "InDestUnreachs"),
        ctx.rate("Icmp", "OutDestUnreachs"),
    );
    let total = inr + outr;
    let severity = if total >= 100.0 {
        Severity::Warning
    } else if total >= 10.0 {
        Severity::Info
    } else {
        return Vec::new();
    };
    vec![Hit::new(
        severity,
        vec![
            Evidence::new("Icmp.InDestUnreachs", inr, "per_s", Some(10.0)),
            Evidence::new("Icmp.OutDestUnreachs", outr, "per_s", Some(10.0)),
        ],
        total / 10.0,
    )]
}
