// SPDX-License-Identifier: GPL-2.0
// `netsight trace drops`: every skb freed as dropped (tracepoint skb:kfree_skb,
// attached as tp_btf so no tracefs is needed), with its drop reason, protocol and
// the kernel address that dropped it, sent to user space through a ring buffer.
// Built by scripts/build-bpf; the object is committed.

#include "common.h"

// Read by crates/netsight-trace/src/drops.rs: keep the layout in sync.
struct drop_event {
    __u64 location;
    __u32 reason;
    __u16 protocol; // skb->protocol, network byte order (ETH_P_*)
    __u16 pad;
};

SEC("tp_btf/kfree_skb")
int kfree_skb(__u64 *ctx)
{
    struct sk_buff *skb = (struct sk_buff *)ctx[0];
    __u32 reason = (__u32)ctx[2];
    // SKB_CONSUMED marks a normal free that happens to use this tracepoint.
    if (reason <= SKB_CONSUMED)
        return 0;
    struct drop_event *e = reserve_event(sizeof(*e));
    if (!e)
        return 0;
    e->location = ctx[1];
    e->reason = reason;
    e->protocol = skb->protocol;
    e->pad = 0;
    bpf_ringbuf_submit(e, 0);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
