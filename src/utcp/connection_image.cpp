// Contract: connection_image.hpp's record: a header (magic, version, total length), the
// fields in a fixed order, then the byte sections, each with its length before it.
#include "utcp/connection_image.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace ms::utcp {

const char* to_string(ImageError e) {
    switch (e) {
        case ImageError::not_movable: return "the connection cannot move in its state";
        case ImageError::truncated: return "the image ends inside a field";
        case ImageError::bad_magic: return "not a connection image";
        case ImageError::bad_version: return "an image version this stack does not read";
        case ImageError::bad_field: return "a field of the image is out of its range";
        case ImageError::too_large: return "a byte section of the image is over its bound";
        case ImageError::wrong_address: return "the connection's local address is not this stack's";
        case ImageError::tuple_in_use: return "this stack has a connection on the tuple";
        case ImageError::too_many_connections: return "this stack has its most connections";
        case ImageError::no_route: return "this stack has no route to the peer";
    }
    return "?";
}

namespace {

class Writer {
public:
    template <class T>
        requires std::is_trivially_copyable_v<T>
    void put(const T& v) {
        const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
        out_.insert(out_.end(), p, p + sizeof v);
    }
    void put_bytes(std::span<const std::uint8_t> bytes) {
        put(static_cast<std::uint32_t>(bytes.size()));
        out_.insert(out_.end(), bytes.begin(), bytes.end());
    }
    void put_address(const wire::IpAddr& a) {
        put(static_cast<std::uint8_t>(a.family));
        out_.insert(out_.end(), a.bytes.begin(), a.bytes.end());
    }
    std::vector<std::uint8_t> finish() {
        const auto total = static_cast<std::uint32_t>(out_.size());
        std::memcpy(out_.data() + kTotalAt, &total, sizeof total);
        return std::move(out_);
    }
    static constexpr std::size_t kTotalAt = 6;  // after the magic and the version

private:
    std::vector<std::uint8_t> out_;
};

// Reads fields in order; the first one past the end makes every later read fail.
class Reader {
public:
    explicit Reader(std::span<const std::uint8_t> in) : in_(in) {}
    template <class T>
        requires std::is_trivially_copyable_v<T>
    bool get(T& v) {
        if (in_.size() - at_ < sizeof v) return fail();
        std::memcpy(&v, in_.data() + at_, sizeof v);
        at_ += sizeof v;
        return true;
    }
    // A boolean must be 0 or 1.
    bool get_flag(bool& v) {
        std::uint8_t b = 0;
        if (!get(b)) return false;
        if (b > 1) bad_ = true;
        v = b == 1;
        return true;
    }
    // A byte section of at most `bound` bytes.
    bool get_bytes(std::vector<std::uint8_t>& v, std::uint32_t bound) {
        std::uint32_t n = 0;
        if (!get(n)) return false;
        if (n > bound) {
            too_large_ = true;
            return false;
        }
        if (in_.size() - at_ < n) return fail();
        v.assign(in_.begin() + static_cast<std::ptrdiff_t>(at_), in_.begin() + static_cast<std::ptrdiff_t>(at_ + n));
        at_ += n;
        return true;
    }
    bool get_address(wire::IpAddr& a) {
        std::uint8_t family = 0;
        if (!get(family)) return false;
        if (family != static_cast<std::uint8_t>(wire::IpFamily::v4) &&
            family != static_cast<std::uint8_t>(wire::IpFamily::v6)) {
            bad_ = true;
        }
        a.family = static_cast<wire::IpFamily>(family);
        if (in_.size() - at_ < a.bytes.size()) return fail();
        std::memcpy(a.bytes.data(), in_.data() + at_, a.bytes.size());
        at_ += a.bytes.size();
        return true;
    }
    [[nodiscard]] bool truncated() const { return truncated_; }
    [[nodiscard]] bool bad() const { return bad_; }
    [[nodiscard]] bool too_large() const { return too_large_; }
    [[nodiscard]] bool at_end() const { return at_ == in_.size(); }

private:
    bool fail() {
        truncated_ = true;
        at_ = in_.size();
        return false;
    }
    std::span<const std::uint8_t> in_;
    std::size_t at_ = 0;
    bool truncated_ = false;
    bool bad_ = false;
    bool too_large_ = false;
};

// Every field, in the record's order, through one visitor: the writer and the reader
// cannot disagree on the layout.
template <class Image, class Field, class Flag, class Address>
void visit_fields(Image& im, Field&& field, Flag&& flag, Address&& address) {
    address(im.tuple.local);
    address(im.tuple.remote);
    field(im.tuple.local_port);
    field(im.tuple.remote_port);
    field(im.iss), field(im.snd_una), field(im.snd_max), field(im.snd_wnd), field(im.snd_wl1), field(im.snd_wl2);
    field(im.snd_max_wnd), field(im.irs), field(im.rcv_nxt), field(im.rcv_adv_edge);
    field(im.snd_shift), field(im.rcv_shift);
    flag(im.window_scale), flag(im.fin_received);
    field(im.mss_local), field(im.smss), field(im.mss_path);
    flag(im.sack), flag(im.timestamps);
    field(im.ts_offset), field(im.ts_recent), field(im.last_ack_sent);
    flag(im.ecn), flag(im.has_rtt);
    field(im.srtt8), field(im.rttvar4), field(im.cwnd), field(im.ssthresh);
    flag(im.nodelay), flag(im.keepalive);
    field(im.min_rto_ms), field(im.max_rto_ms), field(im.delayed_ack_ms);
    field(im.keepalive_idle_ms), field(im.keepalive_interval_ms), field(im.keepalive_probes);
    field(im.send_buffer), field(im.recv_buffer);
}

constexpr std::uint32_t kMaxTimeoutMs = 24u * 3600 * 1000;
constexpr std::int64_t kMaxRtt8 = std::int64_t{60'000'000} * 8;  // a minute, in eighths of a microsecond

bool mss_in_range(std::uint16_t mss) { return mss >= 64; }

// The ranges each within the receive buffer past the readable bytes, sorted and apart.
bool ranges_fit(const ConnectionImage& im) {
    std::uint64_t end = 0;
    for (const ImageRange& r : im.out_of_order) {
        if (r.bytes.empty() || r.offset < end || (end > 0 && r.offset == end)) return false;
        end = std::uint64_t{r.offset} + r.bytes.size();
    }
    return end + im.readable.size() <= im.recv_buffer;
}

bool fields_in_range(const ConnectionImage& im) {
    const auto& t = im.tuple;
    const bool tuple_ok = t.local.family == t.remote.family && t.local_port != 0 && t.remote_port != 0;
    const bool state_ok = im.state == State::established || (im.state == State::close_wait && im.fin_received);
    const bool flight_ok = static_cast<std::uint32_t>(im.snd_max - im.snd_una) <= im.unacknowledged.size() &&
                           im.snd_una != im.iss;  // a SYN in flight does not move
    const bool scale_ok = im.snd_shift <= 14 && im.rcv_shift <= 14 && (im.window_scale || (im.snd_shift | im.rcv_shift) == 0);
    const bool mss_ok = mss_in_range(im.mss_local) && mss_in_range(im.smss) && mss_in_range(im.mss_path);
    const bool buffers_ok = im.send_buffer > 0 && im.send_buffer <= ConnectionImage::kMaxBuffer && im.recv_buffer > 0 &&
                            im.recv_buffer <= ConnectionImage::kMaxBuffer && im.unacknowledged.size() <= im.send_buffer &&
                            static_cast<std::uint32_t>(im.rcv_adv_edge - im.rcv_nxt) <= im.recv_buffer * 2u;
    const bool timing_ok = im.min_rto_ms > 0 && im.min_rto_ms <= im.max_rto_ms && im.max_rto_ms <= kMaxTimeoutMs &&
                           im.delayed_ack_ms < 500 && im.keepalive_idle_ms <= kMaxTimeoutMs &&
                           im.keepalive_interval_ms <= kMaxTimeoutMs && im.keepalive_probes <= 1000;
    const bool rtt_ok = im.srtt8 >= 0 && im.srtt8 <= kMaxRtt8 && im.rttvar4 >= 0 && im.rttvar4 <= kMaxRtt8;
    const bool cc_ok = im.cwnd > 0 && im.ssthresh > 0 && !im.congestion.empty() &&
                       std::ranges::all_of(im.congestion, [](char c) { return c > ' ' && c < 127; });
    return tuple_ok && state_ok && flight_ok && scale_ok && mss_ok && buffers_ok && timing_ok && rtt_ok && cc_ok &&
           ranges_fit(im);
}

}  // namespace

