// SPDX-License-Identifier: GPL-2.0
// XDP program "ms_claim" (docs/DESIGN.md §1, §2): sends frames whose destination 3-tuple is
// claimed to the AF_XDP socket of their receive queue, and everything else to the
// kernel stack (XDP_PASS): ARP, ND, ICMP, IP fragments, IPv6 with extension headers it
// cannot walk (more than four, or other than hop-by-hop, routing, destination options),
// broadcast and multicast, VLAN-tagged frames (they belong to a VLAN interface), and
// every unclaimed port. The exception among ICMP: an error (unreachable, too big, time
// exceeded, parameter problem) that quotes a packet sent from a claimed tuple goes where
// that packet came from, so that its stack learns of it (path MTU discovery); the kernel
// never sent that packet. Echo requests and everything else stay with the kernel.
// Lookup order: exact address, then the wildcard (all zeros), which matches only a
// destination address of the interface's own (ms_local), exactly as the switch's
// registry decides. The maps are the daemon's mirror of its registry;
// the daemon stays the authority.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// Must match ms::nic::BpfClaimKey.
struct claim_key {
    __u8 protocol;
    __u8 family;  // 4 or 6
    __be16 port;
    __u8 addr[16];  // IPv4 in the first four bytes; all zero: the wildcard
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, struct claim_key);
    __type(value, __u32);
} ms_claims SEC(".maps");

// The interface's own addresses: a wildcard claim covers these and nothing else (a
// broadcast or another host's address stays with the kernel).
struct local_key {
    __u8 family;  // 4 or 6
    __u8 pad[3];
    __u8 addr[16];  // IPv4 in the first four bytes
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 256);
    __type(key, struct local_key);
    __type(value, __u8);
} ms_local SEC(".maps");

// How many claims name each (protocol, port), indexed by port_index(): most frames the
// kernel should keep are for ports nobody claimed, and one array lookup tells.
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2 * 65536);
    __type(key, __u32);
    __type(value, __u32);
} ms_ports SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u32);
} ms_xsks SEC(".maps");

// The daemon's record (one entry; must match ms::nic::DaemonRecord): what a daemon leaves
// for the next one on this interface, and how long its claims outlive it. While no AF_XDP
// socket takes a claimed frame (the daemon is down, or restarting), the frame is dropped
// if the daemon's last heartbeat is within its outage limit: the kernel would answer a
// UTCP connection's segment with a reset. Past the limit the claims are as good as
// released and the kernel gets the frame.
struct daemon_record {
    __u32 version;
    __u32 flags;
    __u64 heartbeat_ns;     // CLOCK_MONOTONIC (bpf_ktime_get_ns) of the daemon's last beat
    __u64 outage_limit_ns;  // how long claims outlive the last beat
    __u64 first_start_s;    // CLOCK_REALTIME seconds when the first daemon of the chain started
    __u32 restarts;         // daemons that took over from one that died
    __u32 upgrades;         // daemons that took over from one that left for a restart
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __uint(map_flags, BPF_F_MMAPABLE);  // the daemon beats through a mapping, with no system call
    __type(key, __u32);
    __type(value, struct daemon_record);
} ms_daemon SEC(".maps");

enum { STAT_CLAIMED, STAT_PASSED, STAT_HELD, STAT_COUNT };

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, STAT_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} ms_stats SEC(".maps");

static __always_inline int count(__u32 which, int verdict) {
    __u64 *c = bpf_map_lookup_elem(&ms_stats, &which);
    if (c) *c += 1;
    return verdict;
}

static __always_inline int pass(void) { return count(STAT_PASSED, XDP_PASS); }

// No socket takes the frame: whether the claims still hold (the daemon beat lately).
static __always_inline int daemon_within_outage_limit(void) {
    __u32 zero = 0;
    struct daemon_record *r = bpf_map_lookup_elem(&ms_daemon, &zero);
    if (!r || r->version == 0) return 0;
    return bpf_ktime_get_ns() - r->heartbeat_ns <= r->outage_limit_ns;
}

// Whether `key` is claimed: exactly, or by the wildcard if its address is ours.
static __always_inline int claimed(struct claim_key *key) {
    // Must match ms::nic::port_index.
    __u32 index = (key->protocol == IPPROTO_UDP ? 65536 : 0) + bpf_ntohs(key->port);
    __u32 *count = bpf_map_lookup_elem(&ms_ports, &index);
    if (!count || *count == 0) return 0;
    if (bpf_map_lookup_elem(&ms_claims, key)) return 1;
    struct local_key local = {.family = key->family};
    __builtin_memcpy(local.addr, key->addr, sizeof local.addr);
    if (!bpf_map_lookup_elem(&ms_local, &local)) return 0;
    __builtin_memset(key->addr, 0, sizeof key->addr);
    return bpf_map_lookup_elem(&ms_claims, key) != 0;
}

enum { SOURCE_PORT = 0, DESTINATION_PORT = 1 };

// A port of the TCP or UDP header at `l4` (both start with the source and destination
// port) into `key`; 0 if the header is cut short or of another protocol.
static __always_inline int port_of(struct claim_key *key, void *l4, void *end, int which) {
    if (key->protocol != IPPROTO_TCP && key->protocol != IPPROTO_UDP) return 0;
    __be16 *ports = l4;
    if ((void *)(ports + 2) > end) return 0;
    key->port = ports[which];
    return 1;
}

