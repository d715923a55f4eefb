// Contract: window scaling (RFC 7323 §2): the peer's shift applies to its window; a SYN,ACK without the option turns scaling
// off.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ms::utcp::test {
namespace {

TEST(WindowScale, WindowScaleAppliesToThePeersWindow) {
    PacketScript s;
    s.run(R"(
listen 80
< S seq=0 win=65535 mss=1000 ws=2
> S. seq=0 ack=1 ws=3
# 1000 << 2 = 4000 bytes of window.
< . seq=1 ack=1 win=1000
app send 10000
> . seq=1 len=1000
> . seq=1001 len=1000
> . seq=2001 len=1000
> . seq=3001 len=1000
> none
)");
}

TEST(WindowScale, SynAckWithoutWindowScaleTurnsScalingOff) {
    PacketScript s;
    s.run(R"(
connect 80
> S seq=0 ws=3
< S. seq=0 ack=1 win=1000 mss=1000
> . seq=1 ack=1 win=65535
app send 3000
> . seq=1 len=1000
> none
)");
}

}  // namespace
}  // namespace ms::utcp::test
