// SPDX-License-Identifier: GPL-2.0
// tc program "ms_drop" (the test bed's lossy link; netem is absent on this kernel): drops
// a fixed fraction of IPv4 and IPv6 TCP packets at random. bpf_get_prandom_u32() did not
// vary here, so the random numbers come from a sequence that ms-drop writes into
// ms_drop_random from a seeded generator; each packet takes the next one. Everything
// else (ARP, ND, ICMP, UDP) passes, so that the hosts stay reachable.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define RANDOM_SLOTS 65536

// Must match DropState in drop.cpp.
struct drop_state {
    __u64 next;       // the next slot of ms_drop_random
    __u64 dropped;
    __u64 passed;
    __u32 threshold;  // drop when the slot's number is below it
    __u32 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct drop_state);
} ms_drop_state SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, RANDOM_SLOTS);
    __type(key, __u32);
    __type(value, __u32);
} ms_drop_random SEC(".maps");

static __always_inline int is_tcp(struct __sk_buff* skb) {
    void* data = (void*)(long)skb->data;
    void* end = (void*)(long)skb->data_end;
    struct ethhdr* eth = data;
    if ((void*)(eth + 1) > end) return 0;
    if (eth->h_proto == bpf_htons(ETH_P_IP)) {
        struct iphdr* ip = (void*)(eth + 1);
        return (void*)(ip + 1) <= end && ip->protocol == IPPROTO_TCP;
    }
    if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr* ip6 = (void*)(eth + 1);
        return (void*)(ip6 + 1) <= end && ip6->nexthdr == IPPROTO_TCP;
    }
    return 0;
}

SEC("tc")
int ms_drop(struct __sk_buff* skb) {
    if (!is_tcp(skb)) return TC_ACT_OK;
    __u32 zero = 0;
    struct drop_state* st = bpf_map_lookup_elem(&ms_drop_state, &zero);
    if (!st) return TC_ACT_OK;
    __u32 slot = (__u32)(__sync_fetch_and_add(&st->next, 1) % RANDOM_SLOTS);
    __u32* r = bpf_map_lookup_elem(&ms_drop_random, &slot);
    if (!r) return TC_ACT_OK;
    if (*r < st->threshold) {
        __sync_fetch_and_add(&st->dropped, 1);
        return TC_ACT_SHOT;
    }
    __sync_fetch_and_add(&st->passed, 1);
    return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
