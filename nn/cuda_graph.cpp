#include "nn/cuda_graph.h"

#include <utility>

#include "kernels/error.h"

#if GNET_HAVE_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda_check.h"
#endif

namespace gnet {

#if GNET_HAVE_CUDA

OwnedStream OwnedStream::create() {
    OwnedStream s;
    GNET_CUDA_CHECK(cudaStreamCreate(&s.stream_));
    return s;
}
OwnedStream::~OwnedStream() {
    if (stream_) cudaStreamDestroy(stream_);
}

StreamEvent StreamEvent::create() {
    StreamEvent e;
    GNET_CUDA_CHECK(cudaEventCreateWithFlags(&e.event_, cudaEventDisableTiming));
    return e;
}
StreamEvent::~StreamEvent() {
    if (event_) cudaEventDestroy(event_);
}
void StreamEvent::record(Stream stream) const {
    GNET_CUDA_CHECK(cudaEventRecord(event_, stream));
}
void StreamEvent::wait_on(Stream stream) const {
    GNET_CUDA_CHECK(cudaStreamWaitEvent(stream, event_, 0));
}
void StreamEvent::synchronize() const {
    GNET_CUDA_CHECK(cudaEventSynchronize(event_));
}

CudaGraph CudaGraph::capture(Stream stream, const std::function<void()>& record) {
    GNET_CHECK(stream != nullptr, "CudaGraph: the legacy default stream cannot be captured");
    // Thread-local mode: the loader's threads may allocate pinned memory meanwhile.
    GNET_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    cudaGraph_t graph = nullptr;
    try {
        record();
    } catch (...) {
        cudaStreamEndCapture(stream, &graph);
        if (graph) cudaGraphDestroy(graph);
        cudaGetLastError();  // the capture's error is the exception's
        throw;
    }
    GNET_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    CudaGraph g;
    const cudaError_t rc = cudaGraphInstantiate(&g.exec_, graph, 0);
    cudaGraphDestroy(graph);
    GNET_CUDA_CHECK(rc);
    return g;
}
CudaGraph::~CudaGraph() {
    if (exec_) cudaGraphExecDestroy(exec_);
}
void CudaGraph::launch(Stream stream) const {
    GNET_CHECK(exec_ != nullptr, "CudaGraph: launch of an empty graph");
    GNET_CUDA_CHECK(cudaGraphLaunch(exec_, stream));
}

#else

OwnedStream OwnedStream::create() {
    throw Error("CUDA streams need a gnet built with CUDA");
}
OwnedStream::~OwnedStream() = default;
StreamEvent StreamEvent::create() {
    throw Error("CUDA events need a gnet built with CUDA");
}
StreamEvent::~StreamEvent() = default;
void StreamEvent::record(Stream) const {}
void StreamEvent::wait_on(Stream) const {}
void StreamEvent::synchronize() const {}
CudaGraph CudaGraph::capture(Stream, const std::function<void()>&) {
    throw Error("CUDA graphs need a gnet built with CUDA");
}
CudaGraph::~CudaGraph() = default;
void CudaGraph::launch(Stream) const {}

#endif

OwnedStream::OwnedStream(OwnedStream&& other) noexcept
    : stream_(std::exchange(other.stream_, nullptr)) {}
OwnedStream& OwnedStream::operator=(OwnedStream&& other) noexcept {
    std::swap(stream_, other.stream_);
    return *this;
}
StreamEvent::StreamEvent(StreamEvent&& other) noexcept
    : event_(std::exchange(other.event_, nullptr)) {}
StreamEvent& StreamEvent::operator=(StreamEvent&& other) noexcept {
    std::swap(event_, other.event_);
    return *this;
}
CudaGraph::CudaGraph(CudaGraph&& other) noexcept : exec_(std::exchange(other.exec_, nullptr)) {}
CudaGraph& CudaGraph::operator=(CudaGraph&& other) noexcept {
    std::swap(exec_, other.exec_);
    return *this;
}

}  // namespace gnet
