#include "script.hpp"

#include <gtest/gtest.h>

#include <array>
#include <charconv>
#include <map>
#include <sstream>

#include "wire/build.hpp"
#include "wire/icmp.hpp"
#include "wire/ip.hpp"

namespace ms::utcp::test {
namespace {

const wire::MacAddr kLocalMac{{0x02, 0, 0, 0, 0, 1}};
const wire::MacAddr kPeerMac{{0x02, 0, 0, 0, 0, 2}};
const wire::IpAddr kLocalIp = wire::IpAddr::v4(0xc6120001);  // 198.18.0.1
const wire::IpAddr kPeerIp = wire::IpAddr::v4(0xc6120002);   // 198.18.0.2
const wire::IpAddr kRouterIp = wire::IpAddr::v4(0xc61200fe); // 198.18.0.254

std::uint8_t parse_flags(std::string_view text, bool& psh_given) {
    std::uint8_t f = 0;
    psh_given = false;
    for (char c : text) {
        switch (c) {
            case 'S': f |= wire::tcpflag::syn; break;
            case '.': f |= wire::tcpflag::ack; break;
            case 'F': f |= wire::tcpflag::fin; break;
            case 'R': f |= wire::tcpflag::rst; break;
            case 'P':
                f |= wire::tcpflag::psh;
                psh_given = true;
                break;
            case 'E': f |= wire::tcpflag::ece; break;
            case 'W': f |= wire::tcpflag::cwr; break;
            default: ADD_FAILURE() << "unknown flag '" << c << "' in " << text;
        }
    }
    return f;
}

std::string flags_text(std::uint8_t f) {
    std::string s;
    if (f & wire::tcpflag::syn) s += 'S';
    if (f & wire::tcpflag::fin) s += 'F';
    if (f & wire::tcpflag::rst) s += 'R';
    if (f & wire::tcpflag::psh) s += 'P';
    if (f & wire::tcpflag::ack) s += '.';
    if (f & wire::tcpflag::ece) s += 'E';
    if (f & wire::tcpflag::cwr) s += 'W';
    return s.empty() ? "-" : s;
}

// A Fast Open cookie written as hex digits ("" for a cookie request).
wire::FastOpenCookie cookie_of_hex(std::string_view hex) {
    wire::FastOpenCookie c;
    if (hex.size() % 2 != 0 || hex.size() / 2 > c.bytes.size()) {
        ADD_FAILURE() << "a cookie is up to 16 bytes of hex: " << hex;
        return c;
    }
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const auto [p, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, c.bytes[i / 2], 16);
        if (ec != std::errc() || p != hex.data() + i + 2) ADD_FAILURE() << "not hex: " << hex;
    }
    c.size = static_cast<std::uint8_t>(hex.size() / 2);
    return c;
}

std::uint64_t to_number(std::string_view text) {
    std::uint64_t v = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size()) ADD_FAILURE() << "not a number: " << text;
    return v;
}

}  // namespace

struct PacketScript::Line {
    int number = 0;
    std::vector<std::string> words;
    std::map<std::string, std::string> fields;  // key=value words

    [[nodiscard]] bool has(const std::string& k) const { return fields.contains(k); }
    // A bare word after the flags, such as `sackok`.
    [[nodiscard]] bool flag(std::string_view w) const {
        return words.size() > 2 && std::find(words.begin() + 2, words.end(), w) != words.end();
    }
    // sack=L-R,L-R: blocks relative to `base`.
    [[nodiscard]] std::vector<wire::SackBlock> sack_of(std::uint32_t base) const {
        std::vector<wire::SackBlock> out;
        std::istringstream list(fields.at("sack"));
        for (std::string b; std::getline(list, b, ',');) {
            const auto dash = b.find('-');
            out.push_back({base + static_cast<std::uint32_t>(to_number(b.substr(0, dash))),
                           base + static_cast<std::uint32_t>(to_number(b.substr(dash + 1)))});
        }
        return out;
    }
    [[nodiscard]] std::uint64_t number_of(const std::string& k) const { return to_number(fields.at(k)); }
    // A sequence-space field: relative to `base` unless written abs:N.
    [[nodiscard]] std::uint32_t seq_of(const std::string& k, std::uint32_t base) const {
        const std::string& v = fields.at(k);
        if (v.starts_with("abs:")) return static_cast<std::uint32_t>(to_number(std::string_view(v).substr(4)));
        return base + static_cast<std::uint32_t>(to_number(v));
    }
};

