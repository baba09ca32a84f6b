// SPDX-License-Identifier: GPL-2.0
// The lab's XDP fault: drops every IPv4 UDP packet to port 9000 (the lab's UDP
// service) before the stack sees it; everything else passes. Attached in native
// mode to the server's veth by the `server-xdp-drop` scenario. Built by
// scripts/build-bpf; the object is committed and embedded in netsight-lab.

#include "../../netsight-kernel/bpf/vmlinux.h"

#define SEC(name) __attribute__((section(name), used))

#define ETH_P_IP 0x0800
#define IPPROTO_UDP_NUM 17
#define LAB_UDP_PORT 9000

SEC("xdp")
int xdp_drop_udp(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end || eth->h_proto != __builtin_bswap16(ETH_P_IP))
        return XDP_PASS;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP_NUM)
        return XDP_PASS;
    struct udphdr *udp = (void *)ip + ip->ihl * 4;
    if ((void *)(udp + 1) > data_end)
        return XDP_PASS;
    return udp->dest == __builtin_bswap16(LAB_UDP_PORT) ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
