#include "train/communicator.h"

#include <cstdlib>
#include <limits>
#include <vector>

#include "kernels/error.h"

#if GNET_HAVE_MPI
// The C API only: OpenMPI's deprecated C++ bindings do not compile -Wextra clean.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace gnet {

#if GNET_HAVE_NCCL
// train/communicator_nccl.cpp
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host);
#endif

namespace {

int env_int(const char* name, int fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::atoi(v) : fallback;
}

int launcher_size() {
    for (const char* name :
         {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE"})
        if (const char* v = std::getenv(name); v && *v) return std::atoi(v);
    return std::getenv("PMIX_RANK") ? 2 : 1;  // PMIx without a size variable: ask MPI
}

#if GNET_HAVE_MPI
void mpi_check(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw Error(std::string(what) + " failed: " + std::string(msg, size_t(len)));
}

// MPI from the first communicator to the end of the process (MPI can be initialised once).
struct MpiSession {
    MpiSession() {
        int provided = 0;
        // Only the training thread calls MPI (the loader's threads never do).
        mpi_check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided),
                  "MPI_Init_thread");
    }
    ~MpiSession() {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
    }
};

class MpiCommunicator : public Communicator {
  public:
    MpiCommunicator() {
        static MpiSession session;
        mpi_check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
        mpi_check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    }
    int rank() const override { return rank_; }
    int size() const override { return size_; }
    std::string name() const override { return "mpi"; }

    void start_allreduce_average(float* data, int64_t n, Stream) override {
        constexpr int64_t kMaxCount = std::numeric_limits<int>::max() / 2;  // MPI counts are int
        for (int64_t at = 0; at < n; at += kMaxCount) {
            const int count = int(std::min(kMaxCount, n - at));
            requests_.emplace_back();
            mpi_check(MPI_Iallreduce(MPI_IN_PLACE, data + at, count, MPI_FLOAT, MPI_SUM,
                                     MPI_COMM_WORLD, &requests_.back()),
                      "MPI_Iallreduce");
            pending_.push_back({data + at, count});
        }
    }
    void progress() override {
        if (requests_.empty()) return;
        int done = 0;
        mpi_check(MPI_Testall(int(requests_.size()), requests_.data(), &done, MPI_STATUSES_IGNORE),
                  "MPI_Testall");
    }
    void finish_allreduces(Stream) override {
        if (!requests_.empty())
            mpi_check(MPI_Waitall(int(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE),
                      "MPI_Waitall");
        const float scale = 1.f / float(size_);
        for (const auto& [p, n] : pending_)
            for (int i = 0; i < n; ++i)
                p[i] *= scale;
        requests_.clear();
        pending_.clear();
    }
    void barrier() override { mpi_check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
    void allreduce_sum(double* values, int n) override {
        mpi_check(MPI_Allreduce(MPI_IN_PLACE, values, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
                  "MPI_Allreduce");
    }
    void broadcast(void* data, size_t bytes) override {
        mpi_check(MPI_Bcast(data, int(bytes), MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast");
    }

  private:
    int rank_ = 0, size_ = 1;
    std::vector<MPI_Request> requests_;
    std::vector<std::pair<float*, int>> pending_;
};
#endif

}  // namespace

bool launched_as_ranks() {
    return launcher_size() > 1;
}

int local_rank() {
    for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID",
                             "MV2_COMM_WORLD_LOCAL_RANK"})
        if (std::getenv(name)) return env_int(name, 0);
    return 0;
}

bool mpi_available() {
#if GNET_HAVE_MPI
    return true;
#else
    return false;
#endif
}

bool nccl_available() {
#if GNET_HAVE_NCCL
    return true;
#else
    return false;
#endif
}

Communicator& world_communicator(Device device) {
    static std::unique_ptr<Communicator> world;
    static std::unique_ptr<Communicator> host;  // the MPI ranks under a NCCL communicator
    if (world) return *world;
    if (!launched_as_ranks()) {
        world = std::make_unique<SingleCommunicator>();
        return *world;
    }
#if GNET_HAVE_MPI
    auto mpi = std::make_unique<MpiCommunicator>();
    if (mpi->size() == 1) {
        world = std::make_unique<SingleCommunicator>();
        return *world;
    }
    if (device == Device::CPU) {
        world = std::move(mpi);
        return *world;
    }
#if GNET_HAVE_NCCL
    host = std::move(mpi);
    world = make_nccl_communicator(*host);
    return *world;
#else
    throw Error(
        "data-parallel training on GPUs needs NCCL, and this gnet was built without it "
        "(install NCCL where CMake finds nccl.h and libnccl, e.g. /usr/local/cuda, and "
        "rebuild), or train on CPU ranks with --device cpu");
#endif
#else
    (void)device;
    (void)host;
    throw Error("started by an MPI launcher as one of " + std::to_string(launcher_size()) +
                " ranks, but this gnet was built without MPI (install libopenmpi-dev, or run "
                "scripts/setup, and rebuild)");
#endif
}

}  // namespace gnet
