// SPDX-License-Identifier: GPL-2.0
// `netsight trace rtt`: a log2 histogram of smoothed RTT per peer, built in the
// kernel from tcp:tcp_probe (as tp_btf; it fires for incoming segments on
// established connections), so no per-packet event crosses to user space.
// Built by scripts/build-bpf; the object is committed.

#include "common.h"

// Read by crates/netsight-trace/src/rtt.rs: keep the layout in sync.
struct peer_bucket {
    __u8 addr[16];
    __u8 family;
    __u8 bucket; // floor(log2(srtt in us))
    __u8 pad[2];
    __u32 netns; // inode of the socket's network namespace
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1 << 14);
    __type(key, struct peer_bucket);
    __type(value, __u64);
} hist SEC(".maps");

// Set at load time by --port: only connections with this local or remote port.
volatile const __u16 filter_port = 0;

static __u8 log2_u32(__u32 v)
{
    __u8 r = 0;
    for (int i = 0; i < 32 && v > 1; i++) {
        v >>= 1;
        r++;
    }
    return r;
}

SEC("tp_btf/tcp_probe")
int tcp_probe(__u64 *ctx)
{
    const struct sock *sk = (const struct sock *)ctx[0];
    __u32 netns = sk_netns(sk);
    if (!netns_wanted(netns))
        return 0;
    // --port, in the kernel: the histogram has no ports to filter on later.
    if (filter_port && sk->__sk_common.skc_num != filter_port &&
        __builtin_bswap16(sk->__sk_common.skc_dport) != filter_port)
        return 0;
    const struct tcp_sock *tp = (const struct tcp_sock *)sk;
    __u32 srtt8 = 0;
    bpf_probe_read_kernel(&srtt8, sizeof(srtt8), &tp->srtt_us);
    if (!srtt8)
        return 0;
    struct peer_bucket key = {};
    key.netns = netns;
    key.family = sk->__sk_common.skc_family;
    if (key.family == 2)
        __builtin_memcpy(key.addr, &sk->__sk_common.skc_daddr, 4);
    else
        __builtin_memcpy(key.addr, &sk->__sk_common.skc_v6_daddr, 16);
    key.bucket = log2_u32(srtt8 >> 3);
    count_key(&hist, &key);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
