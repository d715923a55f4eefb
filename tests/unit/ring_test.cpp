// The port memory ABI: layout, the application/switch round trip, and the switch's
// defences against an application that corrupts its own rings.
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string>

#include "ring/app_ring.hpp"
#include "ring/socket_table.hpp"
#include "ring/switch_ring.hpp"

namespace ms::ring {
namespace {

constexpr std::uint32_t kSlots = 8;

// The bytes of the single-slot frame `k` slots past the switch's cursor; empty on a fault.
wire::Bytes head_of(SwitchTxRing& ring, std::uint32_t k) {
    TxFrame f;
    return ring.whole_frame(k, k + 1, f) == TxFrameStatus::ready ? f.head : wire::Bytes{};
}

TEST(Layout, RejectsGeometryOutOfRange) {
    Layout l;
    EXPECT_FALSE(Layout::compute(0, 8, 0, l));
    EXPECT_FALSE(Layout::compute(kMaxRingPairs + 1, 8, 0, l));
    EXPECT_FALSE(Layout::compute(1, 1, 0, l));
    EXPECT_FALSE(Layout::compute(1, kMaxSlotsPerRing + 1, 0, l));
    ASSERT_TRUE(Layout::compute(2, 8, 0, l));
    EXPECT_EQ(l.ring_count(), 4u);
    EXPECT_EQ(l.buffers_offset % 4096, 0u);
    EXPECT_EQ(l.sockets_offset, l.buffers_offset + 4ull * 8 * kBufferSize);
    EXPECT_EQ(l.data_offset, (l.sockets_offset + kSocketTableBytes + 4095) / 4096 * 4096);
    EXPECT_EQ(l.region_size, l.data_offset) << "no data area asked for";
    ASSERT_TRUE(Layout::compute(2, 8, 5000, l));
    EXPECT_EQ(l.data_size, 8192u) << "the data area is whole pages";
    EXPECT_EQ(l.region_size, l.data_offset + l.data_size);
    EXPECT_FALSE(Layout::compute(2, 8, kMaxDataBytes + 1, l));
    EXPECT_EQ(Region::create(0, 8).error().error, RegionError::bad_geometry);
}

TEST(Region, MapsWhatCreateWroteAndRejectsAForeignFile) {
    Region r = Region::create(2, kSlots).value();
    EXPECT_EQ(r.header().magic, kRegionMagic);
    Region mapped = Region::map(::dup(r.fd())).value();
    EXPECT_EQ(mapped.layout().region_size, r.layout().region_size);
    r.slots(tx_ring(1))[3].len = 77;
    EXPECT_EQ(mapped.slots(tx_ring(1))[3].len, 77);  // the same memory

    r.header().abi_version = 99;
    EXPECT_EQ(Region::map(::dup(r.fd())).error().error, RegionError::header_mismatch);
    const int small = ::memfd_create("small", MFD_CLOEXEC);
    EXPECT_EQ(Region::map(small).error().error, RegionError::header_mismatch);
}

TEST(Rings, CarryFramesBothWays) {
    Region r = Region::create(1, kSlots).value();
    AppTxRing app_tx(r, 0);
    SwitchTxRing sw_tx(r, 0);
    EXPECT_EQ(app_tx.space(), kSlots - 1);
    for (std::uint32_t k = 0; k < 5; ++k) {
        app_tx.buffer(k)[0] = static_cast<std::uint8_t>(k);
        app_tx.set_length(k, static_cast<std::uint16_t>(60 + k));
    }
    app_tx.publish(5);
    ASSERT_EQ(sw_tx.sync(), 5u);
    for (std::uint32_t k = 0; k < 5; ++k) {
        EXPECT_EQ(head_of(sw_tx, k).size(), 60 + k);
        EXPECT_EQ(head_of(sw_tx, k)[0], k);
    }
    EXPECT_FALSE(sw_tx.release(5));  // the application is not waiting for room
    EXPECT_EQ(app_tx.space(), kSlots - 1);

    AppRxRing app_rx(r, 0);
    SwitchRxRing sw_rx(r, 0);
    EXPECT_EQ(app_rx.available(), 0u);
    ASSERT_EQ(sw_rx.sync(), kSlots - 1);
    for (std::uint32_t k = 0; k < 3; ++k) {
        sw_rx.buffer(k)[0] = static_cast<std::uint8_t>(10 + k);
        sw_rx.set_length(k, 64);
    }
    sw_rx.publish(3);
    EXPECT_FALSE(sw_rx.application_asked_for_kick());
    ASSERT_EQ(app_rx.available(), 3u);
    EXPECT_EQ(app_rx.frame(2)[0], 12);
    app_rx.release(3);
    EXPECT_EQ(sw_rx.sync(), kSlots - 1);
    EXPECT_FALSE(sw_tx.failed());
    EXPECT_FALSE(sw_rx.failed());
}

TEST(Rings, WrapAroundManyTimes) {
    Region r = Region::create(1, kSlots).value();
    AppTxRing app(r, 0);
    SwitchTxRing sw(r, 0);
    std::uint32_t next = 0;
    for (int round = 0; round < 100; ++round) {
        const std::uint32_t n = 1 + round % (kSlots - 1);
        ASSERT_GE(app.space(), n);
        for (std::uint32_t k = 0; k < n; ++k) {
            app.buffer(k)[0] = static_cast<std::uint8_t>(next + k);
            app.set_length(k, 14);
        }
        app.publish(n);
        ASSERT_EQ(sw.sync(), n);
        for (std::uint32_t k = 0; k < n; ++k) ASSERT_EQ(head_of(sw, k)[0], static_cast<std::uint8_t>(next + k));
        (void)sw.release(n);
        next += n;
    }
}

TEST(Rings, NeedWakeupKicksOnlyASleeper) {
    Region r = Region::create(1, kSlots).value();
    EventFd to_switch;
    AppTxRing app_tx(r, 0, &to_switch);
    SwitchTxRing sw_tx(r, 0);
    // The switch goes to sleep on an empty ring and asks for a kick.
    EXPECT_FALSE(sw_tx.prepare_to_sleep());
    app_tx.set_length(0, 60);
    app_tx.publish(1);
    std::uint64_t count = 0;
    ASSERT_EQ(::read(to_switch.fd(), &count, sizeof count), 8);
    EXPECT_EQ(count, 1u);
    sw_tx.wake();
    app_tx.set_length(0, 60);
    app_tx.publish(1);  // the switch is awake: no kick
    EXPECT_LT(::read(to_switch.fd(), &count, sizeof count), 0);
    // With frames pending, the switch must not sleep.
    EXPECT_TRUE(sw_tx.prepare_to_sleep());

    // A writer that waits for room is kicked when the switch gives slots back.
    while (app_tx.space() > 0) {
        app_tx.set_length(0, 60);
        app_tx.publish(1);
    }
    EXPECT_FALSE(app_tx.prepare_to_sleep());  // the ring is full: sleep, and ask for a kick
    ASSERT_GT(sw_tx.sync(), 0u);
    EXPECT_TRUE(sw_tx.release(1));
    app_tx.wake();

    AppRxRing app_rx(r, 0);
    SwitchRxRing sw_rx(r, 0);
    EXPECT_FALSE(app_rx.prepare_to_sleep());  // nothing to read: sleep, and ask for a kick
    ASSERT_GT(sw_rx.sync(), 0u);
    sw_rx.set_length(0, 60);
    sw_rx.publish(1);
    EXPECT_TRUE(sw_rx.application_asked_for_kick());
    app_rx.wake();
    EXPECT_TRUE(app_rx.prepare_to_sleep());  // a frame is there: do not sleep
}

// ---- Hostile applications ----

class HostileRing : public ::testing::Test {
protected:
    Region region_ = Region::create(1, kSlots).value();
    RingControl& tx_ = region_.control(tx_ring(0));
    RingControl& rx_ = region_.control(rx_ring(0));
    SwitchTxRing sw_tx_{region_, 0};
    SwitchRxRing sw_rx_{region_, 0};
    std::span<Slot> tx_slots_ = region_.slots(tx_ring(0));
    std::span<Slot> rx_slots_ = region_.slots(rx_ring(0));

