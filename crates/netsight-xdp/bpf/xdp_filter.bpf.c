// SPDX-License-Identifier: GPL-2.0
// netsight's XDP filter. The verdict for a packet:
//   1. rules, first match wins (lowest `priority`): each rule is an optional
//      source and destination prefix, a protocol and port ranges. Candidates come
//      from four LPM tries (source/destination × v4/v6), whose value at a prefix
//      is the bitmask of rule slots whose prefix contains it, so one longest-match
//      lookup per trie finds every rule an address can match; the slots left are
//      then checked for protocol and ports;
//   2. the SYN limiter: a token bucket per source prefix (LRU hash) for TCP SYNs
//      that no rule passed;
//   3. pass.
// A drop is turned into a pass (and counted as spared) for a source in the
// protect tries, and nothing is dropped in dry-run mode (matches still count).
// User space fills every map; see crates/netsight-xdp/src/maps.rs for the layout.
// Built by scripts/build-bpf; the object is committed and embedded.

#include "../../netsight-kernel/bpf/vmlinux.h"

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define INLINE static inline __attribute__((always_inline))

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static long (*bpf_loop)(__u32 nr_loops, void *callback_fn, void *callback_ctx, __u64 flags) = (void *)181;

#define MAX_RULES 64
#define TRIE_ENTRIES 16384
#define ETH_P_IP_BE 0x0008    /* htons(0x0800) */
#define ETH_P_IPV6_BE 0xDD86  /* htons(0x86DD) */
#define ETH_P_8021Q_BE 0x0081 /* htons(0x8100) */
#define ETH_P_8021AD_BE 0xA888 /* htons(0x88A8) */
#define PROTO_TCP 6
#define PROTO_UDP 17
#define PROTO_SCTP 132
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10

struct xf_key_v4 {
    __u32 prefixlen;
    __u8 addr[4];
};
struct xf_key_v6 {
    __u32 prefixlen;
    __u8 addr[16];
};

// One rule slot. `enabled` 0 = free.
struct xf_rule {
    __u8 enabled;
    __u8 drop;     /* 1 drop, 0 pass */
    __u8 proto;    /* 0 any */
    __u8 pad;
    __u16 sport_lo, sport_hi; /* 0..65535 = any */
    __u16 dport_lo, dport_hi;
    __u32 priority;           /* lower wins */
};

struct xf_traffic {
    __u64 packets;
    __u64 bytes;
};

struct xf_config {
    __u32 dry_run;
    __u32 syn_enabled;
    __u64 syn_cost_ns;  /* credit one SYN costs: 1e9 / rate */
    __u64 syn_burst_ns; /* bucket depth: burst × cost */
    __u32 syn_prefix_v4;
    __u32 syn_prefix_v6;
};

struct xf_bucket_key {
    __u32 family;
    __u8 addr[16];
};
struct xf_bucket {
    __u64 credit_ns;
    __u64 last_ns;
};

// Global counters, indexes of `totals`.
enum {
    T_SEEN,
    T_PASSED,
    T_DROPPED,
    T_SPARED,      /* a drop not done: protected source */
    T_DRY_RUN,     /* a drop not done: dry run */
    T_SYN_PASSED,
    T_SYN_LIMITED, /* over the limit (dropped unless spared or dry run) */
    T_NOT_IP,
    T_COUNT
};

#define TRIE(name, key_t)                          \
    struct {                                       \
        __uint(type, BPF_MAP_TYPE_LPM_TRIE);       \
        __uint(max_entries, TRIE_ENTRIES);         \
        __uint(map_flags, 1 /* BPF_F_NO_PREALLOC */); \
        __type(key, key_t);                        \
        __type(value, __u64);                      \
    } name SEC(".maps")

TRIE(src_v4, struct xf_key_v4);
TRIE(dst_v4, struct xf_key_v4);
TRIE(src_v6, struct xf_key_v6);
TRIE(dst_v6, struct xf_key_v6);
TRIE(protect_v4, struct xf_key_v4);
TRIE(protect_v6, struct xf_key_v6);

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, MAX_RULES);
    __type(key, __u32);
    __type(value, struct xf_rule);
} rules SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, MAX_RULES);
    __type(key, __u32);
    __type(value, struct xf_traffic);
} rule_stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, T_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} totals SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct xf_config);
} settings SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct xf_bucket_key);
    __type(value, struct xf_bucket);
} syn_buckets SEC(".maps");

struct xf_packet {
    __u32 family; /* 4 or 6 */
    __u8 proto;
    __u8 has_ports;
    __u8 syn;     /* TCP SYN without ACK */
    __u16 sport, dport;
    __u8 src[16], dst[16];
};