PacketScript::PacketScript(ScriptConfig config) : config_(std::move(config)) {
    StackConfig sc;
    sc.mac = kLocalMac;
    sc.address = kLocalIp;
    sc.defaults = config_.options;
    sc.time_wait_ms = config_.time_wait_ms;
    sc.max_time_wait = config_.max_time_wait;
    sc.challenge_acks_per_second = config_.challenge_acks_per_second;
    sc.max_connections = config_.max_connections;
    sc.syn_cookies = config_.syn_cookies;
    // Only the peer is on the link: any other address has no next hop.
    sc.resolve = [](const wire::IpAddr& a) { return a == kPeerIp ? std::optional<wire::MacAddr>(kPeerMac) : std::nullopt; };
    sc.isn = [this](const FourTuple&, std::uint64_t) { return Seq32(our_isn_); };
    stack_ = std::make_unique<Stack>(sc, link_, now_, draw_secrets().value());
}

PacketScript::~PacketScript() = default;

FourTuple PacketScript::tuple() const { return {kLocalIp, kPeerIp, local_port_, peer_port_}; }

Connection* PacketScript::conn() const { return stack_->find(tuple()); }

void PacketScript::run(std::string_view script) {
    std::istringstream in{std::string(script)};
    std::string text;
    int number = 0;
    while (std::getline(in, text)) {
        ++number;
        if (const auto hash = text.find('#'); hash != std::string::npos) text.erase(hash);
        Line line;
        line.number = number;
        std::istringstream words(text);
        for (std::string w; words >> w;) {
            if (const auto eq = w.find('='); eq != std::string::npos && !line.words.empty()) {
                line.fields[w.substr(0, eq)] = w.substr(eq + 1);
            } else {
                line.words.push_back(w);
            }
        }
        if (line.words.empty()) continue;
        SCOPED_TRACE("script line " + std::to_string(number) + ": " + text);
        execute(line);
        if (::testing::Test::HasFatalFailure()) return;
    }
    collect();
    if (!sent_.empty()) {
        ADD_FAILURE() << "the script ended with " << sent_.size() << " segment(s) sent but not expected";
    }
}

void PacketScript::execute(const Line& line) {
    const std::string& cmd = line.words[0];
    if (cmd == "<") return inject(line, true);
    if (cmd == "<<") return inject(line, false);
    if (cmd == ">") return expect(line);
    if (cmd == "app") return app(line);
    if (cmd == "state") return check_state(line);
    if (cmd == "event") return check_event(line);
    if (cmd == "flush") return stack_->flush(now_);
    if (cmd == "icmp") return inject_icmp(line);
    if (cmd[0] == '+') {
        const std::string_view step = std::string_view(cmd).substr(1);
        now_ += step.ends_with("us") ? to_number(step.substr(0, step.size() - 2)) : us_from_ms(to_number(step));
        stack_->advance(now_);
        return stack_->flush(now_);
    }
    ASSERT_GE(line.words.size(), 2u) << cmd << " needs an argument";
    const std::uint64_t arg = to_number(line.words[1]);
    if (cmd == "peer_isn") {
        peer_isn_ = static_cast<std::uint32_t>(arg);
    } else if (cmd == "our_isn") {
        our_isn_ = static_cast<std::uint32_t>(arg);
    } else if (cmd == "peer_port") {
        peer_port_ = static_cast<std::uint16_t>(arg);
    } else if (cmd == "listen") {
        local_port_ = static_cast<std::uint16_t>(arg);
        const bool raw = line.words.size() > 2 && line.words[2] == "raw";
        Listener* l = stack_->listen(local_port_, raw ? nullptr : &handler_, &config_.options);
        ASSERT_NE(l, nullptr);
        l->backlog = config_.backlog;
        l->syn_queue = config_.syn_queue;
        l->fast_open_queue = config_.fast_open_queue;
    } else if (cmd == "connect") {
        std::swap(local_port_, peer_port_);
        peer_port_ = static_cast<std::uint16_t>(arg);
        const ConnectResult made = stack_->connect(local_port_, kPeerIp, peer_port_, &handler_, &config_.options);
        ASSERT_TRUE(made.ok()) << to_string(made.error());
        active_ = *made;
        if (line.has("send")) send_pattern(**made, line.number_of("send"));  // before the SYN goes
        stack_->flush(now_);
    } else {
        FAIL() << "unknown command " << cmd;
    }
}