    void publish_tx(std::uint32_t head) {
        tx_.cur = head;
        tx_.head = head;
    }
    void expect_one_frame_accepted() {
        tx_slots_[0].len = 60;
        publish_tx(1);
        ASSERT_EQ(sw_tx_.sync(), 1u);
        EXPECT_EQ(head_of(sw_tx_, 0).size(), 60u);
        EXPECT_FALSE(sw_tx_.failed());
    }
    // After a fault the ring stays stopped, whatever the application does next.
    void expect_stopped() {
        publish_tx(1);
        tx_slots_[0].len = 60;
        EXPECT_EQ(sw_tx_.sync(), 0u);
    }
};

TEST_F(HostileRing, HeadBeyondTheRing) {
    publish_tx(kSlots);
    EXPECT_EQ(sw_tx_.sync(), 0u);
    EXPECT_EQ(sw_tx_.fault(), RingFault::head_out_of_range);
    expect_stopped();
}

TEST_F(HostileRing, HeadHugeValue) {
    publish_tx(0xffffffffu);
    EXPECT_EQ(sw_tx_.sync(), 0u);
    EXPECT_EQ(sw_tx_.fault(), RingFault::head_out_of_range);
}

TEST_F(HostileRing, RxHeadPastTail) {
    // The switch filled 2 frames; the application claims to have consumed 5.
    ASSERT_EQ(sw_rx_.sync(), kSlots - 1);
    rx_slots_[0].len = rx_slots_[1].len = 60;
    sw_rx_.publish(2);
    rx_.cur = rx_.head = 5;
    EXPECT_EQ(sw_rx_.sync(), 0u);
    EXPECT_EQ(sw_rx_.fault(), RingFault::head_outside_window);
}

TEST_F(HostileRing, RxHeadMovedBackwards) {
    ASSERT_EQ(sw_rx_.sync(), kSlots - 1);
    sw_rx_.publish(4);
    rx_.cur = rx_.head = 3;
    ASSERT_EQ(sw_rx_.sync(), kSlots - 1 - 1);  // 3 consumed, 1 still queued
    rx_.cur = rx_.head = 2;
    EXPECT_EQ(sw_rx_.sync(), 0u);
    EXPECT_EQ(sw_rx_.fault(), RingFault::head_outside_window);
}

TEST_F(HostileRing, CurOutOfRangeOrBehindHead) {
    tx_.head = 2;
    tx_.cur = kSlots + 3;
    EXPECT_EQ(sw_tx_.sync(), 0u);
    EXPECT_EQ(sw_tx_.fault(), RingFault::cur_out_of_range);

    SwitchTxRing other(region_, 0);
    tx_.cur = 1;  // behind head
    EXPECT_EQ(other.sync(), 0u);
    EXPECT_EQ(other.fault(), RingFault::cur_out_of_range);
}

TEST_F(HostileRing, TailWrittenByTheApplication) {
    tx_.tail = 3;  // moved backwards: only the switch may store tail
    publish_tx(1);
    EXPECT_EQ(sw_tx_.sync(), 0u);
    EXPECT_EQ(sw_tx_.fault(), RingFault::tail_overwritten);

    rx_.tail = kSlots - 1;  // moved forwards, to fake frames
    EXPECT_EQ(sw_rx_.sync(), 0u);
    EXPECT_EQ(sw_rx_.fault(), RingFault::tail_overwritten);
}

// Each corruption of a published tx slot, and the fault it must latch.
TEST_F(HostileRing, EveryBadTxSlotIsCaughtBeforeItIsRead) {
    const Slot good = tx_slots_[0];
    const auto region_size = static_cast<std::uint32_t>(region_.layout().region_size);
    struct Case {
        const char* what;
        Slot slot;
        RingFault fault;
    };
    const Case cases[] = {
        {"length beyond the largest frame", {good.offset, kMaxFrameSize + 1, 0}, RingFault::slot_too_long},
        {"length of a whole buffer", {good.offset, kBufferSize, 0}, RingFault::slot_too_long},
        {"shorter than an Ethernet header", {good.offset, 13, 0}, RingFault::slot_too_long},
        {"offset outside the region", {region_size, 60, 0}, RingFault::slot_bad_offset},
        {"offset into the ring metadata", {0, 60, 0}, RingFault::slot_bad_offset},
        {"offset into the socket table",
         {static_cast<std::uint32_t>(region_.layout().sockets_offset), 60, 0},
         RingFault::slot_bad_offset},
        {"offset straddling two buffers", {good.offset + 1, 60, 0}, RingFault::slot_bad_offset},
    };
    for (const Case& c : cases) {
        Region region = Region::create(1, kSlots).value();
        SwitchTxRing sw(region, 0);
        region.slots(tx_ring(0))[0] = c.slot;
        region.control(tx_ring(0)).cur = region.control(tx_ring(0)).head = 1;
        ASSERT_EQ(sw.sync(), 1u) << c.what;
        EXPECT_TRUE(head_of(sw, 0).empty()) << c.what;
        EXPECT_EQ(sw.fault(), c.fault) << c.what;
        EXPECT_EQ(sw.sync(), 0u) << c.what << ": a failed ring stays stopped";
    }
}

// A super-segment spans a chain of slots: the switch sees it whole, or waits for the
// rest while the application has published only part of it.
TEST_F(HostileRing, ASlotChainIsReadWholeOnceComplete) {
    tx_slots_[0] = {tx_slots_[0].offset, 100, kSlotSegment | kSlotMore, 1448, 0, 0};
    tx_slots_[1] = {tx_slots_[1].offset, static_cast<std::uint16_t>(kBufferSize), kSlotMore, 0, 0, 0};
    tx_slots_[2] = {tx_slots_[2].offset, 7, 0, 0, 0, 0};
    publish_tx(2);
    TxFrame f;
    ASSERT_EQ(sw_tx_.sync(), 2u);
    EXPECT_EQ(sw_tx_.whole_frame(0, 2, f), TxFrameStatus::incomplete);
    publish_tx(3);
    ASSERT_EQ(sw_tx_.sync(), 3u);
    ASSERT_EQ(sw_tx_.whole_frame(0, 3, f), TxFrameStatus::ready);
    EXPECT_TRUE(f.segment());
    EXPECT_EQ(f.slots, 3u);
    EXPECT_EQ(f.gso_size, 1448);
    EXPECT_EQ(f.head.size(), 100u);
    ASSERT_EQ(f.payload_pieces().size(), 2u);
    EXPECT_EQ(f.payload_pieces()[0].size(), kBufferSize);
    EXPECT_EQ(f.payload_pieces()[1].size(), 7u);
    EXPECT_FALSE(sw_tx_.failed());
}

// Each corruption of a slot chain, and the fault it must latch.
TEST(HostileChain, EveryBadChainIsCaughtBeforeItIsRead) {
    struct Case {
        const char* what;
        std::uint16_t first_flags;
        std::uint16_t second_flags;
        std::uint16_t second_len;
        RingFault fault;
    };
    const Case cases[] = {
        {"an unknown flag", 0x80, 0, 60, RingFault::slot_bad_flags},
        {"a chain without kSlotSegment", kSlotMore, 0, 60, RingFault::slot_bad_flags},
        {"kSlotSegment inside a chain", kSlotSegment | kSlotMore, kSlotSegment, 60, RingFault::slot_bad_flags},
        {"an empty payload slot", kSlotSegment | kSlotMore, 0, 0, RingFault::slot_too_long},
        {"a payload slot beyond its buffer", kSlotSegment | kSlotMore, 0, static_cast<std::uint16_t>(kBufferSize + 1),
         RingFault::slot_too_long},
    };
    for (const Case& c : cases) {
        Region region = Region::create(1, kSlots).value();
        SwitchTxRing sw(region, 0);
        std::span<Slot> slots = region.slots(tx_ring(0));
        slots[0].len = 60;
        slots[0].flags = c.first_flags;
        slots[0].gso_size = 1448;
        slots[1].len = c.second_len;
        slots[1].flags = c.second_flags;
        region.control(tx_ring(0)).cur = region.control(tx_ring(0)).head = 2;
        ASSERT_EQ(sw.sync(), 2u) << c.what;
        TxFrame f;
        EXPECT_EQ(sw.whole_frame(0, 2, f), TxFrameStatus::fault) << c.what;
        EXPECT_EQ(sw.fault(), c.fault) << c.what;
        EXPECT_EQ(sw.sync(), 0u) << c.what << ": a failed ring stays stopped";
    }
}

// A payload slot may refer to any bytes of the data area, and to nothing beyond it.
TEST(HostileChain, PayloadReferencesStayInsideTheDataArea) {
    struct Case {
        const char* what;
        std::uint64_t offset;  // from the data area's start
        std::uint16_t len;
        RingFault fault;       // none: accepted
    };
    const Case cases[] = {
        {"a reference inside the area", 100, 5000, RingFault::none},
        {"a reference to the area's last byte", 8191, 1, RingFault::none},
        {"a reference running past the area", 8000, 500, RingFault::slot_bad_offset},
        {"an empty reference", 100, 0, RingFault::slot_too_long},
        {"a reference just past the area", 8192, 1, RingFault::slot_bad_offset},
    };
    for (const Case& c : cases) {
        Region region = Region::create(1, kSlots, 8192).value();
        SwitchTxRing sw(region, 0);
        std::span<Slot> slots = region.slots(tx_ring(0));
        slots[0].len = 60;
        slots[0].flags = kSlotSegment | kSlotMore;
        slots[0].gso_size = 1448;
        slots[1].offset = static_cast<std::uint32_t>(region.layout().data_offset + c.offset);
        slots[1].len = c.len;
        region.control(tx_ring(0)).cur = region.control(tx_ring(0)).head = 2;
        ASSERT_EQ(sw.sync(), 2u) << c.what;
        TxFrame f;
        const TxFrameStatus st = sw.whole_frame(0, 2, f);
        EXPECT_EQ(sw.fault(), c.fault) << c.what;
        if (c.fault != RingFault::none) continue;
        ASSERT_EQ(st, TxFrameStatus::ready) << c.what;
        ASSERT_EQ(f.payload_pieces().size(), 1u);
        EXPECT_EQ(f.payload_pieces()[0].data(), region.data_area().data() + c.offset) << c.what;
        EXPECT_EQ(f.payload_pieces()[0].size(), c.len) << c.what;
    }
}

TEST(HostileChain, AChainLongerThanTheLimitOrTheRingFails) {
    for (const std::uint32_t ring_slots : {kMaxChainSlots + 8, std::uint32_t{8}}) {
        Region region = Region::create(1, ring_slots).value();
        SwitchTxRing sw(region, 0);
        std::span<Slot> slots = region.slots(tx_ring(0));
        for (Slot& s : slots) {
            s.len = 60;
            s.flags = kSlotMore;
        }
        slots[0].flags = kSlotSegment | kSlotMore;
        region.control(tx_ring(0)).cur = region.control(tx_ring(0)).head = ring_slots - 1;
        const std::uint32_t pending = sw.sync();
        TxFrame f;
        EXPECT_EQ(sw.whole_frame(0, pending, f), TxFrameStatus::fault) << ring_slots;
        EXPECT_EQ(sw.fault(), RingFault::chain_too_long) << ring_slots;
    }
}

TEST_F(HostileRing, RxSlotOffsetCorrupted) {
    rx_slots_[0].offset = 12345;
    ASSERT_EQ(sw_rx_.sync(), kSlots - 1);
    EXPECT_TRUE(sw_rx_.buffer(0).empty());
    EXPECT_EQ(sw_rx_.fault(), RingFault::slot_bad_offset);
    sw_rx_.publish(1);  // a failed ring publishes nothing
    EXPECT_EQ(region_.control(rx_ring(0)).tail, 0u);
}

TEST_F(HostileRing, SwappedBufferWithinTheRegionIsAllowed) {
    // netmap-style buffer swapping: any buffer of the port's own region is fine.
    tx_slots_[0].offset = static_cast<std::uint32_t>(region_.layout().buffer_offset(rx_ring(0), 5));
    expect_one_frame_accepted();
}

TEST_F(HostileRing, HeaderCorruptionDoesNotMoveTheSwitch) {
    // The switch keeps its own geometry: a rewritten header changes nothing for it.
    region_.header().slots_per_ring = 1u << 30;
    region_.header().buffers_offset = 0;
    expect_one_frame_accepted();
}

TEST(RingFaultNames, AreDistinct) {
    for (std::size_t i = 0; i < kRingFaultCount; ++i) {
        for (std::size_t j = i + 1; j < kRingFaultCount; ++j) {
            EXPECT_NE(to_string(static_cast<RingFault>(i)), to_string(static_cast<RingFault>(j)));
        }
    }
}

}  // namespace
}  // namespace ms::ring

