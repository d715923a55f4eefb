// The attacks of ms-attack that live outside attack.cpp: those of the second security
// review (attack_review2.cpp). Each prints one JSON report and returns the tool's exit
// code (attack_kit.hpp: 0 defended, 1 not, 3 set-up error, 77 cannot be tried here).
#pragma once

#include "attack_kit.hpp"

namespace attack {

// Claims wildcards (UDP, TCP, and a dual-stack TCP ::), then connects our own copies of
// the proofs to loopback, which narrows their bound address: every claim must be revoked.
int attack_narrow(const Ctx& c, std::uint16_t port);
// Proofs bound with SO_REUSEADDR beside a kernel socket that holds the tuple (the caller
// keeps a TCP connection from server:PORT and a UDP socket on server:PORT+1), the flag
// cleared before the claim: each claim must be refused as tuple_shared.
int attack_reuse_dodge(const Ctx& c, std::uint16_t port);
// Many sessions, each claiming until refused: the user must stop at its budget, refused
// with limit_reached, while the daemon keeps descriptors for everyone else.
int attack_claim_flood(const Ctx& c, std::uint16_t port, std::uint32_t sessions);
// A half-published slot chain, and a failed port with a transmit slot left pending: the
// daemon must stay idle, and the chain must fail its port (chain_stalled) in time.
int attack_spin(const Ctx& c, std::uint16_t port, double max_cpu_share);
// Many sessions that never read their replies: the daemon's memory must stay within the
// user's budget, and come back when the sessions go.
int attack_unread_many(const Ctx& c, std::uint32_t sessions, std::uint32_t rss_margin_mib);
// Frames and super-segments larger than the interface's MTU: each counted over_mtu.
int attack_mtu(const Ctx& c, std::uint16_t port, const wire::IpAddr& peer, const wire::MacAddr& peer_mac);
// Holds our socket table's sequence lock odd, or flips it without end (--flip): another
// user's `msctl sockets` must still show every other port.
int attack_table_busy(const Ctx& c, bool flip);
// Tries to take over another user's claim (UDP `victim_port`) with sockets of our own,
// and checks the bookkeeping of a join between our own sessions.
int attack_take_over(const Ctx& c, std::uint16_t victim_port, std::uint16_t port);

}  // namespace attack
