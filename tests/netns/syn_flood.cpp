// ms-syn-flood: the SYN flood of the SYN cookie test. Sends SYNs from SRC, on
// 4096 source ports in turn, to DST:PORT through an AF_PACKET socket on --dev, at --rate
// per second for --seconds, in batches (sendmmsg). SRC should be an address nobody
// answers for, as in a spoofed flood: then nothing resets the half-open connections and
// the listener's SYN queue stays full. Prints {"sent": N, "seconds": S, "per_second": R}.
//
// Usage: ms-syn-flood --dev IF --src IP --src-mac MAC --dst IP --dst-mac MAC --port N
//                     [--rate N] [--seconds S]
#include <CLI/CLI.hpp>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "wire/build.hpp"
#include "wire/transport.hpp"

namespace {

constexpr std::size_t kBatch = 64;
constexpr std::size_t kFrames = 4096;  // distinct source ports, then again

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "ms-syn-flood: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

std::vector<std::uint8_t> syn_frame(const ms::wire::EthernetRepr& eth, const ms::wire::IpAddr& src,
                                    const ms::wire::IpAddr& dst, std::uint16_t sport, std::uint16_t dport) {
    ms::wire::TcpRepr tcp{
        .src_port = sport, .dst_port = dport, .seq = 0x1000u * sport, .flags = ms::wire::tcpflag::syn, .window = 65535};
    tcp.options.mss = 1460;
    std::vector<std::uint8_t> frame(14 + 20 + tcp.header_len());
    ms::wire::emit_ipv4_frame(frame, eth, {.src = src, .dst = dst, .protocol = ms::wire::ipproto::tcp}, tcp.header_len(),
                              [&](ms::wire::MutBytes l4) { tcp.emit(l4); });
    return frame;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Floods a TCP listener with SYNs from one address's every source port"};
    std::string dev, src_text, dst_text, src_mac_text, dst_mac_text;
    std::uint16_t port = 0;
    double rate = 100000, seconds = 5;
    app.add_option("--dev", dev, "interface to send on")->required();
    app.add_option("--src", src_text, "source IPv4 address (this host's)")->required();
    app.add_option("--src-mac", src_mac_text, "source MAC")->required();
    app.add_option("--dst", dst_text, "destination IPv4 address")->required();
    app.add_option("--dst-mac", dst_mac_text, "destination MAC")->required();
    app.add_option("--port", port, "destination port")->required();
    app.add_option("--rate", rate, "SYNs per second")->capture_default_str();
    app.add_option("--seconds", seconds, "how long")->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    ms::wire::IpAddr src, dst;
    ms::wire::MacAddr src_mac, dst_mac;
    if (!ms::wire::parse_ip(src_text, src) || !ms::wire::parse_ip(dst_text, dst) ||
        !ms::wire::parse_mac(src_mac_text, src_mac) || !ms::wire::parse_mac(dst_mac_text, dst_mac)) {
        std::fprintf(stderr, "ms-syn-flood: bad address\n");
        return 2;
    }
    const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = static_cast<int>(if_nametoindex(dev.c_str()));
    to.sll_halen = ETH_ALEN;
    if (to.sll_ifindex == 0) die("interface " + dev);
    const ms::wire::EthernetRepr eth{.dst = dst_mac, .src = src_mac, .ethertype = ms::wire::ethertype::ipv4};
    std::vector<std::vector<std::uint8_t>> frames;
    for (std::size_t k = 0; k < kFrames; ++k) {
        frames.push_back(syn_frame(eth, src, dst, static_cast<std::uint16_t>(20000 + k), port));
    }
    std::vector<iovec> iov(kBatch);
    std::vector<mmsghdr> msgs(kBatch);
    const auto start = std::chrono::steady_clock::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    std::uint64_t sent = 0;
    while (std::chrono::steady_clock::now() < end) {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (static_cast<double>(sent) > rate * elapsed) {  // ahead of the rate
            std::this_thread::sleep_for(std::chrono::microseconds(200));
            continue;
        }
        for (std::size_t i = 0; i < kBatch; ++i) {
            auto& f = frames[(sent + i) % kFrames];
            iov[i] = {f.data(), f.size()};
            msgs[i] = {};
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &to;
            msgs[i].msg_hdr.msg_namelen = sizeof to;
        }
        const int n = ::sendmmsg(fd, msgs.data(), kBatch, 0);
        if (n < 0 && errno != ENOBUFS && errno != EAGAIN) die("sendmmsg");
        if (n > 0) sent += static_cast<std::uint64_t>(n);
    }
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("{\"sent\": %llu, \"seconds\": %.3f, \"per_second\": %.0f}\n", static_cast<unsigned long long>(sent), took,
                static_cast<double>(sent) / took);
    ::close(fd);
    return 0;
}