// ICMP "destination unreachable", "time exceeded" or "parameter problem" about a packet
// whose source is `daddr` (one of ours): the key of the quoted packet's source.
static __always_inline int icmp_error_key(struct claim_key *key, void *l4, void *end, __be32 daddr) {
    __u8 *icmp = l4;
    if ((void *)(icmp + 8) > end) return 0;
    if (icmp[0] != 3 && icmp[0] != 11 && icmp[0] != 12) return 0;
    struct iphdr *quoted = (void *)(icmp + 8);
    if ((void *)(quoted + 1) > end || quoted->ihl < 5 || quoted->version != 4) return 0;
    if (quoted->frag_off & bpf_htons(0x1fff)) return 0;  // a later fragment carries no ports
    if (quoted->saddr != daddr) return 0;
    key->protocol = quoted->protocol;
    __builtin_memcpy(key->addr, &quoted->saddr, 4);
    return port_of(key, (void *)quoted + quoted->ihl * 4, end, SOURCE_PORT);  // RFC 792: 8 bytes are quoted
}

// ICMPv6 "destination unreachable", "packet too big", "time exceeded" or "parameter
// problem" about a TCP or UDP packet (no extension headers) whose source is `daddr`.
static __always_inline int icmpv6_error_key(struct claim_key *key, void *l4, void *end, const struct in6_addr *daddr) {
    __u8 *icmp = l4;
    if ((void *)(icmp + 8) > end) return 0;
    if (icmp[0] < 1 || icmp[0] > 4) return 0;
    struct ipv6hdr *quoted = (void *)(icmp + 8);
    if ((void *)(quoted + 1) > end || quoted->version != 6) return 0;
    if (__builtin_memcmp(&quoted->saddr, daddr, 16) != 0) return 0;
    key->protocol = quoted->nexthdr;
    __builtin_memcpy(key->addr, &quoted->saddr, 16);
    return port_of(key, quoted + 1, end, SOURCE_PORT);
}

// RFC 8200 §4: hop-by-hop, routing and destination options headers, at most this many,
// are walked to the upper layer; a longer chain, a fragment header or anything else the
// program cannot parse goes to the kernel.
#define MAX_EXTENSIONS 4

static __always_inline int is_walkable_extension(__u8 next) {
    return next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS;
}

// The upper layer after `ip6`'s extension headers, with its protocol in `*next`; 0 if
// the chain cannot be walked here.
static __always_inline void *skip_extensions(struct ipv6hdr *ip6, __u8 *next, void *end) {
    void *at = ip6 + 1;
    *next = ip6->nexthdr;
#pragma unroll
    for (int i = 0; i < MAX_EXTENSIONS; i++) {
        if (!is_walkable_extension(*next)) return at;
        __u8 *h = at;
        if ((void *)(h + 2) > end) return 0;
        *next = h[0];
        at = h + ((__u32)h[1] + 1) * 8;
    }
    return is_walkable_extension(*next) ? 0 : at;
}

SEC("xdp")
int ms_claim(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end) return pass();
    if (eth->h_dest[0] & 1) return pass();  // broadcast or multicast
    __be16 proto = eth->h_proto;            // a VLAN tag (0x8100) is not IP: passed
    void *l3 = eth + 1;

    struct claim_key key = {};
    if (proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = l3;
        if ((void *)(ip + 1) > end || ip->ihl < 5) return pass();
        if (ip->frag_off & bpf_htons(0x3fff)) return pass();  // MF or an offset: a fragment
        void *l4 = (void *)ip + ip->ihl * 4;
        key.family = 4;
        if (ip->protocol == IPPROTO_ICMP) {
            if (!icmp_error_key(&key, l4, end, ip->daddr)) return pass();
        } else {
            key.protocol = ip->protocol;
            __builtin_memcpy(key.addr, &ip->daddr, 4);
            if (!port_of(&key, l4, end, DESTINATION_PORT)) return pass();
        }
    } else if (proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = l3;
        if ((void *)(ip6 + 1) > end) return pass();
        __u8 next;
        void *l4 = skip_extensions(ip6, &next, end);
        if (!l4) return pass();
        key.family = 6;
        if (next == IPPROTO_ICMPV6) {
            if (!icmpv6_error_key(&key, l4, end, &ip6->daddr)) return pass();
        } else {
            key.protocol = next;  // a fragment header (44) is neither TCP nor UDP: the kernel's
            __builtin_memcpy(key.addr, &ip6->daddr, 16);
            if (!port_of(&key, l4, end, DESTINATION_PORT)) return pass();
        }
    } else {
        return pass();
    }
    if (!claimed(&key)) return pass();
    // A miss in the socket map returns the flags' action: XDP_ABORTED (0) here.
    int verdict = bpf_redirect_map(&ms_xsks, ctx->rx_queue_index, 0);
    if (verdict == XDP_REDIRECT) return count(STAT_CLAIMED, verdict);
    return daemon_within_outage_limit() ? count(STAT_HELD, XDP_DROP) : pass();
}

char LICENSE[] SEC("license") = "GPL";
