// SPDX-License-Identifier: GPL-2.0
// Shared by the tracers: section/map macros, the helpers they call (declared
// by id so no libbpf headers are needed), the events ring buffer and the
// lost-event counter that user space reports.
#pragma once

#include "../../netsight-kernel/bpf/vmlinux.h"

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_get_current_comm)(void *buf, __u32 size) = (void *)16;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *)113;
static void *(*bpf_ringbuf_reserve)(void *ringbuf, __u64 size, __u64 flags) = (void *)131;
static void (*bpf_ringbuf_submit)(void *data, __u64 flags) = (void *)132;

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 22);
} events SEC(".maps");

// Events that found the ring buffer full (per CPU; user space sums them).
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} lost SEC(".maps");

// CO-RE: 1 when the running kernel has this field (relocated at load time), so
// programs built against this vmlinux.h adapt to older tracepoint layouts.
#define field_exists(field) __builtin_preserve_field_info(field, 2 /* BPF_FIELD_EXISTS */)

static inline __attribute__((always_inline)) void count_lost(void)
{
    __u32 zero = 0;
    __u64 *n = bpf_map_lookup_elem(&lost, &zero);
    if (n)
        (*n)++;
}

// Reserves an event, or counts it as lost.
static inline __attribute__((always_inline)) void *reserve_event(__u64 size)
{
    void *e = bpf_ringbuf_reserve(&events, size, 0);
    if (!e)
        count_lost();
    return e;
}

// Adds one to a hash map's count for `key`. A full map loses the count (counted
// as lost); a key another CPU inserted first is added to, not lost.
static inline __attribute__((always_inline)) void count_key(void *map, const void *key)
{
    __u64 *n = bpf_map_lookup_elem(map, key);
    if (n) {
        __sync_fetch_and_add(n, 1);
        return;
    }
    __u64 one = 1;
    long rc = bpf_map_update_elem(map, key, &one, 1 /* BPF_NOEXIST */);
    if (rc == -17 /* EEXIST */) {
        n = bpf_map_lookup_elem(map, key);
        if (n)
            __sync_fetch_and_add(n, 1);
    } else if (rc) {
        count_lost();
    }
}

// Set at load time when netsight runs inside a child network namespace: only
// events of that namespace (its inode number, as `readlink /proc/self/ns/net`
// shows) are kept. 0 keeps every namespace; events carry theirs either way.
volatile const __u32 target_netns = 0;

static inline __attribute__((always_inline)) __u32 sk_netns(const struct sock *sk)
{
    return sk->__sk_common.skc_net.net->ns.inum;
}

static inline __attribute__((always_inline)) int netns_wanted(__u32 ns)
{
    return !target_netns || ns == target_netns;
}
