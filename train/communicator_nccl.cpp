// NCCL for GPU ranks (train/communicator.h): a thin layer over the same bucket logic the MPI ranks
// use (train/gradient_reducer.h). It compiles wherever NCCL is installed; it runs only on GPUs.
#include "train/communicator.h"

#if GNET_HAVE_NCCL

#include <cuda_runtime.h>
#include <nccl.h>

#include "kernels/cuda_check.h"
#include "kernels/error.h"

namespace gnet {

namespace {

void nccl_check(ncclResult_t rc, const char* what) {
    if (rc != ncclSuccess) throw Error(std::string(what) + " failed: " + ncclGetErrorString(rc));
}

class NcclCommunicator : public Communicator {
  public:
    explicit NcclCommunicator(Communicator& host) : host_(host) {
        int devices = 0;
        GNET_CUDA_CHECK(cudaGetDeviceCount(&devices));
        if (devices < 1) throw Error("NCCL ranks need a GPU each; none is visible");
        GNET_CUDA_CHECK(cudaSetDevice(local_rank() % devices));
        ncclUniqueId id;
        if (host_.rank() == 0) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
        host_.broadcast(&id, sizeof id);
        nccl_check(ncclCommInitRank(&comm_, host_.size(), id, host_.rank()), "ncclCommInitRank");
        GNET_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        GNET_CUDA_CHECK(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
        GNET_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
    }
    ~NcclCommunicator() override {
        cudaStreamSynchronize(stream_);
        cudaEventDestroy(ready_);
        cudaEventDestroy(done_);
        cudaStreamDestroy(stream_);
        ncclCommDestroy(comm_);
    }
    int rank() const override { return host_.rank(); }
    int size() const override { return host_.size(); }
    std::string name() const override { return "nccl"; }

    // The reduction waits for the model's stream (the bucket's gradients are queued there), runs
    // on our stream, and averages in place (ncclAvg), so nothing is left to scale.
    void start_allreduce_average(float* data, int64_t n, Stream model) override {
        GNET_CUDA_CHECK(cudaEventRecord(ready_, model));
        GNET_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready_, 0));
        nccl_check(ncclAllReduce(data, data, size_t(n), ncclFloat, ncclAvg, comm_, stream_),
                   "ncclAllReduce");
    }
    void finish_allreduces(Stream model) override {
        GNET_CUDA_CHECK(cudaEventRecord(done_, stream_));
        GNET_CUDA_CHECK(cudaStreamWaitEvent(model, done_, 0));
    }
    void barrier() override { host_.barrier(); }
    void allreduce_sum(double* values, int n) override { host_.allreduce_sum(values, n); }
    void broadcast(void* data, size_t bytes) override { host_.broadcast(data, bytes); }

  private:
    Communicator& host_;
    ncclComm_t comm_ = nullptr;
    cudaStream_t stream_ = nullptr;
    cudaEvent_t ready_ = nullptr, done_ = nullptr;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host) {
    return std::make_unique<NcclCommunicator>(host);
}

}  // namespace gnet

#endif
