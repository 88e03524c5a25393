// cuFFT on the emulated device, computed with FFTW in cuFFT's data layout (see cufft.h).
//
// A plan keeps cuFFT's parameters; the FFTW plans (one in-place, one out-of-place, made when
// first needed with FFTW_ESTIMATE | FFTW_UNALIGNED, under a lock: FFTW's planner is not
// thread-safe) are executed with the new-array interface on the caller's buffers. Like cuFFT's
// 32-bit interface, a plan whose data reach 2^31 elements is refused (CUFFT_INVALID_SIZE), and
// exec checks that both buffers are emulated device memory large enough for the layout.
#include <cufft.h>
#include <fftw3.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "emu/runtime_internal.h"

namespace {

struct Plan {
    int rank;
    std::vector<int> n, inembed, onembed;
    int istride, idist, ostride, odist, batch;
    cudaStream_t stream = nullptr;
    fftwf_plan in_place = nullptr, out_of_place = nullptr;
};

std::mutex& planner_mutex() {
    static std::mutex m;
    return m;
}

struct Plans {
    std::mutex m;
    std::map<cufftHandle, std::unique_ptr<Plan>> plans;
    cufftHandle next = 1;
};

Plans& plans() {
    static Plans p;
    return p;
}

Plan* lookup(cufftHandle h) {
    std::lock_guard<std::mutex> lock(plans().m);
    auto it = plans().plans.find(h);
    return it == plans().plans.end() ? nullptr : it->second.get();
}

// Offset (in elements) of the last element of one batch entry in an embedded layout.
int64_t last_offset(const std::vector<int>& dims, const std::vector<int>& embed, int stride) {
    int64_t off = 0;
    for (size_t d = 0; d < dims.size(); ++d)
        off = off * (d == 0 ? 1 : embed[d]) + (dims[d] - 1);
    return off * stride;
}

std::vector<int> out_dims(const Plan& p) {
    std::vector<int> o = p.n;
    o.back() = o.back() / 2 + 1;
    return o;
}

fftwf_plan make_fftw(const Plan& p, bool in_place) {
    // FFTW_ESTIMATE never touches the arrays; they only tell in-place from out-of-place.
    alignas(64) static float dummy_in[16];
    alignas(64) static fftwf_complex dummy_out[8];
    float* in = dummy_in;
    fftwf_complex* out = in_place ? reinterpret_cast<fftwf_complex*>(dummy_in) : dummy_out;
    std::lock_guard<std::mutex> lock(planner_mutex());
    return fftwf_plan_many_dft_r2c(p.rank, p.n.data(), p.batch, in, p.inembed.data(), p.istride,
                                   p.idist, out, p.onembed.data(), p.ostride, p.odist,
                                   FFTW_ESTIMATE | FFTW_UNALIGNED);
}

}  // namespace

cufftResult cufftPlanMany(cufftHandle* handle, int rank, int* n, int* inembed, int istride,
                          int idist, int* onembed, int ostride, int odist, cufftType type,
                          int batch) {
    if (!handle || !n) return CUFFT_INVALID_VALUE;
    *handle = 0;
    if (type != CUFFT_R2C) return CUFFT_NOT_IMPLEMENTED;
    if (rank < 1 || rank > 3 || batch < 1) return CUFFT_INVALID_SIZE;
    auto p = std::make_unique<Plan>();
    p->rank = rank;
    p->n.assign(n, n + rank);
    for (int v : p->n)
        if (v < 1) return CUFFT_INVALID_SIZE;
    p->batch = batch;
    const std::vector<int> od = out_dims(*p);
    if (inembed && onembed) {  // the advanced layout
        p->inembed.assign(inembed, inembed + rank);
        p->onembed.assign(onembed, onembed + rank);
        p->istride = istride;
        p->idist = idist;
        p->ostride = ostride;
        p->odist = odist;
        for (int d = 1; d < rank; ++d)
            if (p->inembed[d] < p->n[d] || p->onembed[d] < od[d]) return CUFFT_INVALID_VALUE;
        if (istride < 1 || ostride < 1 || idist < 1 || odist < 1) return CUFFT_INVALID_VALUE;
    } else {  // the basic layout: packed, strides and distances ignored
        p->inembed = p->n;
        p->onembed = od;
        p->istride = p->ostride = 1;
        int64_t in_elems = 1, out_elems = 1;
        for (int d = 0; d < rank; ++d) {
            in_elems *= p->n[d];
            out_elems *= od[d];
        }
        p->idist = int(in_elems);
        p->odist = int(out_elems);
    }
    const int64_t limit = int64_t(1) << 31;
    const int64_t in_span =
        int64_t(batch - 1) * p->idist + last_offset(p->n, p->inembed, p->istride);
    const int64_t out_span =
        int64_t(batch - 1) * p->odist + last_offset(od, p->onembed, p->ostride);
    if (in_span >= limit || out_span >= limit) return CUFFT_INVALID_SIZE;

    std::lock_guard<std::mutex> lock(plans().m);
    *handle = plans().next++;
    plans().plans[*handle] = std::move(p);
    return CUFFT_SUCCESS;
}

