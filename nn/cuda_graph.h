// The pieces of a GPU step pipeline: owned streams and events, and CUDA graphs (a stream's work
// captured once and replayed with one launch). In a build without CUDA every constructor that
// would need a GPU throws an Error.
#pragma once

#include <functional>

#include "nn/device.h"

struct CUevent_st;
struct CUgraphExec_st;

namespace gnet {

// A stream of its own (blocking: it orders with the legacy default stream, so copies other code
// queues there stay ordered with it).
class OwnedStream {
  public:
    OwnedStream() = default;
    static OwnedStream create();
    ~OwnedStream();
    OwnedStream(OwnedStream&& other) noexcept;
    OwnedStream& operator=(OwnedStream&& other) noexcept;
    Stream get() const { return stream_; }

  private:
    Stream stream_ = nullptr;
};

// An event without timing: record on one stream, wait for it on another or on the host.
class StreamEvent {
  public:
    StreamEvent() = default;
    static StreamEvent create();
    ~StreamEvent();
    StreamEvent(StreamEvent&& other) noexcept;
    StreamEvent& operator=(StreamEvent&& other) noexcept;
    void record(Stream stream) const;
    void wait_on(Stream stream) const;  // `stream`'s later work waits for the recorded point
    void synchronize() const;           // the host waits for it

  private:
    CUevent_st* event_ = nullptr;
};

// What `record` queues on `stream` (not the legacy stream), captured into an executable graph.
// `record` must only queue work on `stream`: no synchronisation, allocation, host reads of device
// results or other streams (CUDA rejects those during capture, and so does the emulated
// device). If it throws, or the capture fails, the stream is left as it was and the error is
// rethrown. Kernel arguments, pointers included, are fixed at capture; what they point to is read
// when the graph runs.
class CudaGraph {
  public:
    CudaGraph() = default;
    static CudaGraph capture(Stream stream, const std::function<void()>& record);
    ~CudaGraph();
    CudaGraph(CudaGraph&& other) noexcept;
    CudaGraph& operator=(CudaGraph&& other) noexcept;
    void launch(Stream stream) const;
    bool empty() const { return exec_ == nullptr; }

  private:
    CUgraphExec_st* exec_ = nullptr;
};

}  // namespace gnet
