// SPDX-License-Identifier: GPL-2.0
// `netsight trace states` and `trace life`: every TCP state change
// (tracepoint sock:inet_sock_set_state as tp_btf) with the time spent in the
// previous state, the byte counters at that moment, and the task that caused it.
// Built by scripts/build-bpf; the object is committed.

#include "common.h"

// When each socket entered its current state.
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1 << 16);
    __type(key, __u64);
    __type(value, __u64);
} since SEC(".maps");

// Read by crates/netsight-trace/src/sockstate.rs: keep the layout in sync.
struct state_event {
    __u64 sk;            // the socket's kernel address: an id for one connection
    __u64 ts_ns;
    __u64 in_prev_ns;    // time in the old state; 0 when not seen entering it
    __u64 bytes_acked;
    __u64 bytes_received;
    __u32 pid;
    __u8 family;
    __u8 oldstate;
    __u8 newstate;
    __u8 pad;
    __u16 sport;         // host order
    __u16 dport;         // host order
    __u8 saddr[16];
    __u8 daddr[16];
    char comm[16];
    __u32 netns;         // inode of the socket's network namespace
};

// Set at load time by `trace life`: emit only births, ESTABLISHED (the first
// complete 4-tuple) and CLOSE, and skip the per-socket timing map. Halves the
// per-event work on connection churn.
volatile const __u8 life_only = 0;

SEC("tp_btf/inet_sock_set_state")
int inet_sock_set_state(__u64 *ctx)
{
    const struct sock *sk = (const struct sock *)ctx[0];
    int oldstate = (int)ctx[1];
    int newstate = (int)ctx[2];
    if (sk->sk_protocol != IPPROTO_TCP)
        return 0;
    __u32 netns = sk_netns(sk);
    if (!netns_wanted(netns))
        return 0;
    __u64 key = (__u64)sk;
    __u64 now = bpf_ktime_get_ns();
    __u64 in_prev = 0;
    if (life_only) {
        if (newstate != TCP_SYN_SENT && newstate != TCP_SYN_RECV && newstate != TCP_ESTABLISHED &&
            newstate != TCP_CLOSE)
            return 0;
    } else {
        __u64 *entered = bpf_map_lookup_elem(&since, &key);
        in_prev = entered ? now - *entered : 0;
        if (newstate == TCP_CLOSE)
            bpf_map_delete_elem(&since, &key);
        else
            bpf_map_update_elem(&since, &key, &now, 0 /* BPF_ANY */);
    }

    struct state_event *e = reserve_event(sizeof(*e));
    if (!e)
        return 0;
    __builtin_memset(e, 0, sizeof(*e));
    e->sk = key;
    e->netns = netns;
    e->ts_ns = now;
    e->in_prev_ns = in_prev;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    e->family = sk->__sk_common.skc_family;
    e->oldstate = oldstate;
    e->newstate = newstate;
    // inet_sport, as the tracepoint itself reports: skc_num is already 0 once a
    // closing socket has left the hash tables.
    const struct inet_sock *inet = (const struct inet_sock *)sk;
    __u16 sport_be = 0;
    bpf_probe_read_kernel(&sport_be, sizeof(sport_be), &inet->inet_sport);
    e->sport = __builtin_bswap16(sport_be);
    e->dport = __builtin_bswap16(sk->__sk_common.skc_dport);
    if (e->family == 2) {
        __builtin_memcpy(e->saddr, &sk->__sk_common.skc_rcv_saddr, 4);
        __builtin_memcpy(e->daddr, &sk->__sk_common.skc_daddr, 4);
    } else {
        __builtin_memcpy(e->saddr, &sk->__sk_common.skc_v6_rcv_saddr, 16);
        __builtin_memcpy(e->daddr, &sk->__sk_common.skc_v6_daddr, 16);
    }
    const struct tcp_sock *tp = (const struct tcp_sock *)sk;
    bpf_probe_read_kernel(&e->bytes_acked, sizeof(e->bytes_acked), &tp->bytes_acked);
    bpf_probe_read_kernel(&e->bytes_received, sizeof(e->bytes_received), &tp->bytes_received);
    bpf_ringbuf_submit(e, 0);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
