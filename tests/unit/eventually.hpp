// Contract: a deadline for tests that wait on another thread; never a speed check.
#pragma once

#include <chrono>
#include <thread>

namespace ms::test {

// Polls `done` until it holds or five seconds pass.
template <class Pred>
bool eventually(Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return true;
}

}  // namespace ms::test
