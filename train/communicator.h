// The ranks of a data-parallel run (docs/data-parallel.md): one process per device, started by a
// launcher (`mpirun -np N gnet train ...`), which gnet recognises by its environment (OpenMPI's
// OMPI_COMM_WORLD_SIZE, or PMI_SIZE / PMIX_RANK of MPICH and Slurm). Without one, the run is a
// single rank and nothing is initialised.
//
// world_communicator(device) makes the process's one communicator, once:
//   size 1           SingleCommunicator: every collective is a no-op.
//   MPI, CPU ranks   MpiCommunicator: gradients all-reduced with MPI_Iallreduce (MPI_SUM, in
//                    place, then scaled by 1/size), progressed with MPI_Testall whenever the
//                    model reports more gradients ready, so the reduction overlaps the backward.
//   MPI, GPU ranks   NcclCommunicator (train/communicator_nccl.cpp; needs NCCL at build time):
//                    MPI starts the processes and hands NCCL its unique id; each rank uses GPU
//                    local_rank % devices; gradients are all-reduced with ncclAllReduce(ncclAvg)
//                    on a stream of its own that waits for the model's stream (an event), and the
//                    model's stream waits for it before Adam. The host never blocks on the GPU.
// Host-side collectives (barrier, sums of a few doubles) always go through MPI.
//
// A communicator belongs to the process: MPI is finalised at exit.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "nn/device.h"

namespace gnet {

class Communicator {
  public:
    virtual ~Communicator() = default;
    virtual int rank() const = 0;
    virtual int size() const = 0;
    virtual std::string name() const = 0;  // "single", "mpi", "nccl"

    // Starts averaging n floats at `data` (on the model's device) over the ranks, in place.
    // `stream`: the model's CUDA stream whose queued work produces the data (GPU ranks).
    virtual void start_allreduce_average(float* data, int64_t n, Stream stream) = 0;
    // Lets started reductions progress (MPI polls); cheap.
    virtual void progress() {}
    // Every started reduction is complete (CPU), or ordered before further work on `stream` (GPU).
    virtual void finish_allreduces(Stream stream) = 0;

    virtual void barrier() = 0;
    // Sums n doubles over the ranks, in place, on the host.
    virtual void allreduce_sum(double* values, int n) = 0;
    // Rank 0's `bytes` bytes at `data` to every rank (host memory).
    virtual void broadcast(void* data, size_t bytes) = 0;
};

class SingleCommunicator : public Communicator {
  public:
    int rank() const override { return 0; }
    int size() const override { return 1; }
    std::string name() const override { return "single"; }
    void start_allreduce_average(float*, int64_t, Stream) override {}
    void finish_allreduces(Stream) override {}
    void barrier() override {}
    void allreduce_sum(double*, int) override {}
    void broadcast(void*, size_t) override {}
};

// True when a launcher started this process as one of several ranks.
bool launched_as_ranks();
// The rank's index among the ranks of its host (OMPI_COMM_WORLD_LOCAL_RANK, ...), 0 if unknown.
int local_rank();
// Whether this gnet was built with MPI / NCCL.
bool mpi_available();
bool nccl_available();

// The process's communicator for ranks on `device` (see above); the same object on every call.
// Under a launcher without MPI in the build, or GPU ranks without NCCL, an Error says so.
Communicator& world_communicator(Device device);

}  // namespace gnet
