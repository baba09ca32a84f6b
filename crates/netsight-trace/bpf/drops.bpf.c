// SPDX-License-Identifier: GPL-2.0
// Every skb freed as dropped (tracepoint skb:kfree_skb, attached as tp_btf so no
// tracefs is needed). Two programs, one attached at a time:
// - kfree_skb (`netsight trace drops`): one event per drop through the ring buffer,
//   with its reason, protocol, addresses and the kernel address that dropped it;
// - kfree_skb_count (doctor): counts per (namespace, reason, dropping function) in
//   a hash map, read once at the end; no per-packet event crosses to user space.
// Built by scripts/build-bpf; the object is committed.

#include "common.h"

// Read by crates/netsight-trace/src/drops.rs: keep the layout in sync.
struct drop_event {
    __u64 location;
    __u32 reason;
    __u16 protocol; // skb->protocol, network byte order (ETH_P_*)
    __u8 ip_proto;  // IPPROTO_* when the network header was parsed
    __u8 family;    // 2 or 10 when addresses were read, else 0
    __u16 sport;    // host order, 0 when no transport header yet
    __u16 dport;
    __u8 saddr[16];
    __u8 daddr[16];
    __u32 netns;    // inode of the network namespace: the device's, else the socket's
};

#define ETH_P_IP_BE 0x0008   // htons(0x0800)
#define ETH_P_IPV6_BE 0xdd86 // htons(0x86dd)

// Read by crates/netsight-trace/src/drops.rs (count): keep the layout in sync.
struct drop_key {
    __u32 netns;
    __u32 reason;
    __u64 location;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1 << 14);
    __type(key, struct drop_key);
    __type(value, __u64);
} drop_counts SEC(".maps");

// The drop's reason, or 0 for a normal free (SKB_CONSUMED and below).
static inline __attribute__((always_inline)) __u32 drop_reason(__u64 *ctx)
{
    // The reason argument arrived in 5.17; without it every drop is "not specified".
    __u32 reason = SKB_DROP_REASON_NOT_SPECIFIED;
    if (field_exists(((struct trace_event_raw_kfree_skb *)0)->reason))
        reason = (__u32)ctx[2];
    // SKB_CONSUMED marks a normal free that happens to use this tracepoint.
    return reason <= SKB_CONSUMED ? 0 : reason;
}

// The namespace a dropped skb belongs to: its device's, else its socket's.
static inline __attribute__((always_inline)) __u32 skb_netns(struct sk_buff *skb)
{
    struct net_device *dev = skb->dev;
    const struct sock *owner = skb->sk; // read once: the verifier tracks its null check
    if (dev)
        return dev->nd_net.net->ns.inum;
    if (owner)
        return sk_netns(owner);
    return 0;
}

// A drop (not a normal free) in a namespace we watch: its reason and namespace.
static inline __attribute__((always_inline)) int wanted_drop(__u64 *ctx, __u32 *reason, __u32 *netns)
{
    *reason = drop_reason(ctx);
    if (!*reason)
        return 0;
    *netns = skb_netns((struct sk_buff *)ctx[0]);
    return netns_wanted(*netns);
}

SEC("tp_btf/kfree_skb")
int kfree_skb_count(__u64 *ctx)
{
    __u32 reason, netns;
    if (!wanted_drop(ctx, &reason, &netns))
        return 0;
    struct drop_key key = {.netns = netns, .reason = reason, .location = ctx[1]};
    count_key(&drop_counts, &key);
    return 0;
}

SEC("tp_btf/kfree_skb")
int kfree_skb(__u64 *ctx)
{
    struct sk_buff *skb = (struct sk_buff *)ctx[0];
    __u32 reason, netns;
    if (!wanted_drop(ctx, &reason, &netns))
        return 0;
    struct drop_event *e = reserve_event(sizeof(*e));
    if (!e)
        return 0;
    __builtin_memset(e, 0, sizeof(*e));
    e->netns = netns;
    e->location = ctx[1];
    e->reason = reason;
    e->protocol = skb->protocol;
    // Addresses and ports from the packet itself, when its headers are set.
    unsigned char *head = skb->head;
    __u16 nh = skb->network_header, th = skb->transport_header;
    if (nh != (__u16)~0U && e->protocol == ETH_P_IP_BE) {
        struct iphdr ip;
        if (!bpf_probe_read_kernel(&ip, sizeof(ip), head + nh)) {
            e->family = 2;
            e->ip_proto = ip.protocol;
            __builtin_memcpy(e->saddr, &ip.saddr, 4);
            __builtin_memcpy(e->daddr, &ip.daddr, 4);
        }
    } else if (nh != (__u16)~0U && e->protocol == ETH_P_IPV6_BE) {
        struct ipv6hdr ip6;
        if (!bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh)) {
            e->family = 10;
            e->ip_proto = ip6.nexthdr;
            __builtin_memcpy(e->saddr, &ip6.saddr, 16);
            __builtin_memcpy(e->daddr, &ip6.daddr, 16);
        }
    }
    if (e->family && th != (__u16)~0U && th > nh && (e->ip_proto == IPPROTO_TCP || e->ip_proto == IPPROTO_UDP)) {
        __u16 ports[2];
        if (!bpf_probe_read_kernel(ports, sizeof(ports), head + th)) {
            e->sport = __builtin_bswap16(ports[0]);
            e->dport = __builtin_bswap16(ports[1]);
        }
    }
    bpf_ringbuf_submit(e, 0);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
