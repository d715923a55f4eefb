// Contract: flow control (RFC 9293 §3.8.6, §3.10.7.4, RFC 1122 §4.2.3.3-4): the receive window, silly window avoidance,
 // window updates, zero-window probes.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

ScriptConfig small_receive_buffer() {
    ScriptConfig c;
    c.options.recv_buffer = 4096;  // no window scaling: the window is the buffer
    return c;
}

// The opening of kPassiveOpen with a 4 KB receive buffer (window scale 0).
constexpr const char* kSmallWindowOpen = R"(
listen 80
< S seq=0 win=65535 mss=1460 ws=7
> S. seq=0 ack=1 win=4096 ws=0
< . seq=1 ack=1 win=512
state ESTABLISHED
)";

TEST(FlowControl, DataBeyondTheWindowIsTrimmed) {
    PacketScript s(small_receive_buffer());
    s.run(kSmallWindowOpen);
    s.run(R"(
< . seq=1 ack=1 win=512 len=5000
> . ack=4097 win=0
# Entirely beyond the (now zero) window: not acceptable, answered with an ACK.
< . seq=4097 ack=1 win=512 len=100
> . ack=4097 win=0
app recv 4096
> . ack=4097 win=4096
)");
}

TEST(FlowControl, ReceiverAvoidsSillyWindowUpdates) {
    PacketScript s(small_receive_buffer());
    s.run(kSmallWindowOpen);
    // RFC 9293 §3.8.6.2.2: the window reopens only in steps of min(buffer/2, MSS).
    s.run(R"(
< . seq=1 ack=1 win=512 len=4096
> . ack=4097 win=0
app recv 100
> none
app recv 1900
> . ack=4097 win=2000
app recv 2096
> . ack=4097 win=4096
)");
}

TEST(FlowControl, SenderAvoidsSillyWindowSegments) {
    PacketScript s;
    // A peer without window scaling that offers 1000 bytes, then only 100.
    s.run(R"(
listen 80
< S seq=0 win=1000 mss=1460
> S. seq=0 ack=1
< . seq=1 ack=1 win=1000
app send 3000
> . seq=1 len=1000
> none
< . seq=1 ack=1001 win=100
> none
< . seq=1 ack=1001 win=3000
> . seq=1001 len=1460
> none
< . seq=1 ack=2461 win=3000
> . seq=2461 len=540
)");
}

TEST(FlowControl, SmallWindowIsUsedWhenTheOverrideTimerFires) {
    PacketScript s;
    // RFC 1122 §4.2.3.4: silly-window avoidance holds a small segment, but not forever.
    s.run(R"(
listen 80
< S seq=0 win=2000 mss=1460
> S. seq=0 ack=1
< . seq=1 ack=1 win=2000
app send 5000
> . seq=1 len=1460
> none
< . seq=1 ack=1461 win=500
> none
+200
> . seq=1461 len=500
)");
}

TEST(FlowControl, ReorderedOldAckCannotShrinkTheWindow) {
    PacketScript s;
    s.run(kPassiveOpen);
    // Same SEQ and ACK: the later-sent (larger) window may have overtaken the earlier.
    s.run(R"(
app send 100
> . seq=1 len=100
< . seq=1 ack=101 win=512
< . seq=1 ack=101 win=2
app nodelay on
app send 2000
> . seq=101 len=1460
> . seq=1561 len=540
)");
}

// RFC 9293 §3.10.7.4 (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK): a zero window that comes
// on a data segment with the same SEQ and ACK as the last update still closes the window,
// as Linux's tcp_may_update_window accepts it. Nothing more goes until it opens.
TEST(FlowControl, ZeroWindowWithTheSameSeqAndAckClosesTheWindow) {
    PacketScript s;
    s.run(kPassiveOpen);
    s.run(R"(
app send 100
> . seq=1 len=100
< . seq=1 ack=101 win=512
< . seq=1 ack=101 win=0 len=10
> . seq=101 ack=11
app send 100
> none
# The persist timer probes with one octet.
+200
> . seq=101 len=1
)");
}

TEST(FlowControl, ZeroWindowIsProbedWithBackoffUntilItOpens) {
    PacketScript s;
    s.run(R"(
listen 80
< S seq=0 win=65535 mss=1460
> S. seq=0 ack=1
< . seq=1 ack=1 win=0
app send 100
> none
# The persist timer (the RTO, 200 ms after the handshake's RTT sample) sends one octet.
+200
> . seq=1 len=1
+399
> none
+1
> . seq=1 len=1
# The peer takes nothing and opens its window: everything goes, probe octet included.
< . seq=1 ack=1 win=1000
> . seq=1 len=100
)");
    EXPECT_EQ(s.conn()->stats().window_probes, 2u);
}

TEST(FlowControl, ProbeOctetTakenByThePeerIsNotSentAgain) {
    PacketScript s;
    s.run(R"(
listen 80
< S seq=0 win=65535 mss=1460
> S. seq=0 ack=1
< . seq=1 ack=1 win=0
app send 100
+200
> . seq=1 len=1
< . seq=1 ack=2 win=1000
> . seq=2 len=99
)");
}

}  // namespace
}  // namespace ms::utcp::test
