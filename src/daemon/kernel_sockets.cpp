#include "daemon/kernel_sockets.hpp"

#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstring>
#include <memory>

namespace ms::daemon {
namespace {

using NetlinkSocket = std::unique_ptr<mnl_socket, decltype(&mnl_socket_close)>;

wire::IpAddr local_address(const inet_diag_msg& m) {
    const auto* a = reinterpret_cast<const std::uint8_t*>(m.id.idiag_src);
    return m.idiag_family == AF_INET ? wire::IpAddr::load_v4(a) : claimable_address_v6(a);
}

// A dump request for one family and protocol, filtered in the kernel to local port
// `port` if given (bytecode: "sport == port", else reject).
nlmsghdr* put_request(char* buf, int family, std::uint8_t protocol, std::optional<std::uint16_t> port, unsigned seq) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = seq;
    auto* req = static_cast<inet_diag_req_v2*>(mnl_nlmsg_put_extra_header(nlh, sizeof(inet_diag_req_v2)));
    req->sdiag_family = static_cast<std::uint8_t>(family);
    req->sdiag_protocol = protocol;
    req->idiag_states = ~0u;  // every state, TIME_WAIT and pending connections included
    req->id.idiag_cookie[0] = req->id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    if (!port) return nlh;
    // The dumps skip other local ports by this field before anything else (cheaper than
    // the bytecode, which stays for a kernel that would not).
    req->id.idiag_sport = htons(*port);
    // The kernel runs the ops from the first: S_EQ compares the local port with the next
    // op's `no` field; a match jumps `yes` bytes to the end (accept), a miss jumps `no`
    // bytes past it (reject).
    std::array<inet_diag_bc_op, 2> ops{};
    ops[0] = {INET_DIAG_BC_S_EQ, sizeof ops, sizeof ops + 4};
    ops[1] = {0, 0, *port};
    mnl_attr_put(nlh, INET_DIAG_REQ_BYTECODE, sizeof ops, ops.data());
    return nlh;
}

KernelSocket socket_of(const nlmsghdr* nlh) {
    const auto* m = static_cast<const inet_diag_msg*>(mnl_nlmsg_get_payload(nlh));
    KernelSocket s;
    s.local = local_address(*m);
    s.port = ntohs(m->id.idiag_sport);
    s.cookie = std::uint64_t{m->id.idiag_cookie[0]} | (std::uint64_t{m->id.idiag_cookie[1]} << 32);
    s.v6only = m->idiag_family == AF_INET;
    s.uid = m->idiag_uid;
    // Only full sockets carry attributes; a TIME_WAIT or pending one is never a wildcard.
    const auto* a = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof *m));
    for (; mnl_attr_ok(a, static_cast<int>(static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh)) -
                                           reinterpret_cast<const char*>(a)));
         a = mnl_attr_next(a)) {
        if (mnl_attr_get_type(a) == INET_DIAG_SKV6ONLY) s.v6only = mnl_attr_get_u8(a) != 0;
    }
    return s;
}

int collect(const nlmsghdr* nlh, void* data) {
    if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(inet_diag_msg))) return MNL_CB_ERROR;
    static_cast<std::vector<KernelSocket>*>(data)->push_back(socket_of(nlh));
    return MNL_CB_OK;
}

// Appends the sockets of one family; false if the dump failed.
bool dump_family(mnl_socket* nl, int family, std::uint8_t protocol, std::optional<std::uint16_t> port,
                 std::vector<KernelSocket>& out) {
    alignas(nlmsghdr) char buf[8192];  // MNL_SOCKET_BUFFER_SIZE, which is not a constant expression
    const unsigned seq = static_cast<unsigned>(family);
    const nlmsghdr* nlh = put_request(buf, family, protocol, port, seq);
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) return false;
    const unsigned portid = mnl_socket_get_portid(nl);
    for (;;) {
        const ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof buf);
        if (n <= 0) return false;
        const int rc = mnl_cb_run(buf, static_cast<size_t>(n), seq, portid, collect, &out);
        if (rc == MNL_CB_STOP) return true;
        if (rc < 0) return false;
    }
}

// The sockets of `protocol` in both families (on `port` only, if given); nothing if the
// table cannot be read.
std::optional<std::vector<KernelSocket>> dump(std::uint8_t protocol, std::optional<std::uint16_t> port) {
    NetlinkSocket nl(mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC), &mnl_socket_close);
    if (!nl || mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0) return std::nullopt;
    std::vector<KernelSocket> out;
    for (const int family : {AF_INET, AF_INET6}) {
        if (!dump_family(nl.get(), family, protocol, port, out)) return std::nullopt;
    }
    return out;
}

std::uint32_t index_key(std::uint8_t protocol, std::uint16_t port) { return std::uint32_t{protocol} << 16 | port; }

}  // namespace

wire::IpAddr claimable_address_v6(const std::uint8_t* bytes) {
    static constexpr std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(bytes, prefix, 12) == 0 ? wire::IpAddr::load_v4(bytes + 12) : wire::IpAddr::load_v6(bytes);
}

std::optional<std::vector<KernelSocket>> sockets_on_port(std::uint8_t protocol, std::uint16_t port) {
    return dump(protocol, port);
}

std::optional<KernelPortIndex> KernelPortIndex::read() {
    KernelPortIndex index;
    for (const std::uint8_t protocol : {std::uint8_t{IPPROTO_TCP}, std::uint8_t{IPPROTO_UDP}}) {
        auto sockets = dump(protocol, std::nullopt);
        if (!sockets) return std::nullopt;
        for (const KernelSocket& s : *sockets) index.by_port_[index_key(protocol, s.port)].push_back(s);
    }
    return index;
}

std::span<const KernelSocket> KernelPortIndex::on(std::uint8_t protocol, std::uint16_t port) const {
    const auto it = by_port_.find(index_key(protocol, port));
    if (it == by_port_.end()) return {};
    return it->second;
}

bool overlaps(const KernelSocket& socket, const wire::IpAddr& claimed) {
    const bool dual_stack_wildcard = socket.local == wire::IpAddr::any(wire::IpFamily::v6) && !socket.v6only;
    if (socket.local.family != claimed.family && !(dual_stack_wildcard && claimed.family == wire::IpFamily::v4)) {
        return false;
    }
    return socket.local.is_any() || claimed.is_any() || socket.local == claimed;
}

}  // namespace ms::daemon