cufftResult cufftPlan1d(cufftHandle* plan, int nx, cufftType type, int batch) {
    return cufftPlanMany(plan, 1, &nx, nullptr, 1, 0, nullptr, 1, 0, type, batch);
}

cufftResult cufftExecR2C(cufftHandle handle, cufftReal* idata, cufftComplex* odata) {
    Plan* p = lookup(handle);
    if (!p) return CUFFT_INVALID_PLAN;
    const std::vector<int> od = out_dims(*p);
    const size_t in_bytes =
        size_t(int64_t(p->batch - 1) * p->idist + last_offset(p->n, p->inembed, p->istride) + 1) *
        sizeof(cufftReal);
    const size_t out_bytes =
        size_t(int64_t(p->batch - 1) * p->odist + last_offset(od, p->onembed, p->ostride) + 1) *
        sizeof(cufftComplex);
    using gnet::emu::MemoryKind;
    if (gnet::emu::memory_kind(idata, in_bytes) != MemoryKind::Device ||
        gnet::emu::memory_kind(odata, out_bytes) != MemoryKind::Device) {
        gnet::emu::set_error(cudaErrorInvalidValue,
                             "cufftExecR2C: input " + gnet::emu::describe_pointer(idata) +
                                 " needs " + std::to_string(in_bytes) + " bytes, output " +
                                 gnet::emu::describe_pointer(odata) + " needs " +
                                 std::to_string(out_bytes) + " bytes of device memory");
        return CUFFT_EXEC_FAILED;
    }
    const bool in_place = static_cast<void*>(idata) == static_cast<void*>(odata);
    fftwf_plan& f = in_place ? p->in_place : p->out_of_place;
    if (!f) f = make_fftw(*p, in_place);
    if (!f) return CUFFT_SETUP_FAILED;
    fftwf_execute_dft_r2c(f, idata, reinterpret_cast<fftwf_complex*>(odata));
    return CUFFT_SUCCESS;
}

cufftResult cufftSetStream(cufftHandle handle, cudaStream_t stream) {
    Plan* p = lookup(handle);
    if (!p) return CUFFT_INVALID_PLAN;
    if (!gnet::emu::valid_stream(stream)) return CUFFT_INVALID_VALUE;
    p->stream = stream;
    return CUFFT_SUCCESS;
}

cufftResult cufftDestroy(cufftHandle handle) {
    std::unique_ptr<Plan> p;
    {
        std::lock_guard<std::mutex> lock(plans().m);
        auto it = plans().plans.find(handle);
        if (it == plans().plans.end()) return CUFFT_INVALID_PLAN;
        p = std::move(it->second);
        plans().plans.erase(it);
    }
    std::lock_guard<std::mutex> lock(planner_mutex());
    if (p->in_place) fftwf_destroy_plan(p->in_place);
    if (p->out_of_place) fftwf_destroy_plan(p->out_of_place);
    return CUFFT_SUCCESS;
}

cufftResult cufftGetVersion(int* version) {
    *version = CUFFT_VERSION;
    return CUFFT_SUCCESS;
}
