#include "wire/transport.hpp"

#include "wire/checksum.hpp"

namespace ms::wire {
namespace {

// Fixed lengths from RFC 9293 §3.1 (MSS), RFC 7323 §2.2 and §3.2, RFC 2018 §2.
bool fixed_length_ok(std::uint8_t kind, std::size_t len) {
    switch (kind) {
        case tcpopt::mss: return len == 4;
        case tcpopt::window_scale: return len == 3;
        case tcpopt::sack_permitted: return len == 2;
        case tcpopt::timestamps: return len == 10;
        case tcpopt::sack: return len >= 10 && len <= 34 && (len - 2) % 8 == 0;
        case tcpopt::fast_open: return len == 2 || (len >= 6 && len <= 18);
        default: return true;
    }
}

void apply_option(TcpOptions& o, std::uint8_t kind, const std::uint8_t* body, std::size_t body_len) {
    switch (kind) {
        case tcpopt::mss: o.mss = load_be16(body); break;
        case tcpopt::window_scale: o.window_scale = body[0]; break;
        case tcpopt::sack_permitted: o.sack_permitted = true; break;
        case tcpopt::timestamps: o.timestamps = Timestamps{load_be32(body), load_be32(body + 4)}; break;
        case tcpopt::sack:
            o.sack_count = static_cast<std::uint8_t>(body_len / 8);
            for (std::size_t i = 0; i < o.sack_count; ++i) {
                o.sack_blocks[i] = SackBlock{load_be32(body + 8 * i), load_be32(body + 8 * i + 4)};
            }
            break;
        case tcpopt::fast_open: {
            FastOpenCookie c;
            c.size = static_cast<std::uint8_t>(body_len);
            std::memcpy(c.bytes.data(), body, body_len);
            o.fast_open = c;
            break;
        }
        default: break;  // RFC 9293 §3.1: unknown options are skipped by their length.
    }
}

}  // namespace

base::Result<TcpOptions, ParseError> TcpOptions::parse(Bytes options) {
    TcpOptions o;
    std::size_t at = 0;
    while (at < options.size()) {
        const std::uint8_t kind = options[at];
        if (kind == tcpopt::eol) break;
        if (kind == tcpopt::nop) {
            ++at;
            continue;
        }
        if (at + 2 > options.size()) return ParseError::bad_option;
        const std::size_t len = options[at + 1];
        if (len < 2 || at + len > options.size() || !fixed_length_ok(kind, len)) {
            return ParseError::bad_option;
        }
        apply_option(o, kind, options.data() + at + 2, len - 2);
        at += len;
    }
    return o;
}

std::size_t TcpOptions::encoded_len() const {
    std::size_t n = 0;
    if (mss) n += 4;
    if (timestamps || sack_permitted) n += timestamps ? 12 : 4;
    if (window_scale) n += 4;
    if (sack_count) n += 4 + 8 * std::size_t{sack_count};
    if (fast_open) n += 2 + fast_open->size;
    return (n + 3) & ~std::size_t{3};
}

void TcpOptions::emit(MutBytes out) const {
    std::uint8_t* p = out.data();
    auto put = [&p](std::initializer_list<std::uint8_t> bytes) {
        for (std::uint8_t b : bytes) *p++ = b;
    };
    if (mss) {
        put({tcpopt::mss, 4});
        store_be16(p, *mss);
        p += 2;
    }
    // The layout Linux uses, so that round trips of captured segments are byte-exact.
    if (timestamps) {
        if (sack_permitted) put({tcpopt::sack_permitted, 2});
        else put({tcpopt::nop, tcpopt::nop});
        put({tcpopt::timestamps, 10});
        store_be32(p, timestamps->value);
        store_be32(p + 4, timestamps->echo_reply);
        p += 8;
    } else if (sack_permitted) {
        put({tcpopt::nop, tcpopt::nop, tcpopt::sack_permitted, 2});
    }
    if (window_scale) put({tcpopt::nop, tcpopt::window_scale, 3, *window_scale});
    if (sack_count) {
        put({tcpopt::nop, tcpopt::nop, tcpopt::sack, static_cast<std::uint8_t>(2 + 8 * sack_count)});
        for (std::size_t i = 0; i < sack_count; ++i) {
            store_be32(p, sack_blocks[i].left);
            store_be32(p + 4, sack_blocks[i].right);
            p += 8;
        }
    }
    if (fast_open) {
        put({tcpopt::fast_open, static_cast<std::uint8_t>(2 + fast_open->size)});
        std::memcpy(p, fast_open->bytes.data(), fast_open->size);
        p += fast_open->size;
    }
    while (p < out.data() + encoded_len()) *p++ = tcpopt::eol;
}

base::Result<TcpView, ParseError> TcpView::parse(Bytes segment) {
    if (segment.size() < kTcpMinHeaderLen) return ParseError::truncated;
    const std::size_t offset = (std::size_t{segment[12]} >> 4) * 4;
    if (offset < kTcpMinHeaderLen || offset > segment.size()) return ParseError::bad_data_offset;
    auto options = TcpOptions::parse(segment.subspan(kTcpMinHeaderLen, offset - kTcpMinHeaderLen));
    if (!options) return options.error();
    TcpView v;
    v.p_ = segment;
    v.options_ = *options;
    return v;
}

void TcpRepr::emit(MutBytes out) const {
    std::uint8_t* p = out.data();
    const std::size_t len = header_len();
    store_be16(p, src_port);
    store_be16(p + 2, dst_port);
    store_be32(p + 4, seq);
    store_be32(p + 8, ack);
    p[12] = static_cast<std::uint8_t>((len / 4) << 4);
    p[13] = flags;
    store_be16(p + 14, window);
    store_be16(p + 16, 0);
    store_be16(p + 18, urgent);
    options.emit(out.subspan(kTcpMinHeaderLen, len - kTcpMinHeaderLen));
}

base::Result<UdpView, ParseError> UdpView::parse(Bytes datagram) {
    if (datagram.size() < kUdpHeaderLen) return ParseError::truncated;
    const std::size_t len = load_be16(datagram.data() + 4);
    if (len < kUdpHeaderLen || len > datagram.size()) return ParseError::bad_total_length;
    return UdpView(datagram.first(len));
}

void UdpRepr::emit(MutBytes out) const {
    std::uint8_t* p = out.data();
    store_be16(p, src_port);
    store_be16(p + 2, dst_port);
    store_be16(p + 4, static_cast<std::uint16_t>(kUdpHeaderLen + payload_len));
    store_be16(p + 6, 0);
}

}  // namespace ms::wire
