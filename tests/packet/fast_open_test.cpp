// Contract: TCP Fast Open (RFC 7413 §4-5): the server's cookies, early data and pending queue; the client's cookie request,
 // cache and SYN data.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

ScriptConfig fast_open_config() {
    ScriptConfig c;
    c.options.fast_open = true;
    return c;
}

// A first connection from the peer asks for a cookie and learns it (`tfo=learned`).
constexpr const char* kLearnCookie = R"(
listen 80
peer_port 40001
< S seq=0 win=65535 mss=1460 tfo len=100
> S. seq=0 ack=1 tfo=learn
< . seq=1 ack=1 win=512
event accepted
peer_port 40000
)";

// §4.1.1 and §4.2.2: a cookie request gets a cookie; the SYN's data is not taken, and the
// client sends it again after the handshake.
TEST(FastOpenServer, CookieRequestGetsACookieAndTheDataWaits) {
    PacketScript s(fast_open_config());
    s.run(R"(
listen 80
< S seq=0 win=65535 mss=1460 tfo len=100
> S. seq=0 ack=1 tfo=learn
state SYN_RECEIVED
< . seq=1 ack=1 win=512
state ESTABLISHED
event accepted
< . seq=1 ack=1 win=512 len=100
> . ack=101
app recv 100
)");
    EXPECT_EQ(s.stack().stats().fast_open_cookies_sent, 1u);
    EXPECT_EQ(s.stack().stats().fast_open_accepted, 0u);
    EXPECT_EQ(s.conn()->fast_open(), FastOpen::cookie_sent);
}

// §4.2.2: with a valid cookie the SYN's data is acknowledged in the SYN,ACK and given to
// the application before the handshake completes; the server may answer at once.
TEST(FastOpenServer, ValidCookieDeliversTheDataBeforeTheHandshakeCompletes) {
    PacketScript s(fast_open_config());
    s.run(kLearnCookie);
    s.run(R"(
< S seq=0 win=65535 mss=1460 tfo=learned len=100
> S. seq=0 ack=101 notfo
state SYN_RECEIVED
event accepted
event readable
app recv 100
app send 50
> . seq=1 ack=101 len=50
< . seq=101 ack=51 win=512
state ESTABLISHED
)");
    EXPECT_EQ(s.stack().stats().fast_open_accepted, 1u);
    EXPECT_EQ(s.conn()->fast_open(), FastOpen::data_accepted);
    EXPECT_EQ(std::count(s.handler().events.begin(), s.handler().events.end(), "accepted"), 0)
        << "the connection is announced once, not again when the handshake completes";
}

TEST(FastOpenServer, SynAckLostThenTheDataAndSynAckGoAgain) {
    PacketScript s(fast_open_config());
    s.run(kLearnCookie);
    s.run(R"(
< S seq=0 win=65535 mss=1460 tfo=learned len=100
> S. seq=0 ack=101
app send 50
> . seq=1 ack=101 len=50
+1000
> S. seq=0 ack=101
> . seq=1 ack=101 len=50
< . seq=101 ack=51 win=512
state ESTABLISHED
)");
}

// §4.1.2: an invalid cookie is treated as a request: the data waits, a valid cookie goes back.
TEST(FastOpenServer, InvalidCookieIsARequest) {
    PacketScript s(fast_open_config());
    s.run(R"(
listen 80
< S seq=0 win=65535 mss=1460 tfo=0102030405060708 len=100
> S. seq=0 ack=1 tfo=learn
state SYN_RECEIVED
)");
    EXPECT_EQ(s.stack().stats().fast_open_invalid, 1u);
    EXPECT_EQ(s.conn()->readable(), 0u);
    EXPECT_TRUE(s.handler().events.empty()) << "not announced before the handshake";
}

// §5.1: the listener bounds its Fast Open connections in SYN_RECEIVED; past the bound a
// valid cookie's data waits for the handshake like any other SYN's.
TEST(FastOpenServer, PendingQueueIsBounded) {
    ScriptConfig config = fast_open_config();
    config.fast_open_queue = 1;
    PacketScript s(config);
    s.run(kLearnCookie);
    s.run(R"(
< S seq=0 win=65535 mss=1460 tfo=learned len=100
> S. seq=0 ack=101
peer_port 40002
< S seq=0 win=65535 mss=1460 tfo=learned len=100
> S. seq=0 ack=1
peer_port 40000
< . seq=101 ack=1 win=512
state ESTABLISHED
peer_port 40003
< S seq=0 win=65535 mss=1460 tfo=learned len=100
> S. seq=0 ack=101
)");
    EXPECT_EQ(s.stack().stats().fast_open_queue_full, 1u);
    EXPECT_EQ(s.stack().stats().fast_open_accepted, 2u);
}

TEST(FastOpenServer, ListenerWithoutFastOpenIgnoresTheOption) {
    PacketScript s;
    s.run(R"(
listen 80
< S seq=0 win=65535 mss=1460 tfo len=100
> S. seq=0 ack=1 notfo
)");
    EXPECT_EQ(s.conn()->fast_open(), FastOpen::none);
}

// §4.1.1: with no cookie cached the client's SYN asks for one and carries no data; the
// SYN,ACK's cookie is cached with the server's MSS.
TEST(FastOpenClient, AsksForACookieThenSendsDataInTheNextSyn) {
    PacketScript s(fast_open_config());
    s.run(R"(
connect 80 send=300
> S seq=0 len=0 tfo=req
< S. seq=0 ack=1 win=65535 mss=1460 tfo=0102030405060708
> . seq=1 ack=1 len=300
)");
    EXPECT_EQ(s.conn()->fast_open(), FastOpen::cookie_requested);
    EXPECT_EQ(s.stack().fast_open_cache().size(), 1u);
    s.run(R"(
connect 80 send=300
> S seq=0 len=300 tfo=0102030405060708
< S. seq=0 ack=301 win=65535 mss=1460
> . seq=301 ack=1 len=0
state ESTABLISHED
event connected
)");
    EXPECT_EQ(s.conn()->fast_open(), FastOpen::data_acked);
}

// A first connection asks for a cookie; the server gives 0102030405060708.
constexpr const char* kLearnServerCookie = R"(
connect 80
> S seq=0 tfo=req
< S. seq=0 ack=1 win=65535 mss=1460 tfo=0102030405060708
> . seq=1 ack=1
)";

// §4.2.1: the SYN's data is at most the server's MSS less the SYN's options (here MSS 4,
// window scale 3, SACK-permitted 2, timestamps 10 and the cookie 10, padded to 32:
// 1460 - 32 = 1428 bytes); what the SYN,ACK does not acknowledge goes again at once.
TEST(FastOpenClient, DataTheServerDidNotTakeGoesAfterTheHandshake) {
    PacketScript s(fast_open_config());
    s.run(kLearnServerCookie);
    s.run(R"(
connect 80 send=2920
> S seq=0 len=1428 tfo=0102030405060708
< S. seq=0 ack=1 win=65535 mss=1460
> . seq=1 ack=1 len=1460
> . seq=1461 ack=1 len=1460
)");
    EXPECT_EQ(s.conn()->fast_open(), FastOpen::data_refused);
}

TEST(FastOpenClient, RetransmittedSynCarriesNoData) {
    PacketScript s(fast_open_config());
    s.run(kLearnServerCookie);
    s.run(R"(
connect 80 send=300
> S seq=0 len=300 tfo=0102030405060708
+1000
> S seq=0 len=0 tfo=0102030405060708
< S. seq=0 ack=1 win=65535 mss=1460
> . seq=1 ack=1 len=300
)");
}

}  // namespace
}  // namespace ms::utcp::test
