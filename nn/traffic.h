// What a model's step asks of the memory system and the arithmetic units, counted op by op from
// the layer calls themselves (nn/layers_bf16.cpp, and the float32 layer calls the bf16 model
// makes), for the roofline in docs/BENCHMARKS.md (bench_step_traffic).
//
// Each call adds its compulsory device-memory traffic, every operand read once and every result
// written once (what a tile re-reads from L2 or shared memory is not counted: a lower bound on
// DRAM bytes), and its FLOPs (2 per multiply-add of the convolutions and the fc layer; the
// elementwise passes count bytes only). Counting is off unless a TrafficScope is alive on the
// calling thread, so it costs a branch per layer call otherwise.
#pragma once

#include <map>
#include <string>

namespace gnet {

struct OpTraffic {
    long long calls = 0;
    double bytes = 0;
    double flops = 0;
};

class TrafficScope {
  public:
    TrafficScope();
    ~TrafficScope();
    TrafficScope(const TrafficScope&) = delete;
    TrafficScope& operator=(const TrafficScope&) = delete;
    const std::map<std::string, OpTraffic>& ops() const { return ops_; }
    double bytes() const;
    double flops() const;

  private:
    friend void count_traffic(const char* op, double bytes, double flops);
    std::map<std::string, OpTraffic> ops_;
    TrafficScope* outer_;
};

// Adds one call of `op` to the innermost live TrafficScope of this thread (none: nothing).
void count_traffic(const char* op, double bytes, double flops = 0);

}  // namespace gnet
