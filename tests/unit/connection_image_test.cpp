// A connection image is hostile input to the stack that reads it (connection_image.hpp):
// every truncation, a wrong magic or version, every field out of range and every byte
// section over its bound is refused with the reason named; a good one reads back whole.
#include <gtest/gtest.h>

#include <cstring>

#include "utcp/connection_image.hpp"

namespace ms::utcp {
namespace {

ConnectionImage good_image() {
    ConnectionImage im;
    im.tuple = {wire::IpAddr::v4(0xc612000b), wire::IpAddr::v4(0xc612000a), 80, 40000};
    im.iss = 1000, im.snd_una = 1001 + 5000, im.snd_max = im.snd_una + 3000, im.snd_wnd = 65535;
    im.irs = 7000, im.rcv_nxt = 7001 + 200, im.rcv_adv_edge = im.rcv_nxt + 65535;
    im.window_scale = true, im.snd_shift = 7, im.rcv_shift = 7;
    im.mss_local = im.smss = 1448, im.mss_path = 65535;
    im.sack = im.timestamps = true, im.ts_offset = 99, im.ts_recent = 12345;
    im.has_rtt = true, im.srtt8 = 80, im.rttvar4 = 20, im.cwnd = 14480, im.ssthresh = 0xffffffff;
    im.min_rto_ms = 200, im.max_rto_ms = 60000, im.delayed_ack_ms = 40;
    im.keepalive_idle_ms = 7'200'000, im.keepalive_interval_ms = 75'000, im.keepalive_probes = 9;
    im.send_buffer = im.recv_buffer = 256 * 1024;
    im.congestion = "cubic";
    im.unacknowledged.assign(4000, 0xab);
    im.readable.assign(100, 0xcd);
    im.out_of_order = {{1448, std::vector<std::uint8_t>(1448, 0xef)}, {4344, std::vector<std::uint8_t>(10, 1)}};
    return im;
}

TEST(ConnectionImage, AGoodImageReadsBackWhole) {
    const auto bytes = encode(good_image());
    auto back = decode(bytes);
    ASSERT_TRUE(back) << to_string(back.error());
    EXPECT_EQ(back->tuple, good_image().tuple);
    EXPECT_EQ(back->snd_max, good_image().snd_max);
    EXPECT_EQ(back->ts_recent, 12345u);
    EXPECT_EQ(back->congestion, "cubic");
    EXPECT_EQ(back->unacknowledged, good_image().unacknowledged);
    EXPECT_EQ(back->readable, good_image().readable);
    ASSERT_EQ(back->out_of_order.size(), 2u);
    EXPECT_EQ(back->out_of_order[1].offset, 4344u);
    EXPECT_EQ(encode(*back), bytes);
}

// The estimates count microseconds: a path 80 ms away (and one of a minute) still moves.
TEST(ConnectionImage, LongRoundTripsInMicrosecondsAreInRange) {
    ConnectionImage im = good_image();
    im.srtt8 = 80'000 * 8, im.rttvar4 = 40'000 * 4;
    EXPECT_TRUE(decode(encode(im))) << "an 80 ms SRTT";
    im.srtt8 = std::int64_t{60'000'000} * 8;
    EXPECT_TRUE(decode(encode(im))) << "a minute";
    im.srtt8 += 1;
    EXPECT_EQ(decode(encode(im)).error(), ImageError::bad_field) << "over a minute";
}

TEST(ConnectionImage, EveryTruncationIsRefused) {
    const auto bytes = encode(good_image());
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        auto r = decode(std::span(bytes).first(n));
        ASSERT_FALSE(r) << "a record cut at " << n << " of " << bytes.size() << " bytes was taken";
        EXPECT_EQ(r.error(), ImageError::truncated);
    }
}

TEST(ConnectionImage, AWrongMagicOrVersionIsNamed) {
    auto bytes = encode(good_image());
    bytes[0] ^= 0xff;
    EXPECT_EQ(decode(bytes).error(), ImageError::bad_magic);
    bytes = encode(good_image());
    bytes[4] = 99;
    EXPECT_EQ(decode(bytes).error(), ImageError::bad_version);
}

TEST(ConnectionImage, FieldsOutOfRangeAreRefused) {
    const std::vector<void (*)(ConnectionImage&)> breakers = {
        [](ConnectionImage& im) { im.state = State::syn_received; },
        [](ConnectionImage& im) { im.state = State::close_wait; },  // without the peer's FIN
        [](ConnectionImage& im) { im.tuple.remote = wire::IpAddr::any(wire::IpFamily::v6); },
        [](ConnectionImage& im) { im.tuple.local_port = 0; },
        [](ConnectionImage& im) { im.snd_max = im.snd_una + 5000; },  // more in flight than the bytes carried
        [](ConnectionImage& im) { im.snd_una = im.iss; },              // the SYN unacknowledged
        [](ConnectionImage& im) { im.snd_shift = 15; },
        [](ConnectionImage& im) { im.smss = 10; },
        [](ConnectionImage& im) { im.send_buffer = 1000; },            // under the bytes carried
        [](ConnectionImage& im) { im.recv_buffer = ConnectionImage::kMaxBuffer + 1; },
        [](ConnectionImage& im) { im.min_rto_ms = 0; },
        [](ConnectionImage& im) { im.srtt8 = -1; },
        [](ConnectionImage& im) { im.cwnd = 0; },
        [](ConnectionImage& im) { im.congestion = "a b"; },
        [](ConnectionImage& im) { im.out_of_order[1].offset = 1500; },  // overlaps the first range
        [](ConnectionImage& im) { im.out_of_order[0].bytes.clear(); },
    };
    for (std::size_t i = 0; i < breakers.size(); ++i) {
        ConnectionImage im = good_image();
        breakers[i](im);
        auto r = decode(encode(im));
        ASSERT_FALSE(r) << "broken field " << i << " was taken";
        EXPECT_EQ(r.error(), ImageError::bad_field) << "broken field " << i;
    }
}

TEST(ConnectionImage, AFlagOtherThanZeroOrOneIsRefused) {
    auto bytes = encode(good_image());
    // The first flag follows the header (10 bytes), the state, two addresses (17 bytes
    // each), two ports and ten sequence and window fields, and two shifts.
    const std::size_t window_scale_at = 10 + 1 + 2 * 17 + 2 * 2 + 10 * 4 + 2;
    ASSERT_EQ(bytes[window_scale_at], 1);
    bytes[window_scale_at] = 2;
    EXPECT_EQ(decode(bytes).error(), ImageError::bad_field);
}

TEST(ConnectionImage, AByteSectionOverItsBoundIsRefusedBeforeItIsRead) {
    ConnectionImage im = good_image();
    im.congestion = std::string(ConnectionImage::kMaxCongestionName + 1, 'x');
    EXPECT_EQ(decode(encode(im)).error(), ImageError::too_large);
    auto bytes = encode(good_image());
    // The unacknowledged bytes' length follows the congestion name's section.
    const std::size_t name_at = bytes.size() - (4 + 4000) - (4 + 100) - 1 - (4 + 4 + 1448) - (4 + 4 + 10) - (4 + 5);
    const std::uint32_t huge = 0xfffffff0;
    std::memcpy(bytes.data() + name_at + 4 + 5, &huge, sizeof huge);
    EXPECT_EQ(decode(bytes).error(), ImageError::too_large);
}

}  // namespace
}  // namespace ms::utcp