void PacketScript::inject(const Line& line, bool flush) {
    ASSERT_GE(line.words.size(), 2u) << "< needs flags";
    bool psh = false;
    wire::TcpRepr tcp{.src_port = peer_port_, .dst_port = local_port_};
    tcp.flags = parse_flags(line.words[1], psh);
    tcp.seq = line.has("seq") ? line.seq_of("seq", peer_isn_) : peer_isn_;
    tcp.ack = line.has("ack") ? line.seq_of("ack", our_isn_) : 0;
    tcp.window = static_cast<std::uint16_t>(line.has("win") ? line.number_of("win") : 65535);
    if (line.has("mss")) tcp.options.mss = static_cast<std::uint16_t>(line.number_of("mss"));
    if (line.has("ws")) tcp.options.window_scale = static_cast<std::uint8_t>(line.number_of("ws"));
    tcp.options.sack_permitted = line.flag("sackok");
    if (line.has("tsval")) {
        std::uint32_t tsecr = 0;
        if (line.has("tsecr")) {
            tsecr = line.fields.at("tsecr") == "echo" ? last_tsval_ : static_cast<std::uint32_t>(line.number_of("tsecr"));
        }
        tcp.options.timestamps = wire::Timestamps{static_cast<std::uint32_t>(line.number_of("tsval")), tsecr};
    }
    if (line.flag("tfo")) tcp.options.fast_open = wire::FastOpenCookie{};
    if (line.has("tfo")) {
        const std::string& v = line.fields.at("tfo");
        tcp.options.fast_open = v == "learned" ? learned_cookie_ : cookie_of_hex(v);
    }
    if (line.has("sack")) {
        const auto blocks = line.sack_of(our_isn_);
        ASSERT_LE(blocks.size(), 4u);
        std::copy(blocks.begin(), blocks.end(), tcp.options.sack_blocks.begin());
        tcp.options.sack_count = static_cast<std::uint8_t>(blocks.size());
    }
    const std::size_t len = line.has("len") ? line.number_of("len") : 0;
    const std::size_t hlen = tcp.header_len();
    std::vector<std::uint8_t> frame(14 + 20 + hlen + len);
    wire::emit_ipv4_frame(frame, {.dst = kLocalMac, .src = kPeerMac},
                          {.src = kPeerIp,
                           .dst = kLocalIp,
                           .protocol = wire::ipproto::tcp,
                           .dscp_ecn = line.flag("ce") ? wire::ecn::ce : std::uint8_t{0}},
                          hlen + len, [&](wire::MutBytes l4) {
                              tcp.emit(l4);
                              // Data byte k of the segment is stream byte (seq - ISN - 1 + k),
                              // after the SYN's octet if it has one.
                              const std::uint32_t first = tcp.seq + ((tcp.flags & wire::tcpflag::syn) ? 1 : 0);
                              const std::uint32_t stream_at = first - peer_isn_ - 1;
                              for (std::size_t k = 0; k < len; ++k) l4[hlen + k] = pattern_byte(stream_at + k);
                          });
    stack_->input(frame, now_);
    if (flush) stack_->flush(now_);
}