INLINE void count(__u32 index)
{
    __u64 *n = bpf_map_lookup_elem(&totals, &index);
    if (n)
        *n += 1;
}

INLINE void l4(struct xf_packet *p, void *l4h, void *data_end, int first_fragment)
{
    if (!first_fragment)
        return;
    if (p->proto == PROTO_TCP) {
        struct tcphdr *t = l4h;
        if ((void *)(t + 1) > data_end)
            return;
        p->sport = __builtin_bswap16(t->source);
        p->dport = __builtin_bswap16(t->dest);
        p->has_ports = 1;
        __u8 flags = ((__u8 *)t)[13];
        p->syn = (flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
    } else if (p->proto == PROTO_UDP || p->proto == PROTO_SCTP) {
        __u16 *ports = l4h;
        if ((void *)(ports + 2) > data_end)
            return;
        p->sport = __builtin_bswap16(ports[0]);
        p->dport = __builtin_bswap16(ports[1]);
        p->has_ports = 1;
    }
}

// 0 parsed, -1 not IP (or truncated): pass untouched.
INLINE int parse(struct xdp_md *ctx, struct xf_packet *p)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end)
        return -1;
    __u16 type = eth->h_proto;
    void *cursor = eth + 1;
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (type != ETH_P_8021Q_BE && type != ETH_P_8021AD_BE)
            break;
        __u16 *vlan = cursor; /* TCI, then the inner type */
        if ((void *)(vlan + 2) > data_end)
            return -1;
        type = vlan[1];
        cursor = vlan + 2;
    }
    if (type == ETH_P_IP_BE) {
        struct iphdr *ip = cursor;
        if ((void *)(ip + 1) > data_end || ip->ihl < 5)
            return -1;
        p->family = 4;
        p->proto = ip->protocol;
        __builtin_memcpy(p->src, &ip->saddr, 4);
        __builtin_memcpy(p->dst, &ip->daddr, 4);
        int first = (__builtin_bswap16(ip->frag_off) & 0x1fff) == 0;
        l4(p, (void *)ip + ip->ihl * 4, data_end, first);
        return 0;
    }
    if (type == ETH_P_IPV6_BE) {
        struct ipv6hdr *ip6 = cursor;
        if ((void *)(ip6 + 1) > data_end)
            return -1;
        p->family = 6;
        __builtin_memcpy(p->src, &ip6->saddr, 16);
        __builtin_memcpy(p->dst, &ip6->daddr, 16);
        __u8 next = ip6->nexthdr;
        void *h = ip6 + 1;
        int first = 1;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            __u8 *ext = h;
            if (next == 0 || next == 43 || next == 60) { /* hop-by-hop, routing, destination */
                if ((void *)(ext + 2) > data_end)
                    return 0;
                next = ext[0];
                h = ext + (ext[1] + 1) * 8;
            } else if (next == 44) { /* fragment */
                if ((void *)(ext + 8) > data_end)
                    return 0;
                first = ((ext[2] << 8 | ext[3]) & 0xfff8) == 0;
                next = ext[0];
                h = ext + 8;
            } else if (next == 51) { /* authentication header */
                if ((void *)(ext + 2) > data_end)
                    return 0;
                next = ext[0];
                h = ext + (ext[1] + 2) * 4;
            } else {
                break;
            }
        }
        p->proto = next;
        l4(p, h, data_end, first);
        return 0;
    }
    return -1;
}

INLINE __u64 candidates(void *trie, struct xf_packet *p, const __u8 *addr)
{
    __u64 *mask;
    if (p->family == 4) {
        struct xf_key_v4 k = {.prefixlen = 32};
        __builtin_memcpy(k.addr, addr, 4);
        mask = bpf_map_lookup_elem(trie, &k);
    } else {
        struct xf_key_v6 k = {.prefixlen = 128};
        __builtin_memcpy(k.addr, addr, 16);
        mask = bpf_map_lookup_elem(trie, &k);
    }
    return mask ? *mask : 0;
}

INLINE int protected(struct xf_packet *p)
{
    if (p->family == 4) {
        struct xf_key_v4 k = {.prefixlen = 32};
        __builtin_memcpy(k.addr, p->src, 4);
        return bpf_map_lookup_elem(&protect_v4, &k) != 0;
    }
    struct xf_key_v6 k = {.prefixlen = 128};
    __builtin_memcpy(k.addr, p->src, 16);
    return bpf_map_lookup_elem(&protect_v6, &k) != 0;
}

