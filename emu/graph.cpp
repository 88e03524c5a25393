// CUDA graphs on the emulated device: stream capture and replay.
//
// While a stream is captured, every piece of work queued on it (kernel launches, async copies
// and memsets, event records, graph launches) is recorded, with its arguments as they were at
// the call, instead of run; cudaStreamEndCapture hands the list over as a graph, and
// cudaGraphLaunch replays an instantiated one in order (the emulated streams run in issue order,
// so order is all a graph's dependencies need here). A host copy node reads its host memory when
// the graph runs, as on a GPU.
//
// What CUDA forbids during capture is an error here too, and invalidates the capture, so that
// code which would break under capture on a GPU breaks in CI first: synchronous calls
// (cudaMemcpy, cudaMemset, cudaStreamSynchronize, cudaDeviceSynchronize, event waits on the
// host), allocation and freeing, the legacy stream while a global-mode capture is active, and a
// capturing stream waiting on an event recorded outside its capture.
#include <algorithm>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "emu/runtime_internal.h"

struct CUgraph_st {
    std::vector<gnet::emu::StreamWork> nodes;
};
struct CUgraphExec_st {
    std::vector<gnet::emu::StreamWork> nodes;
};

namespace gnet::emu {

struct Capture {
    cudaStream_t stream;
    cudaStreamCaptureMode mode;
    std::thread::id thread;
    std::vector<StreamWork> nodes;
    bool invalidated = false;
};

namespace {

struct Graphs {
    std::mutex m;
    std::set<Capture*> active;
    std::set<const CUgraph_st*> graphs;
    std::set<const CUgraphExec_st*> execs;
};

Graphs& graphs() {
    static Graphs g;
    return g;
}

// Whether a capture forbids an unsafe call made on this thread now.
bool forbids(const Capture& c) {
    if (c.mode == cudaStreamCaptureModeRelaxed) return false;
    return c.mode == cudaStreamCaptureModeGlobal || c.thread == std::this_thread::get_id();
}

}  // namespace

cudaError_t run_or_record(cudaStream_t stream, const char* call, StreamWork work) {
    if (stream && stream->capture) {
        Capture* c = stream->capture;
        if (c->invalidated)
            return set_error(cudaErrorStreamCaptureInvalidated,
                             std::string(call) + ": the capture of this stream was invalidated");
        c->nodes.push_back(std::move(work));
        return cudaSuccess;
    }
    if (!stream) {
        std::lock_guard<std::mutex> lock(graphs().m);
        for (Capture* c : graphs().active)
            if (c->mode == cudaStreamCaptureModeGlobal) {
                c->invalidated = true;
                return set_error(
                    cudaErrorStreamCaptureImplicit,
                    std::string(call) + " on the legacy stream while a stream is being captured");
            }
    }
    return work();
}

cudaError_t check_not_capturing(const char* call) {
    std::lock_guard<std::mutex> lock(graphs().m);
    bool hit = false;
    for (Capture* c : graphs().active)
        if (forbids(*c)) {
            c->invalidated = true;
            hit = true;
        }
    if (!hit) return cudaSuccess;
    return set_error(cudaErrorStreamCaptureUnsupported,
                     std::string(call) +
                         " while a stream is being captured (not allowed in a "
                         "CUDA graph; the capture is invalidated)");
}

cudaError_t check_capture_wait(cudaStream_t stream, cudaEvent_t event) {
    if (!stream || !stream->capture) return cudaSuccess;
    if (event->recorded_in == stream->capture) return cudaSuccess;
    stream->capture->invalidated = true;
    return set_error(cudaErrorStreamCaptureIsolation,
                     "cudaStreamWaitEvent: a capturing stream waits on an event recorded outside "
                     "its capture");
}

}  // namespace gnet::emu

using namespace gnet::emu;

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
    if (!stream)
        return set_error(cudaErrorStreamCaptureUnsupported,
                         "cudaStreamBeginCapture: the legacy stream cannot be captured");
    if (!valid_stream(stream))
        return set_error(cudaErrorInvalidResourceHandle, "cudaStreamBeginCapture: invalid stream");
    if (stream->capture)
        return set_error(cudaErrorIllegalState,
                         "cudaStreamBeginCapture: the stream is already being captured");
    auto* c = new Capture{stream, mode, std::this_thread::get_id(), {}};
    std::lock_guard<std::mutex> lock(graphs().m);
    graphs().active.insert(c);
    stream->capture = c;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
    *graph = nullptr;
    if (!stream || !valid_stream(stream) || !stream->capture)
        return set_error(cudaErrorIllegalState,
                         "cudaStreamEndCapture: the stream is not being captured");
    Capture* c = stream->capture;
    std::lock_guard<std::mutex> lock(graphs().m);
    graphs().active.erase(c);
    stream->capture = nullptr;
    const bool invalidated = c->invalidated;
    if (!invalidated) {
        *graph = new CUgraph_st{std::move(c->nodes)};
        graphs().graphs.insert(*graph);
    }
    delete c;
    if (invalidated)
        return set_error(cudaErrorStreamCaptureInvalidated,
                         "cudaStreamEndCapture: the capture was invalidated by an earlier error");
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
    if (!valid_stream(stream))
        return set_error(cudaErrorInvalidResourceHandle, "cudaStreamIsCapturing: invalid stream");
    *status = !stream || !stream->capture    ? cudaStreamCaptureStatusNone
              : stream->capture->invalidated ? cudaStreamCaptureStatusInvalidated
                                             : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
    *exec = nullptr;
    std::lock_guard<std::mutex> lock(graphs().m);
    if (!graphs().graphs.count(graph))
        return set_error(cudaErrorInvalidResourceHandle, "cudaGraphInstantiate: invalid graph");
    *exec = new CUgraphExec_st{graph->nodes};
    graphs().execs.insert(*exec);
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    {
        std::lock_guard<std::mutex> lock(graphs().m);
        if (!graphs().execs.count(exec))
            return set_error(cudaErrorInvalidResourceHandle,
                             "cudaGraphLaunch: invalid executable graph");
    }
    if (!valid_stream(stream))
        return set_error(cudaErrorInvalidResourceHandle, "cudaGraphLaunch: invalid stream");
    const std::vector<StreamWork>* nodes = &exec->nodes;
    return run_or_record(stream, "cudaGraphLaunch", [nodes] {
        for (const StreamWork& node : *nodes)
            if (cudaError_t e = node()) return e;
        return cudaSuccess;
    });
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    std::lock_guard<std::mutex> lock(graphs().m);
    if (!graphs().execs.erase(exec))
        return set_error(cudaErrorInvalidResourceHandle,
                         "cudaGraphExecDestroy: invalid executable graph");
    delete exec;
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    std::lock_guard<std::mutex> lock(graphs().m);
    if (!graphs().graphs.erase(graph))
        return set_error(cudaErrorInvalidResourceHandle, "cudaGraphDestroy: invalid graph");
    delete graph;
    return cudaSuccess;
}