void PacketScript::inject_icmp(const Line& line) {
    static const std::map<std::string, wire::IcmpErrorRepr, std::less<>> kKinds{
        {"too_big", {wire::icmp::dest_unreachable, wire::icmp::fragmentation_needed, 0}},
        {"port_unreachable", {wire::icmp::dest_unreachable, wire::icmp::port_unreachable, 0}},
        {"host_unreachable", {wire::icmp::dest_unreachable, wire::icmp::host_unreachable, 0}},
        {"time_exceeded", {wire::icmp::time_exceeded, 0, 0}},
    };
    ASSERT_GE(line.words.size(), 2u) << "icmp needs a kind";
    const auto kind = kKinds.find(line.words[1]);
    ASSERT_NE(kind, kKinds.end()) << "unknown ICMP kind " << line.words[1];
    wire::IcmpErrorRepr error = kind->second;
    if (line.has("mtu")) error.mtu = static_cast<std::uint32_t>(line.number_of("mtu"));
    // What the router quotes: our segment's IP header and the first 8 bytes of its TCP header.
    std::array<std::uint8_t, wire::kIpv4MinHeaderLen + 8> quoted{};
    wire::Ipv4Repr{.src = kLocalIp, .dst = kPeerIp, .protocol = wire::ipproto::tcp, .payload_len = 1480}.emit(quoted);
    wire::store_be16(&quoted[20], local_port_);
    wire::store_be16(&quoted[22], peer_port_);
    wire::store_be32(&quoted[24], line.seq_of("seq", our_isn_));
    const auto message_len = static_cast<std::uint16_t>(error.len(quoted));
    std::vector<std::uint8_t> frame(14 + wire::kIpv4MinHeaderLen + message_len);
    wire::EthernetRepr{kLocalMac, kPeerMac, wire::ethertype::ipv4}.emit(frame);
    const wire::MutBytes ip = wire::MutBytes(frame).subspan(14);
    wire::Ipv4Repr{.src = kRouterIp, .dst = kLocalIp, .protocol = wire::ipproto::icmp, .payload_len = message_len}.emit(ip);
    error.emit_v4(ip.subspan(wire::kIpv4MinHeaderLen), quoted);
    if (line.flag("bad_checksum")) frame.back() ^= 0x01;
    stack_->input(frame, now_);
    stack_->flush(now_);
}

void PacketScript::collect() {
    for (auto& f : link_.take()) sent_.push_back(std::move(f));
}

