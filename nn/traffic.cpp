#include "nn/traffic.h"

namespace gnet {
namespace {
thread_local TrafficScope* tls_scope = nullptr;
}

TrafficScope::TrafficScope() : outer_(tls_scope) {
    tls_scope = this;
}

TrafficScope::~TrafficScope() {
    tls_scope = outer_;
}

double TrafficScope::bytes() const {
    double b = 0;
    for (const auto& [name, t] : ops_)
        b += t.bytes;
    return b;
}

double TrafficScope::flops() const {
    double f = 0;
    for (const auto& [name, t] : ops_)
        f += t.flops;
    return f;
}

void count_traffic(const char* op, double bytes, double flops) {
    TrafficScope* s = tls_scope;
    if (!s) return;
    OpTraffic& t = s->ops_[op];
    ++t.calls;
    t.bytes += bytes;
    t.flops += flops;
}

}  // namespace gnet