namespace ms::ring {
namespace {

SocketRecord established_record() {
    SocketRecord r{};
    r.state = 4;
    r.family = 4;
    r.options = sockopt::sack | sockopt::timestamps;
    std::strcpy(r.congestion, "cubic");
    return r;
}

// One page read the daemon's way, with what it found.
struct PageReader {
    std::array<SocketRecord, 8> out{};
    SocketPage page;
    std::size_t kept = 0;
    PageRead read(const std::vector<std::uint8_t>& table, std::uint32_t first) {
        return read_page(table.data(), first, out, page, kept);
    }
};

// The daemon's side of the socket table: hostile records are left out, a snapshot being
// written is reported busy, and no claimed count or offset reads past the table.
TEST(SocketTable, ReadPageKeepsOnlyValidRecords) {
    std::vector<std::uint8_t> table(kSocketTableBytes);
    SocketRecord junk;
    std::memset(&junk, 0xff, sizeof junk);
    SocketRecord unterminated = established_record();
    std::memset(unterminated.congestion, 'a', sizeof unterminated.congestion);
    SocketRecord bad_state = established_record();
    bad_state.state = static_cast<std::uint8_t>(kTcpStateNames.size());
    const SocketRecord records[] = {established_record(), junk, unterminated, bad_state, established_record()};
    publish_sockets(table.data(), records, 7, 1234);
    PageReader r;
    ASSERT_EQ(r.read(table, 0), PageRead::ok);
    EXPECT_EQ(r.kept, 2u);
    EXPECT_EQ(r.page.invalid, 3u);
    EXPECT_EQ(r.page.count, 5u);
    EXPECT_EQ(r.page.total, 7u);
    EXPECT_EQ(r.page.published_ms, 1234u);
    EXPECT_EQ(std::string(r.out[1].congestion), "cubic");
}

TEST(SocketTable, HostileHeaderNeverReadsPastTheTable) {
    std::vector<std::uint8_t> table(kSocketTableBytes);
    publish_sockets(table.data(), std::array{established_record()}, 1, 0);
    auto& header = *reinterpret_cast<SocketTableHeader*>(table.data());
    header.count = 0xffffffff;  // claims more than the table holds
    PageReader r;
    ASSERT_EQ(r.read(table, kSocketSlots - 2), PageRead::ok);
    EXPECT_EQ(r.page.count, kSocketSlots);
    EXPECT_EQ(r.page.invalid, 2u) << "the zeroed last two slots are no records";
    ASSERT_EQ(r.read(table, 0xfffffff0), PageRead::ok);
    EXPECT_EQ(r.kept, 0u);
    header.generation = 3;  // odd: the application is writing
    EXPECT_EQ(r.read(table, 0), PageRead::busy);
}

TEST(SocketTable, ARequestIsSeenAndASnapshotReplacesTheLast) {
    std::vector<std::uint8_t> table(kSocketTableBytes);
    EXPECT_EQ(sockets_requested(table.data()), 0u);
    request_sockets(table.data());
    EXPECT_EQ(sockets_requested(table.data()), 1u);
    publish_sockets(table.data(), std::array{established_record(), established_record()}, 2, 0);
    publish_sockets(table.data(), std::array{established_record()}, 1, 0);
    PageReader r;
    ASSERT_EQ(r.read(table, 0), PageRead::ok);
    EXPECT_EQ(r.kept, 1u);
    EXPECT_EQ(r.page.generation, 4u);
}

}  // namespace
}  // namespace ms::ring