void PacketScript::expect(const Line& line) {
    ASSERT_GE(line.words.size(), 2u) << "> needs flags or none";
    collect();
    if (line.words[1] == "none") {
        if (!sent_.empty()) ADD_FAILURE() << "expected nothing, but a segment was sent";
        sent_.clear();
        return;
    }
    ASSERT_FALSE(sent_.empty()) << "expected " << line.words[1] << ", but nothing was sent";
    const std::vector<std::uint8_t> frame = std::move(sent_.front());
    sent_.pop_front();
    auto ip = wire::Ipv4View::parse(wire::Bytes(frame).subspan(14));
    ASSERT_TRUE(ip.ok());
    EXPECT_TRUE(ip->dont_fragment()) << "UTCP sends IPv4 with DF set";
    auto tcp = wire::TcpView::parse(ip->payload());
    ASSERT_TRUE(tcp.ok());
    EXPECT_TRUE(wire::transport_checksum_ok(ip->src(), ip->dst(), wire::ipproto::tcp, ip->payload()));
    bool psh = false;
    const std::uint8_t want = parse_flags(line.words[1], psh);
    // PSH, ECE and CWR are checked only when the line names them (E, W).
    const bool ecn_named = line.words[1].find_first_of("EW") != std::string::npos;
    std::uint8_t mask = psh ? 0xff : static_cast<std::uint8_t>(~wire::tcpflag::psh);
    if (!ecn_named) mask &= static_cast<std::uint8_t>(~(wire::tcpflag::ece | wire::tcpflag::cwr));
    EXPECT_EQ(flags_text(tcp->flags() & mask), flags_text(want)) << "flags";
    const auto check = [&](const char* key, std::uint64_t got, std::uint64_t expected, const char* what) {
        if (line.has(key)) {
            EXPECT_EQ(got, expected) << what;
        }
    };
    if (line.flag("learn_isn")) our_isn_ = tcp->seq();  // a SYN cookie: relative numbers count from it
    if (tcp->options().timestamps) last_tsval_ = tcp->options().timestamps->value;
    check("seq", tcp->seq() - our_isn_, line.has("seq") ? line.seq_of("seq", our_isn_) - our_isn_ : 0, "seq (relative)");
    check("ack", tcp->ack() - peer_isn_, line.has("ack") ? line.seq_of("ack", peer_isn_) - peer_isn_ : 0, "ack (relative)");
    check("win", tcp->window(), line.has("win") ? line.number_of("win") : 0, "window");
    check("len", tcp->payload().size(), line.has("len") ? line.number_of("len") : 0, "payload length");
    check("mss", tcp->options().mss.value_or(0), line.has("mss") ? line.number_of("mss") : 0, "MSS option");
    check("ws", tcp->options().window_scale.value_or(255), line.has("ws") ? line.number_of("ws") : 0, "window scale");
    if (line.has("nows") || line.flag("nows")) {
        EXPECT_FALSE(tcp->options().window_scale.has_value()) << "window scale present";
    }
    if (line.flag("sackok")) {
        EXPECT_TRUE(tcp->options().sack_permitted) << "SACK-permitted missing";
    }
    if (line.flag("ts") || line.has("tsecr")) {
        EXPECT_TRUE(tcp->options().timestamps.has_value()) << "timestamps missing";
    }
    if (line.has("tsecr") && tcp->options().timestamps) {
        EXPECT_EQ(tcp->options().timestamps->echo_reply, line.number_of("tsecr")) << "TSecr";
    }
    if (line.flag("ect")) {
        EXPECT_EQ(ip->dscp_ecn() & wire::ecn::mask, wire::ecn::ect0) << "not ECT(0)";
    }
    if (line.flag("noect")) {
        EXPECT_EQ(ip->dscp_ecn() & wire::ecn::mask, 0) << "ECN-capable";
    }
    if (line.flag("nots")) {
        EXPECT_FALSE(tcp->options().timestamps.has_value()) << "timestamps present";
    }
    if (line.flag("nosackok")) {
        EXPECT_FALSE(tcp->options().sack_permitted) << "SACK-permitted present";
    }
    if (line.flag("nosack")) {
        EXPECT_EQ(tcp->options().sack_count, 0) << "SACK blocks present";
    }
    expect_fast_open(line, tcp->options().fast_open);
    if (line.has("sack")) {
        const auto blocks = line.sack_of(peer_isn_);
        const auto& o = tcp->options();
        const std::vector<wire::SackBlock> got(o.sack_blocks.begin(), o.sack_blocks.begin() + o.sack_count);
        EXPECT_EQ(got.size(), blocks.size()) << "SACK block count";
        for (std::size_t i = 0; i < std::min(got.size(), blocks.size()); ++i) {
            EXPECT_EQ(got[i].left - peer_isn_, blocks[i].left - peer_isn_) << "SACK block " << i << " left";
            EXPECT_EQ(got[i].right - peer_isn_, blocks[i].right - peer_isn_) << "SACK block " << i << " right";
        }
    }
}

