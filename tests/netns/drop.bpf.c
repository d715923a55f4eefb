// SPDX-License-Identifier: GPL-2.0
// tc program "ms_drop" (the test bed's lossy link; netem is absent on this kernel): drops
// a fixed fraction of IPv4 and IPv6 TCP packets at random, or (kind ICMP_TOO_BIG) of the
// ICMP "fragmentation needed" and ICMPv6 "packet too big" messages: a path that
// black-holes them, for path MTU discovery without ICMP. bpf_get_prandom_u32() did not
// vary here, so the random numbers come from a sequence that ms-drop writes into
// ms_drop_random from a seeded generator; each packet takes the next one. Everything
// else (ARP, ND, other ICMP, UDP) passes, so that the hosts stay reachable.
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
    __u32 kind;       // which packets: KIND_TCP or KIND_ICMP_TOO_BIG
};

enum { KIND_TCP = 0, KIND_ICMP_TOO_BIG = 1 };

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

// Whether the packet is of `kind`: TCP, or an ICMP "fragmentation needed" (type 3 code
// 4) or ICMPv6 "packet too big" (type 2).
static __always_inline int is_kind(struct __sk_buff* skb, __u32 kind) {
    void* data = (void*)(long)skb->data;
    void* end = (void*)(long)skb->data_end;
    struct ethhdr* eth = data;
    if ((void*)(eth + 1) > end) return 0;
    __u8 protocol;
    __u8* l4;
    if (eth->h_proto == bpf_htons(ETH_P_IP)) {
        struct iphdr* ip = (void*)(eth + 1);
        if ((void*)(ip + 1) > end) return 0;
        protocol = ip->protocol;
        l4 = (__u8*)ip + ip->ihl * 4;
    } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr* ip6 = (void*)(eth + 1);
        if ((void*)(ip6 + 1) > end) return 0;
        protocol = ip6->nexthdr;
        l4 = (__u8*)(ip6 + 1);
    } else {
        return 0;
    }
    if (kind == KIND_TCP) return protocol == IPPROTO_TCP;
    if ((void*)(l4 + 2) > end) return 0;
    if (protocol == IPPROTO_ICMP) return l4[0] == 3 && l4[1] == 4;
    return protocol == IPPROTO_ICMPV6 && l4[0] == 2;
}

SEC("tc")
int ms_drop(struct __sk_buff* skb) {
    __u32 zero = 0;
    struct drop_state* st = bpf_map_lookup_elem(&ms_drop_state, &zero);
    if (!st || !is_kind(skb, st->kind)) return TC_ACT_OK;
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
