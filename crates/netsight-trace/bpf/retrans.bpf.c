// SPDX-License-Identifier: GPL-2.0
// `netsight trace retrans`: every TCP retransmission (tracepoint
// tcp:tcp_retransmit_skb as tp_btf) with the connection, its state, the
// congestion-avoidance state (loss = after an RTO, recovery = fast retransmit),
// cwnd and smoothed RTT at that moment, through a ring buffer.
// Built by scripts/build-bpf; the object is committed.

#include "common.h"

// Read by crates/netsight-trace/src/retrans.rs: keep the layout in sync.
struct retrans_event {
    __u8 family;
    __u8 state;
    __u8 ca_state;
    __u8 synack;   // 1: a SYN-ACK retransmitted for a request socket
    __s32 err;
    __u16 sport; // host order
    __u16 dport; // host order
    __u32 snd_cwnd;
    __u32 srtt_us;
    __u8 saddr[16];
    __u8 daddr[16];
    __u32 segs; // segments in the retransmitted skb (TcpRetransSegs counts these)
    __u32 netns; // inode of the socket's network namespace
};

// The 4-tuple of a socket or of a request socket: both begin with a sock_common.
static inline __attribute__((always_inline)) void fill_tuple(struct retrans_event *e,
                                                            const struct sock_common *c)
{
    e->family = c->skc_family;
    e->sport = c->skc_num;
    e->dport = __builtin_bswap16(c->skc_dport);
    if (e->family == 2) {
        __builtin_memcpy(e->saddr, &c->skc_rcv_saddr, 4);
        __builtin_memcpy(e->daddr, &c->skc_daddr, 4);
    } else {
        __builtin_memcpy(e->saddr, &c->skc_v6_rcv_saddr, 16);
        __builtin_memcpy(e->daddr, &c->skc_v6_daddr, 16);
    }
}

SEC("tp_btf/tcp_retransmit_skb")
int tcp_retransmit_skb(__u64 *ctx)
{
    const struct sock *sk = (const struct sock *)ctx[0];
    const struct sk_buff *skb = (const struct sk_buff *)ctx[1];
    // The err argument arrived in 6.x (its record type appeared with it); before,
    // the tracepoint fired only for retransmits that were sent.
    int err = 0;
    if (field_exists(((struct trace_event_raw_tcp_retransmit_skb *)0)->err))
        err = (int)ctx[2];
    __u32 netns = sk_netns(sk);
    if (!netns_wanted(netns))
        return 0;
    struct retrans_event *e = reserve_event(sizeof(*e));
    if (!e)
        return 0;
    __builtin_memset(e, 0, sizeof(*e));
    e->netns = netns;
    fill_tuple(e, &sk->__sk_common);
    e->state = sk->__sk_common.skc_state;
    e->err = err;
    // tcp_sock fields lie beyond struct sock: read them (CO-RE relocated) by address.
    const struct tcp_sock *tp = (const struct tcp_sock *)sk;
    bpf_probe_read_kernel(&e->snd_cwnd, sizeof(e->snd_cwnd), &tp->snd_cwnd);
    __u32 srtt8 = 0;
    bpf_probe_read_kernel(&srtt8, sizeof(srtt8), &tp->srtt_us);
    e->srtt_us = srtt8 >> 3;
    // icsk_ca_state is a 5-bit bitfield: read its byte, keep the low bits.
    const struct inet_connection_sock *icsk = (const struct inet_connection_sock *)sk;
    __u32 off = __builtin_preserve_field_info(icsk->icsk_ca_state, 0 /* BPF_FIELD_BYTE_OFFSET */);
    __u8 byte = 0;
    bpf_probe_read_kernel(&byte, 1, (const char *)icsk + off);
    e->ca_state = byte & 0x1f;
    // tcp_skb_pcount(): TCP_SKB_CB(skb)->tcp_gso_segs, what TcpRetransSegs adds. Not
    // skb_shinfo()->gso_segs: that is set on transmit and stale when the transmit failed.
    const struct tcp_skb_cb *tcb = (const struct tcp_skb_cb *)&skb->cb[0];
    __u16 pcount = 0;
    bpf_probe_read_kernel(&pcount, sizeof(pcount), &tcb->tcp_gso_segs);
    e->segs = pcount ? pcount : 1;
    bpf_ringbuf_submit(e, 0);
    return 0;
}

// tcp:tcp_retransmit_synack: a listener re-sending the SYN-ACK of a request
// socket. TcpRetransSegs counts these too (tcp_rtx_synack), one segment each.
SEC("tp_btf/tcp_retransmit_synack")
int tcp_retransmit_synack(__u64 *ctx)
{
    const struct sock *sk = (const struct sock *)ctx[0];
    const struct request_sock *req = (const struct request_sock *)ctx[1];
    __u32 netns = sk_netns(sk);
    if (!netns_wanted(netns))
        return 0;
    struct retrans_event *e = reserve_event(sizeof(*e));
    if (!e)
        return 0;
    __builtin_memset(e, 0, sizeof(*e));
    e->netns = netns;
    e->synack = 1;
    fill_tuple(e, &req->__req_common);
    e->state = TCP_SYN_RECV;
    e->segs = 1;
    bpf_ringbuf_submit(e, 0);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