// tfo=req: an empty option (a cookie request); tfo=learn: a cookie, which later injected
// segments send with tfo=learned; tfo=HEX: exactly that cookie; notfo: no option.
void PacketScript::expect_fast_open(const Line& line, const std::optional<wire::FastOpenCookie>& got) {
    if (line.flag("notfo")) {
        EXPECT_FALSE(got.has_value()) << "Fast Open option present";
    }
    if (!line.has("tfo")) return;
    ASSERT_TRUE(got.has_value()) << "Fast Open option missing";
    const std::string& v = line.fields.at("tfo");
    if (v == "req") {
        EXPECT_EQ(got->size, 0) << "a cookie where a request was expected";
    } else if (v == "learn") {
        EXPECT_GT(got->size, 0) << "no cookie to learn";
        learned_cookie_ = *got;
    } else {
        EXPECT_EQ(*got, cookie_of_hex(v)) << "Fast Open cookie";
    }
}

void PacketScript::app(const Line& line) {
    ASSERT_GE(line.words.size(), 2u);
    const std::string& what = line.words[1];
    Connection* c = conn();
    ASSERT_NE(c, nullptr) << "app " << what << ": no connection";
    const auto arg = [&](std::size_t i) { return to_number(line.words.at(i)); };
    if (what == "send") {
        send_pattern(*c, arg(2));
    } else if (what == "recv") {
        std::vector<std::uint8_t> data(arg(2));
        EXPECT_EQ(c->recv(data), data.size()) << "readable bytes";
        for (std::size_t k = 0; k < data.size(); ++k) {
            if (data[k] != pattern_byte(peer_stream_ + k)) {
                ADD_FAILURE() << "byte " << peer_stream_ + k << " of the stream is wrong";
                break;
            }
        }
        peer_stream_ += data.size();
    } else if (what == "close") {
        c->close();
    } else if (what == "shutdown") {
        c->shutdown_write();
    } else if (what == "abort") {
        c->abort();
    } else if (what == "nodelay" || what == "keepalive" || what == "min_rto") {
        ConnOptions o = c->options();
        if (what == "nodelay") o.nodelay = line.words.at(2) == "on";
        if (what == "min_rto") o.min_rto_ms = static_cast<std::uint32_t>(arg(2));
        if (what == "keepalive") {
            o.keepalive = true;
            o.keepalive_idle_ms = static_cast<std::uint32_t>(arg(2));
            o.keepalive_interval_ms = static_cast<std::uint32_t>(arg(3));
            o.keepalive_probes = static_cast<std::uint32_t>(arg(4));
        }
        c->set_options(o);
    } else {
        FAIL() << "unknown app command " << what;
    }
    stack_->flush(now_);
}

void PacketScript::send_pattern(Connection& c, std::size_t len) {
    std::vector<std::uint8_t> data(len);
    for (std::size_t k = 0; k < data.size(); ++k) data[k] = pattern_byte(app_stream_ + k);
    const std::size_t n = c.send(data);
    EXPECT_EQ(n, data.size()) << "the send buffer took less than asked";
    app_stream_ += n;
}

void PacketScript::check_state(const Line& line) {
    ASSERT_GE(line.words.size(), 2u);
    const std::string& want = line.words[1];
    const Connection* c = conn();
    std::string got = c ? to_string(c->state()) : "NONE";
    if (!c && stack_->time_wait().size() > 0) got = "TIME_WAIT";
    EXPECT_EQ(got, want) << "connection state";
}

void PacketScript::check_event(const Line& line) {
    ASSERT_GE(line.words.size(), 2u);
    auto& ev = handler_.events;
    auto it = std::find(ev.begin(), ev.end(), line.words[1]);
    if (it == ev.end()) {
        std::string all;
        for (const auto& e : ev) all += e + " ";
        ADD_FAILURE() << "the application was not told " << line.words[1] << "; it was told: " << all;
        return;
    }
    ev.erase(ev.begin(), it + 1);  // events are checked in order
}

}  // namespace ms::utcp::test