std::vector<std::uint8_t> encode(const ConnectionImage& image) {
    const ConnectionImage& im = image;
    Writer w;
    w.put(ConnectionImage::kMagic);
    w.put(ConnectionImage::kVersion);
    w.put(std::uint32_t{0});  // the total length, filled in by finish()
    w.put(static_cast<std::uint8_t>(im.state));
    visit_fields(
        im, [&](const auto& v) { w.put(v); }, [&](bool b) { w.put(static_cast<std::uint8_t>(b)); },
        [&](const wire::IpAddr& a) { w.put_address(a); });
    w.put_bytes({reinterpret_cast<const std::uint8_t*>(im.congestion.data()), im.congestion.size()});
    w.put_bytes(im.unacknowledged);
    w.put_bytes(im.readable);
    w.put(static_cast<std::uint8_t>(im.out_of_order.size()));
    for (const ImageRange& r : im.out_of_order) {
        w.put(r.offset);
        w.put_bytes(r.bytes);
    }
    return w.finish();
}

base::Result<ConnectionImage, ImageError> decode(std::span<const std::uint8_t> bytes) {
    Reader r(bytes);
    std::uint32_t magic = 0, total = 0;
    std::uint16_t version = 0;
    if (!r.get(magic) || !r.get(version) || !r.get(total)) return ImageError::truncated;
    if (magic != ConnectionImage::kMagic) return ImageError::bad_magic;
    if (version != ConnectionImage::kVersion) return ImageError::bad_version;
    if (total != bytes.size()) return ImageError::truncated;
    ConnectionImage im;
    std::uint8_t state = 0;
    r.get(state);
    im.state = static_cast<State>(state);
    visit_fields(
        im, [&](auto& v) { r.get(v); }, [&](bool& b) { r.get_flag(b); }, [&](wire::IpAddr& a) { r.get_address(a); });
    std::vector<std::uint8_t> name;
    r.get_bytes(name, ConnectionImage::kMaxCongestionName);
    im.congestion.assign(name.begin(), name.end());
    r.get_bytes(im.unacknowledged, ConnectionImage::kMaxBuffer);
    r.get_bytes(im.readable, ConnectionImage::kMaxBuffer);
    std::uint8_t ranges = 0;
    r.get(ranges);
    if (ranges > ConnectionImage::kMaxRanges) return ImageError::too_large;
    im.out_of_order.resize(ranges);
    for (ImageRange& range : im.out_of_order) {
        r.get(range.offset);
        r.get_bytes(range.bytes, ConnectionImage::kMaxBuffer);
    }
    if (r.too_large()) return ImageError::too_large;
    if (r.truncated()) return ImageError::truncated;
    if (r.bad() || !r.at_end() || !fields_in_range(im)) return ImageError::bad_field;
    return im;
}

}  // namespace ms::utcp
