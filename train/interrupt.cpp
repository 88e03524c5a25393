#include "train/interrupt.h"

#include <signal.h>

#include <atomic>
#include <csignal>

namespace gnet {

namespace {

std::atomic<bool> g_requested{false};

extern "C" void on_signal(int sig) {
    if (g_requested.exchange(true)) {
        // Second signal: the default action (terminate) right away.
        ::signal(sig, SIG_DFL);
        ::raise(sig);
    }
}

}  // namespace

void install_interrupt_handler() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
}

bool interrupt_requested() {
    return g_requested.load(std::memory_order_relaxed);
}

void request_interrupt(bool on) {
    g_requested.store(on);
}

}  // namespace gnet