// 1 when the source's bucket has a SYN's credit left (and takes it).
INLINE int syn_allowed(struct xf_config *cfg, struct xf_packet *p)
{
    struct xf_bucket_key key = {.family = p->family};
    __u32 bits = p->family == 4 ? cfg->syn_prefix_v4 : cfg->syn_prefix_v6;
    __u32 words = p->family == 4 ? 1 : 4;
    __builtin_memcpy(key.addr, p->src, 16);
    __u32 *w = (__u32 *)key.addr;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        __u32 start = i * 32;
        __u32 mask = i >= words || bits <= start ? 0 : bits >= start + 32 ? 0xffffffff : ~(0xffffffffU >> (bits - start));
        w[i] &= __builtin_bswap32(mask);
    }
    __u64 now = bpf_ktime_get_ns();
    struct xf_bucket *b = bpf_map_lookup_elem(&syn_buckets, &key);
    if (!b) {
        // A new source starts with a full bucket, less this SYN.
        struct xf_bucket fresh = {.credit_ns = cfg->syn_burst_ns - cfg->syn_cost_ns, .last_ns = now};
        bpf_map_update_elem(&syn_buckets, &key, &fresh, 0);
        return 1;
    }
    __u64 credit = b->credit_ns + (now > b->last_ns ? now - b->last_ns : 0);
    if (credit > cfg->syn_burst_ns)
        credit = cfg->syn_burst_ns;
    b->last_ns = now;
    if (credit >= cfg->syn_cost_ns) {
        b->credit_ns = credit - cfg->syn_cost_ns;
        return 1;
    }
    b->credit_ns = credit;
    return 0;
}

// The state of one search for the first matching rule, for bpf_loop: a plain
// 64-round loop over the candidates makes the verifier walk too many states.
struct xf_search {
    struct xf_packet *packet;
    __u64 cand;
    __u32 best;
    __u32 best_priority;
    int drop;
};

static long check_rule(__u64 index, void *ctx)
{
    struct xf_search *s = ctx;
    if (!s->cand)
        return 1; /* stop */
    __u64 bit = 1ULL << (index & 63);
    if (!(s->cand & bit))
        return 0;
    s->cand &= ~bit;
    __u32 slot = index;
    struct xf_rule *r = bpf_map_lookup_elem(&rules, &slot);
    if (!r || !r->enabled || r->priority >= s->best_priority)
        return 0;
    struct xf_packet *p = s->packet;
    if (r->proto && r->proto != p->proto)
        return 0;
    int any_sport = r->sport_lo == 0 && r->sport_hi == 0xffff;
    int any_dport = r->dport_lo == 0 && r->dport_hi == 0xffff;
    if (!any_sport && (!p->has_ports || p->sport < r->sport_lo || p->sport > r->sport_hi))
        return 0;
    if (!any_dport && (!p->has_ports || p->dport < r->dport_lo || p->dport > r->dport_hi))
        return 0;
    s->best = slot;
    s->best_priority = r->priority;
    s->drop = r->drop;
    return 0;
}

SEC("xdp")
int netsight_xdp(struct xdp_md *ctx)
{
    __u32 zero = 0;
    struct xf_config *cfg = bpf_map_lookup_elem(&settings, &zero);
    if (!cfg)
        return XDP_PASS;
    count(T_SEEN);
    struct xf_packet p = {};
    if (parse(ctx, &p) < 0) {
        count(T_NOT_IP);
        count(T_PASSED);
        return XDP_PASS;
    }
    __u64 bytes = ctx->data_end - ctx->data;
    __u64 cand;
    if (p.family == 4)
        cand = candidates(&src_v4, &p, p.src) & candidates(&dst_v4, &p, p.dst);
    else
        cand = candidates(&src_v6, &p, p.src) & candidates(&dst_v6, &p, p.dst);

    struct xf_search search = {.packet = &p, .cand = cand, .best = MAX_RULES, .best_priority = 0xffffffff};
    if (cand)
        bpf_loop(MAX_RULES, check_rule, &search, 0);
    __u32 best = search.best;
    int drop = search.drop;
    if (best < MAX_RULES) {
        struct xf_traffic *t = bpf_map_lookup_elem(&rule_stats, &best);
        if (t) {
            t->packets += 1;
            t->bytes += bytes;
        }
    } else if (p.syn && cfg->syn_enabled) {
        if (syn_allowed(cfg, &p)) {
            count(T_SYN_PASSED);
        } else {
            count(T_SYN_LIMITED);
            drop = 1;
        }
    }
    if (drop) {
        if (protected(&p)) {
            count(T_SPARED);
        } else if (cfg->dry_run) {
            count(T_DRY_RUN);
        } else {
            count(T_DROPPED);
            return XDP_DROP;
        }
    }
    count(T_PASSED);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
