#include "nn/resnet18.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "kernels/cpu_parallel.h"
#include "kernels/error.h"
#include "kernels/linear.h"
#include "kernels/maxpool2d.h"
#include "nn/model_init.h"

namespace gnet {

namespace {

constexpr int kStemChannels = 64;
constexpr int kFeatures = 512;
constexpr int kBlocksPerLayer = 2;
constexpr float kBnEps = 1e-5f;
constexpr float kBnMomentum = 0.1f;

// The three scratch indices (of four) other than `a`.
void others(int a, int& j, int& k, int& l) {
    int o[3], n = 0;
    for (int i = 0; i < 4; ++i)
        if (i != a) o[n++] = i;
    j = o[0];
    k = o[1];
    l = o[2];
}

}  // namespace

std::vector<StateEntry> resnet18_state_layout(int num_genres) {
    GNET_CHECK(num_genres >= 1,
               "ResNet18 needs at least one genre, got " + std::to_string(num_genres));
    std::vector<StateEntry> out;
    auto conv = [&](const std::string& name, int64_t C, int64_t OC, int64_t K) {
        out.push_back({name + ".weight", {OC, C, K, K}, StateKind::Parameter});
    };
    auto bn = [&](const std::string& name, int64_t C) {
        out.push_back({name + ".weight", {C}, StateKind::Parameter});
        out.push_back({name + ".bias", {C}, StateKind::Parameter});
        out.push_back({name + ".running_mean", {C}, StateKind::Buffer});
        out.push_back({name + ".running_var", {C}, StateKind::Buffer});
        out.push_back({name + ".num_batches_tracked", {}, StateKind::Counter});
    };
    conv("conv1", 1, kStemChannels, 7);
    bn("bn1", kStemChannels);
    int64_t in = kStemChannels;
    for (int li = 0; li < 4; ++li) {
        int64_t ch = int64_t(kStemChannels) << li;
        for (int bi = 0; bi < kBlocksPerLayer; ++bi) {
            std::string b = "layer" + std::to_string(li + 1) + "." + std::to_string(bi);
            bool ds = bi == 0 && li > 0;
            conv(b + ".conv1", in, ch, 3);
            bn(b + ".bn1", ch);
            conv(b + ".conv2", ch, ch, 3);
            bn(b + ".bn2", ch);
            if (ds) {
                conv(b + ".downsample.0", in, ch, 1);
                bn(b + ".downsample.1", ch);
            }
            in = ch;
        }
    }
    out.push_back({"fc.weight", {num_genres, kFeatures}, StateKind::Parameter});
    out.push_back({"fc.bias", {num_genres}, StateKind::Parameter});
    return out;
}

std::vector<const StTensor*> check_state_dict(const StFile& state, int num_genres,
                                              const std::string& source) {
    std::map<std::string, const StTensor*> by_name;
    for (const StTensor& t : state.tensors)
        by_name[t.name] = &t;
    std::vector<const StTensor*> ordered;
    for (const StateEntry& e : resnet18_state_layout(num_genres)) {
        auto it = by_name.find(e.name);
        if (it == by_name.end())
            throw Error(source + ": tensor '" + e.name + "' is missing (expected shape " +
                        shape_string(e.shape) + ")");
        const StTensor& t = *it->second;
        StDtype want = e.kind == StateKind::Counter ? StDtype::I64 : StDtype::F32;
        if (t.dtype != want)
            throw Error(source + ": tensor '" + e.name + "' has dtype " + st_dtype_name(t.dtype) +
                        ", expected " + st_dtype_name(want));
        if (t.shape != e.shape) {
            std::string why = source + ": tensor '" + e.name + "' has shape " +
                              shape_string(t.shape) + ", expected " + shape_string(e.shape);
            if (e.name.rfind("fc.", 0) == 0)
                why += " (this model has " + std::to_string(num_genres) + " genres)";
            throw Error(why);
        }
        size_t have = want == StDtype::F32 ? t.f32.size() : t.i64.size();
        GNET_CHECK(have == size_t(shape_numel(e.shape)),
                   source + ": tensor '" + e.name + "' holds the wrong number of values");
        ordered.push_back(&t);
        by_name.erase(it);
    }
    if (!by_name.empty())
        throw Error(source + ": unexpected tensor '" + by_name.begin()->first +
                    "' (not in a 1-channel ResNet18 state_dict)");
    return ordered;
}

Conv2dParams ResNet18::Conv::params(int N) const {
    Conv2dParams p = Conv2dParams::make(N, C, H, W, OC, K, K, stride, pad);
    return p;
}

ResNet18::Conv ResNet18::make_conv(const std::string& name, int C, int OC, int K, int stride,
                                   int pad, int H, int W) {
    Conv c;
    c.name = name;
    c.C = C;
    c.OC = OC;
    c.K = K;
    c.stride = stride;
    c.pad = pad;
    c.H = H;
    c.W = W;
    c.OH = conv_out_size(H, K, stride, pad);
    c.OW = conv_out_size(W, K, stride, pad);
    GNET_CHECK(c.OH >= 1 && c.OW >= 1, "ResNet18: input " + std::to_string(config_.height) + "x" +
                                           std::to_string(config_.width) + " is too small for " +
                                           name);
    Shape w = {OC, C, K, K};
    c.w = params_.reserve(w);
    if (config_.training) {
        grads_.reserve(w);
        adam_m_.reserve(w);
        adam_v_.reserve(w);
    }
    param_slots_.push_back(c.w);
    return c;
}

ResNet18::Bn ResNet18::make_bn(const std::string& name, int C, int HW) {
    Bn bn;
    bn.name = name;
    bn.C = C;
    bn.HW = HW;
    for (Arena::Slot* s : {&bn.gamma, &bn.beta}) {
        *s = params_.reserve({C});
        if (config_.training) {
            grads_.reserve({C});
            adam_m_.reserve({C});
            adam_v_.reserve({C});
        }
        param_slots_.push_back(*s);
    }
    bn.running_mean = buffers_.reserve({C});
    bn.running_var = buffers_.reserve({C});
    if (config_.training) {
        bn.save_mean = acts_.reserve({C});
        bn.save_invstd = acts_.reserve({C});
    }
    return bn;
}

ResNet18::ResNet18(const ResNet18Config& config, Device device, Stream stream)
    : config_(config),
      exec_{device, stream,
            device == Device::CPU ? effective_cpu_backend(config.cpu_backend)
                                  : CpuBackend::Reference} {
    GNET_CHECK(
        config.num_genres >= 1 && config.max_batch >= 1 && config.height >= 1 && config.width >= 1,
        "ResNet18: bad configuration (genres " + std::to_string(config.num_genres) +
            ", max batch " + std::to_string(config.max_batch) + ", input " +
            std::to_string(config.height) + "x" + std::to_string(config.width) + ")");
    layout_ = resnet18_state_layout(config.num_genres);
    plan();
    for (Arena* a : {&params_, &buffers_})
        a->allocate(device, stream);
    if (config.training)
        for (Arena* a : {&grads_, &adam_m_, &adam_v_, &acts_})
            a->allocate(device, stream);
    if (config.init_seed) init(*config.init_seed);
}

void ResNet18::plan() {
    const int Nmax = config_.max_batch;
    const bool train = config_.training;
    // Training activations; an inference-only model plans none (see plan_inference).
    auto act_slot = [&](Shape s) -> Arena::Slot {
        if (!train) return 0;
        return acts_.reserve(std::move(s));
    };

    conv1_ = make_conv("conv1", 1, kStemChannels, 7, 2, 3, config_.height, config_.width);
    stem_OH_ = conv1_.OH;
    stem_OW_ = conv1_.OW;
    bn1_ = make_bn("bn1", kStemChannels, stem_OH_ * stem_OW_);
    pool_OH_ = conv_out_size(stem_OH_, 3, 2, 1);
    pool_OW_ = conv_out_size(stem_OW_, 3, 2, 1);
    GNET_CHECK(pool_OH_ >= 1 && pool_OW_ >= 1, "ResNet18: input too small for the max-pool");
    x_in_ = act_slot({Nmax, 1, config_.height, config_.width});
    c1_ = act_slot({Nmax, kStemChannels, stem_OH_, stem_OW_});
    y1_ = act_slot({Nmax, kStemChannels, stem_OH_, stem_OW_});
    pool_ = act_slot({Nmax, kStemChannels, pool_OH_, pool_OW_});
    argmax_ = act_slot({Nmax, kStemChannels, pool_OH_, pool_OW_});  // int32 stored in float slots

    blocks_.reserve(4 * kBlocksPerLayer);  // Bn addresses stay put (state_dict counters)
    int in = kStemChannels, H = pool_OH_, W = pool_OW_;
    for (int li = 0; li < 4; ++li) {
        int ch = kStemChannels << li;
        for (int bi = 0; bi < kBlocksPerLayer; ++bi) {
            std::string name = "layer" + std::to_string(li + 1) + "." + std::to_string(bi);
            int stride = (bi == 0 && li > 0) ? 2 : 1;
            Block b;
            b.C_in = in;
            b.H_in = H;
            b.W_in = W;
            b.conv1 = make_conv(name + ".conv1", in, ch, 3, stride, 1, H, W);
            int OH = b.conv1.OH, OW = b.conv1.OW;
            b.bn1 = make_bn(name + ".bn1", ch, OH * OW);
            b.conv2 = make_conv(name + ".conv2", ch, ch, 3, 1, 1, OH, OW);
            b.bn2 = make_bn(name + ".bn2", ch, OH * OW);
            b.has_downsample = stride != 1 || in != ch;
            if (b.has_downsample) {
                b.ds_conv = make_conv(name + ".downsample.0", in, ch, 1, stride, 0, H, W);
                b.ds_bn = make_bn(name + ".downsample.1", ch, OH * OW);
            }
            Shape s = {Nmax, ch, OH, OW};
            b.a = act_slot(s);
            b.b = act_slot(s);
            b.c = act_slot(s);
            b.out = act_slot(s);
            if (b.has_downsample) {
                b.d = act_slot(s);
                b.e = act_slot(s);
            }
            blocks_.push_back(std::move(b));
            in = ch;
            H = OH;
            W = OW;
        }
    }
    final_HW_ = H * W;

    Shape fw = {config_.num_genres, kFeatures}, fb = {config_.num_genres};
    fc_w_ = params_.reserve(fw);
    fc_b_ = params_.reserve(fb);
    param_slots_.push_back(fc_w_);
    param_slots_.push_back(fc_b_);
    if (!train) return;
    for (Arena* a : {&grads_, &adam_m_, &adam_v_}) {
        a->reserve(fw);
        a->reserve(fb);
    }

    pooled_ = act_slot({Nmax, kFeatures});
    logits_ = acts_.reserve({Nmax, config_.num_genres});
    targets_ = acts_.reserve({Nmax, config_.num_genres});
    dlogits_ = acts_.reserve({Nmax, config_.num_genres});
    pos_weight_ = acts_.reserve({config_.num_genres});
    loss_ = acts_.reserve({1});
    // Backward scratch: four rotating gradients of block size (the largest block tensor is the
    // max-pool output) and two of the stem's size for the stem's own backward (max-pool -> bn1).
    int64_t block_act = int64_t(Nmax) * kStemChannels * pool_OH_ * pool_OW_;
    for (const Block& b : blocks_)
        block_act = std::max({block_act, int64_t(Nmax) * b.C_in * b.H_in * b.W_in,
                              int64_t(Nmax) * b.conv1.OC * b.conv1.OH * b.conv1.OW});
    block_act = std::max<int64_t>(block_act, int64_t(Nmax) * kFeatures * final_HW_);
    for (Arena::Slot& s : scratch_)
        s = acts_.reserve({block_act});
    for (Arena::Slot& s : stem_scratch_)
        s = acts_.reserve({int64_t(Nmax) * kStemChannels * stem_OH_ * stem_OW_});

    // GPU conv workspace: the largest any conv needs at any batch size up to max_batch.
    workspace_bytes_ = 0;
    if (exec_.device == Device::CUDA) {
        std::vector<const Conv*> convs = {&conv1_};
        for (const Block& b : blocks_) {
            convs.push_back(&b.conv1);
            convs.push_back(&b.conv2);
            if (b.has_downsample) convs.push_back(&b.ds_conv);
        }
        for (const Conv* c : convs)
            for (int n = 1; n <= Nmax; ++n)
                workspace_bytes_ =
                    std::max(workspace_bytes_, layer::conv2d_workspace_bytes(exec_, c->params(n)));
    }
    workspace_ =
        acts_.reserve({int64_t((workspace_bytes_ + sizeof(float) - 1) / sizeof(float)) + 1});
}

std::vector<const ResNet18::Bn*> ResNet18::all_bns() const {
    std::vector<const Bn*> v = {&bn1_};
    for (const Block& b : blocks_) {
        v.push_back(&b.bn1);
        v.push_back(&b.bn2);
        if (b.has_downsample) v.push_back(&b.ds_bn);
    }
    return v;
}

std::vector<ResNet18::Bn*> ResNet18::all_bns() {
    std::vector<Bn*> v = {&bn1_};
    for (Block& b : blocks_) {
        v.push_back(&b.bn1);
        v.push_back(&b.bn2);
        if (b.has_downsample) v.push_back(&b.ds_bn);
    }
    return v;
}

void ResNet18::init(uint64_t seed) {
    load_state_dict(resnet18_init_state(config_.num_genres, seed), "torchvision init");
    if (config_.training) {
        grads_.zero(exec_.stream);
        adam_m_.zero(exec_.stream);
        adam_v_.zero(exec_.stream);
    }
    layer::synchronize(exec_);
    adam_steps_ = 0;
}

// ---------------------------------------------------------------------------------------------
// Forward
// ---------------------------------------------------------------------------------------------

int ResNet18::check_batch(const Tensor& t, const char* what, int64_t per_sample) const {
    GNET_CHECK(t.defined() && t.rank() >= 1, std::string("ResNet18: ") + what + " is empty");
    int64_t N = t.dim(0);
    GNET_CHECK(N >= 1 && N <= config_.max_batch && t.numel() == N * per_sample,
               std::string("ResNet18: ") + what + " has shape " + shape_string(t.shape()) +
                   "; expected a batch of 1.." + std::to_string(config_.max_batch) + " with " +
                   std::to_string(per_sample) + " values each");
    return int(N);
}

void ResNet18::conv_forward(const Conv& c, int N, const float* x, float* y) {
    layer::conv2d_forward(exec_, c.params(N), x, param(c.w), y);
}

void ResNet18::bn_forward(Bn& bn, int N, BnEpilogue epi, const float* x, const float* residual,
                          float* y) {
    BatchNormParams p{N, bn.C, bn.HW, kBnEps, kBnMomentum};
    if (mode_ == Mode::Train) {
        layer::batchnorm_forward_train(exec_, p, epi, x, param(bn.gamma), param(bn.beta), residual,
                                       y, buffer(bn.running_mean), buffer(bn.running_var),
                                       act(bn.save_mean), act(bn.save_invstd));
        ++bn.num_batches_tracked;
    } else {
        layer::batchnorm_forward_eval(exec_, p, epi, x, param(bn.gamma), param(bn.beta), residual,
                                      buffer(bn.running_mean), buffer(bn.running_var), y);
    }
}

Tensor ResNet18::forward(const Tensor& x) {
    const int H = config_.height, W = config_.width;
    GNET_CHECK(x.rank() == 4 && x.dim(1) == 1 && x.dim(2) == H && x.dim(3) == W,
               "ResNet18: input has shape " + shape_string(x.shape()) + "; expected [N, 1, " +
                   std::to_string(H) + ", " + std::to_string(W) + "]");
    const int N = check_batch(x, "input", int64_t(H) * W);
    if (mode_ == Mode::Eval || !config_.training) return forward_eval(x, N);
    copy_floats(act(x_in_), exec_.device, x.data(), x.device(), x.numel(), exec_.stream);

    conv_forward(conv1_, N, act(x_in_), act(c1_));
    bn_forward(bn1_, N, BnEpilogue::Relu, act(c1_), nullptr, act(y1_));
    Pool2dParams pp = Pool2dParams::make(N, kStemChannels, stem_OH_, stem_OW_, 3, 2, 1);
    layer::maxpool2d_forward(exec_, pp, act(y1_), act(pool_), act_index(argmax_));

    const float* cur = act(pool_);
    for (Block& b : blocks_) {
        conv_forward(b.conv1, N, cur, act(b.a));
        bn_forward(b.bn1, N, BnEpilogue::Relu, act(b.a), nullptr, act(b.b));
        conv_forward(b.conv2, N, act(b.b), act(b.c));
        const float* residual = cur;
        if (b.has_downsample) {
            conv_forward(b.ds_conv, N, cur, act(b.d));
            bn_forward(b.ds_bn, N, BnEpilogue::None, act(b.d), nullptr, act(b.e));
            residual = act(b.e);
        }
        bn_forward(b.bn2, N, BnEpilogue::AddRelu, act(b.c), residual, act(b.out));
        cur = act(b.out);
    }
    layer::avgpool_global_forward(exec_, N, kFeatures, final_HW_, cur, act(pooled_));
    layer::linear_forward(exec_, LinearParams{N, kFeatures, config_.num_genres}, act(pooled_),
                          param(fc_w_), param(fc_b_), act(logits_));
    last_batch_ = N;
    have_train_forward_ = true;
    last_logits_ = act(logits_);
    last_pooled_ = act(pooled_);
    return logits();
}

Tensor ResNet18::logits() const {
    GNET_CHECK(last_batch_ > 0 && last_logits_, "ResNet18: no forward pass yet");
    return Tensor::view(last_logits_, {last_batch_, config_.num_genres}, exec_.device);
}

Tensor ResNet18::features() const {
    GNET_CHECK(last_batch_ > 0 && last_pooled_, "ResNet18: no forward pass yet");
    return Tensor::view(last_pooled_, {last_batch_, kFeatures}, exec_.device);
}

// ---------------------------------------------------------------------------------------------
// Inference
// ---------------------------------------------------------------------------------------------

ResNet18::InferPlan ResNet18::plan_inference(int N) const {
    InferPlan P;
    P.N = N;
    // Images per stem step: the stem's map (64 x H/2 x W/2) is 4x a layer-1 activation.
    constexpr int kStemChunk = 4;
    P.stem_chunk = std::min(N, kStemChunk);
    int64_t at = 0;
    auto take = [&](int64_t floats) {
        const int64_t off = at;
        at += (floats + Arena::kAlignFloats - 1) / Arena::kAlignFloats * Arena::kAlignFloats;
        return off;
    };
    const int64_t stem = int64_t(P.stem_chunk) * kStemChannels * stem_OH_ * stem_OW_;
    int64_t block = int64_t(kStemChannels) * pool_OH_ * pool_OW_;  // the max-pool output
    for (const Block& b : blocks_)
        block = std::max(block, int64_t(b.conv1.OC) * b.conv1.OH * b.conv1.OW);
    P.x = take(int64_t(N) * config_.height * config_.width);
    P.stem_a = take(stem);
    P.stem_b = exec_.cpu_fast() ? P.stem_a : take(stem);  // folded: no separate BN output
    P.argmax = take(int64_t(P.stem_chunk) * kStemChannels * pool_OH_ * pool_OW_);
    for (int64_t& b : P.buf)
        b = take(int64_t(N) * block);
    P.pooled = take(int64_t(N) * kFeatures);
    P.logits = take(int64_t(N) * config_.num_genres);
    P.total = at;
    return P;
}

float* ResNet18::inference_base(int N) {
    const int64_t need = plan_inference(N).total;
    if (config_.training) {  // the training activations are idle during an eval pass
        GNET_CHECK(need <= acts_.numel(), "ResNet18: inference plan larger than the activations");
        return acts_.data();
    }
    if (infer_batch_ < N) {
        infer_storage_ = Tensor();
        infer_storage_ = Tensor::zeros({need}, exec_.device);
        infer_batch_ = N;
    }
    return infer_storage_.data();
}

void ResNet18::conv_bn_eval(const Conv& c, const Bn& bn, int N, BnEpilogue epi, const float* x,
                            const float* residual, float* tmp, float* y) {
    const Conv2dParams p = c.params(N);
    if (exec_.cpu_fast()) {
        const int64_t per_oc = int64_t(c.C) * c.K * c.K;
        fold_w_.resize(size_t(c.OC * per_oc));
        fold_b_.resize(size_t(c.OC));
        const float *w = param(c.w), *gamma = param(bn.gamma), *beta = param(bn.beta);
        const float *mean = buffer(bn.running_mean), *var = buffer(bn.running_var);
        cpu_fast::parallel_for_each(c.OC, [&](int64_t oc) {
            const double s = double(gamma[oc]) / std::sqrt(double(var[oc]) + double(kBnEps));
            fold_b_[size_t(oc)] = float(double(beta[oc]) - double(mean[oc]) * s);
            for (int64_t i = 0; i < per_oc; ++i)
                fold_w_[size_t(oc * per_oc + i)] = float(double(w[oc * per_oc + i]) * s);
        });
        layer::conv2d_forward_fused(exec_, p, x, fold_w_.data(), fold_b_.data(), residual,
                                    epi != BnEpilogue::None, y);
        return;
    }
    layer::conv2d_forward(exec_, p, x, param(c.w), tmp);
    BatchNormParams bp{N, bn.C, bn.HW, kBnEps, kBnMomentum};
    layer::batchnorm_forward_eval(exec_, bp, epi, tmp, param(bn.gamma), param(bn.beta), residual,
                                  buffer(bn.running_mean), buffer(bn.running_var), y);
}

Tensor ResNet18::forward_eval(const Tensor& xin, int N) {
    const InferPlan P = plan_inference(N);
    float* base = inference_base(N);
    float* x = base + P.x;
    copy_floats(x, exec_.device, xin.data(), xin.device(), xin.numel(), exec_.stream);
    float* buf[5];
    for (int i = 0; i < 5; ++i)
        buf[i] = base + P.buf[i];

    // Stem, a few images at a time: conv1 + bn1 + relu -> max-pool into buf[0].
    const int64_t in_img = int64_t(config_.height) * config_.width;
    const int64_t pool_img = int64_t(kStemChannels) * pool_OH_ * pool_OW_;
    for (int n0 = 0; n0 < N; n0 += P.stem_chunk) {
        const int nb = std::min(P.stem_chunk, N - n0);
        conv_bn_eval(conv1_, bn1_, nb, BnEpilogue::Relu, x + n0 * in_img, nullptr, base + P.stem_a,
                     base + P.stem_b);
        Pool2dParams pp = Pool2dParams::make(nb, kStemChannels, stem_OH_, stem_OW_, 3, 2, 1);
        layer::maxpool2d_forward(exec_, pp, base + P.stem_b, buf[0] + n0 * pool_img,
                                 reinterpret_cast<int32_t*>(base + P.argmax));
    }

    // Blocks: the input (also the identity) in buf[cur], the other four as below.
    int cur = 0;
    for (const Block& b : blocks_) {
        int f[4], k = 0;
        for (int i = 0; i < 5; ++i)
            if (i != cur) f[k++] = i;
        float *A = buf[f[0]], *B = buf[f[1]], *C = buf[f[2]], *D = buf[f[3]];
        conv_bn_eval(b.conv1, b.bn1, N, BnEpilogue::Relu, buf[cur], nullptr, B, A);
        const float* residual = buf[cur];
        if (b.has_downsample) {
            conv_bn_eval(b.ds_conv, b.ds_bn, N, BnEpilogue::None, buf[cur], nullptr, D, C);
            residual = C;
        }
        conv_bn_eval(b.conv2, b.bn2, N, BnEpilogue::AddRelu, A, residual, D, B);
        cur = f[1];
    }
    layer::avgpool_global_forward(exec_, N, kFeatures, final_HW_, buf[cur], base + P.pooled);
    layer::linear_forward(exec_, LinearParams{N, kFeatures, config_.num_genres}, base + P.pooled,
                          param(fc_w_), param(fc_b_), base + P.logits);
    last_batch_ = N;
    have_train_forward_ = false;
    last_logits_ = base + P.logits;
    last_pooled_ = base + P.pooled;
    return logits();
}

void ResNet18::require_training(const char* what) const {
    GNET_CHECK(config_.training,
               std::string("ResNet18::") + what + ": this model was built for inference only");
}

// ---------------------------------------------------------------------------------------------
// Backward
// ---------------------------------------------------------------------------------------------

void ResNet18::conv_backward(const Conv& c, int N, const float* x, const float* dy, float* dx) {
    Conv2dParams p = c.params(N);
    layer::conv2d_backward_weight(exec_, p, x, dy, grad(c.w), Accum::Add,
                                  workspace_bytes_ ? act(workspace_) : nullptr);
    if (dx) layer::conv2d_backward_data(exec_, p, dy, param(c.w), dx);
}

void ResNet18::bn_backward(const Bn& bn, int N, BnEpilogue epi, const float* x, const float* y,
                           const float* dy, float* dx, float* dresidual) {
    BatchNormParams p{N, bn.C, bn.HW, kBnEps, kBnMomentum};
    layer::batchnorm_backward(exec_, p, epi, x, y, dy, param(bn.gamma), act(bn.save_mean),
                              act(bn.save_invstd), dx, dresidual, grad(bn.gamma), grad(bn.beta));
}

void ResNet18::backward(const Tensor& dlogits) {
    require_training("backward");
    GNET_CHECK(have_train_forward_, "ResNet18::backward needs a train-mode forward first");
    const int N = last_batch_, G = config_.num_genres;
    GNET_CHECK(dlogits.rank() == 2 && dlogits.dim(0) == N && dlogits.dim(1) == G,
               "ResNet18::backward: dlogits has shape " + shape_string(dlogits.shape()) +
                   "; expected [" + std::to_string(N) + ", " + std::to_string(G) + "]");
    if (dlogits.data() != act(dlogits_))
        copy_floats(act(dlogits_), exec_.device, dlogits.data(), dlogits.device(), dlogits.numel(),
                    exec_.stream);

    float* S[4] = {act(scratch_[0]), act(scratch_[1]), act(scratch_[2]), act(scratch_[3])};
    layer::linear_backward(exec_, LinearParams{N, kFeatures, G}, act(pooled_), param(fc_w_),
                           act(dlogits_), S[0], grad(fc_w_), grad(fc_b_));
    if (gradient_hook_) gradient_hook_(grads_.offset(fc_w_));
    if (backbone_frozen_) {  // only fc learns: d(pooled) is not needed
        if (gradient_hook_) gradient_hook_(0);
        return;
    }
    layer::avgpool_global_backward(exec_, N, kFeatures, final_HW_, S[0], S[1]);
    int io = 1;  // the scratch holding d(current block output)

    for (size_t i = blocks_.size(); i-- > 0;) {
        const Block& b = blocks_[i];
        const float* in = i == 0 ? act(pool_) : act(blocks_[i - 1].out);
        int j, k, l;
        others(io, j, k, l);
        // bn2 (+identity, relu): d(conv2 out) -> j, d(residual) -> k.
        bn_backward(b.bn2, N, BnEpilogue::AddRelu, act(b.c), act(b.out), S[io], S[j], S[k]);
        conv_backward(b.conv2, N, act(b.b), S[j], S[l]);
        bn_backward(b.bn1, N, BnEpilogue::Relu, act(b.a), act(b.b), S[l], S[j], nullptr);
        conv_backward(b.conv1, N, in, S[j], S[io]);  // d(in) via the main path -> io
        const int64_t n_in = int64_t(N) * b.C_in * b.H_in * b.W_in;
        if (b.has_downsample) {
            bn_backward(b.ds_bn, N, BnEpilogue::None, act(b.d), act(b.e), S[k], S[j], nullptr);
            conv_backward(b.ds_conv, N, in, S[j], S[l]);
            layer::add_forward(exec_, n_in, S[io], S[l], S[k]);
            io = k;
        } else {
            layer::add_forward(exec_, n_in, S[io], S[k], S[l]);
            io = l;
        }
        // The block's parameters (conv1 first in the arena) and every later one are final.
        if (gradient_hook_) gradient_hook_(grads_.offset(b.conv1.w));
    }

    float* T[2] = {act(stem_scratch_[0]), act(stem_scratch_[1])};
    Pool2dParams pp = Pool2dParams::make(N, kStemChannels, stem_OH_, stem_OW_, 3, 2, 1);
    layer::maxpool2d_backward(exec_, pp, S[io], act_index(argmax_), T[0]);
    bn_backward(bn1_, N, BnEpilogue::Relu, act(c1_), act(y1_), T[0], T[1], nullptr);
    conv_backward(conv1_, N, act(x_in_), T[1], nullptr);  // the input needs no gradient
    if (gradient_hook_) gradient_hook_(0);
}

float* ResNet18::gradient_data() {
    require_training("gradient_data");
    return grads_.data();
}

void ResNet18::zero_grad() {
    require_training("zero_grad");
    grads_.zero(exec_.stream);
}

void ResNet18::adam_step(const AdamParams& p) {
    require_training("adam_step");
    // fc.weight and fc.bias are the arena's last slots: a frozen backbone updates only that tail.
    const int64_t from = backbone_frozen_ ? params_.offset(fc_w_) : 0;
    layer::adam_step(exec_, p, params_.numel() - from, params_.data() + from, grads_.data() + from,
                     adam_m_.data() + from, adam_v_.data() + from);
}

float ResNet18::train_step(const Tensor& x, const Tensor& targets, const Tensor* pos_weight,
                           AdamParams adam) {
    require_training("train_step");
    const int G = config_.num_genres;
    const Mode saved = mode_;
    mode_ = Mode::Train;
    try {
        zero_grad();
        forward(x);
        const int N = last_batch_;
        GNET_CHECK(targets.rank() == 2 && targets.dim(0) == N && targets.dim(1) == G,
                   "ResNet18::train_step: targets have shape " + shape_string(targets.shape()) +
                       "; expected [" + std::to_string(N) + ", " + std::to_string(G) + "]");
        copy_floats(act(targets_), exec_.device, targets.data(), targets.device(), targets.numel(),
                    exec_.stream);
        const float* pw = nullptr;
        if (pos_weight) {
            GNET_CHECK(pos_weight->numel() == G, "ResNet18::train_step: pos_weight has shape " +
                                                     shape_string(pos_weight->shape()) +
                                                     "; expected [" + std::to_string(G) + "]");
            copy_floats(act(pos_weight_), exec_.device, pos_weight->data(), pos_weight->device(), G,
                        exec_.stream);
            pw = act(pos_weight_);
        }
        layer::bce_logits_forward_backward(exec_, N, G, act(logits_), act(targets_), pw, act(loss_),
                                           act(dlogits_));
        backward(Tensor::view(act(dlogits_), {N, G}, exec_.device));
        adam.step = int(adam_steps_ + 1);
        adam_step(adam);
        ++adam_steps_;
        float loss = 0;
        copy_floats(&loss, Device::CPU, act(loss_), exec_.device, 1, exec_.stream);
        layer::synchronize(exec_);
        mode_ = saved;
        return loss;
    } catch (...) {
        mode_ = saved;
        throw;
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

std::vector<ResNet18::NamedTensor> ResNet18::parameters() const {
    std::vector<NamedTensor> out;
    size_t p = 0;
    for (const StateEntry& e : layout_)
        if (e.kind == StateKind::Parameter)
            out.push_back({e.name, params_.tensor(param_slots_[p++])});
    return out;
}

std::vector<ResNet18::NamedTensor> ResNet18::gradients() const {
    require_training("gradients");
    std::vector<NamedTensor> out;
    size_t p = 0;
    for (const StateEntry& e : layout_)
        if (e.kind == StateKind::Parameter)
            out.push_back({e.name, grads_.tensor(param_slots_[p++])});
    return out;
}

std::vector<ResNet18::NamedTensor> ResNet18::saved_activations() const {
    require_training("saved_activations");
    GNET_CHECK(have_train_forward_, "ResNet18::saved_activations needs a train-mode forward first");
    const int64_t N = last_batch_;
    std::vector<NamedTensor> out;
    auto add = [&](const std::string& name, Arena::Slot slot, Shape shape) {
        out.push_back({name, Tensor::view(act(slot), std::move(shape), exec_.device)});
    };
    auto add_bn = [&](const Bn& bn) {
        add(bn.name + ".save_mean", bn.save_mean, {bn.C});
        add(bn.name + ".save_invstd", bn.save_invstd, {bn.C});
    };
    add("input", x_in_, {N, 1, config_.height, config_.width});
    add("conv1.out", c1_, {N, kStemChannels, stem_OH_, stem_OW_});
    add_bn(bn1_);
    add("bn1.out", y1_, {N, kStemChannels, stem_OH_, stem_OW_});
    add("maxpool.out", pool_, {N, kStemChannels, pool_OH_, pool_OW_});
    add("maxpool.argmax", argmax_, {N, kStemChannels, pool_OH_, pool_OW_});
    for (const Block& b : blocks_) {
        const std::string name = b.conv1.name.substr(0, b.conv1.name.size() - 6);  // "layerL.B"
        const Shape s = {N, b.conv1.OC, b.conv1.OH, b.conv1.OW};
        add(b.conv1.name + ".out", b.a, s);
        add_bn(b.bn1);
        add(b.bn1.name + ".out", b.b, s);
        add(b.conv2.name + ".out", b.c, s);
        if (b.has_downsample) {
            add(b.ds_conv.name + ".out", b.d, s);
            add_bn(b.ds_bn);
            add(b.ds_bn.name + ".out", b.e, s);
        }
        add_bn(b.bn2);
        add(name + ".out", b.out, s);
    }
    add("pooled", pooled_, {N, kFeatures});
    add("logits", logits_, {N, config_.num_genres});
    return out;
}

StFile ResNet18::state_dict() const {
    layer::synchronize(exec_);
    StFile f;
    std::vector<const Bn*> bns = all_bns();
    size_t p = 0, b = 0, buf = 0;
    for (const StateEntry& e : layout_) {
        StTensor t;
        t.name = e.name;
        t.shape = e.shape;
        if (e.kind == StateKind::Parameter) {
            t.f32 = params_.tensor(param_slots_[p++]).to_host();
        } else if (e.kind == StateKind::Buffer) {
            const Bn* bn = bns[buf / 2];
            t.f32 = buffers_.tensor(buf % 2 == 0 ? bn->running_mean : bn->running_var).to_host();
            ++buf;
        } else {
            t.dtype = StDtype::I64;
            t.i64 = {bns[b++]->num_batches_tracked};
        }
        f.tensors.push_back(std::move(t));
    }
    return f;
}

void ResNet18::load_state_dict(const StFile& state, const std::string& source) {
    // Check everything first: a bad file changes nothing.
    std::vector<const StTensor*> ordered = check_state_dict(state, config_.num_genres, source);
    std::vector<Bn*> bns = all_bns();
    size_t p = 0, b = 0, buf = 0;
    for (size_t i = 0; i < layout_.size(); ++i) {
        const StateEntry& e = layout_[i];
        const StTensor& t = *ordered[i];
        if (e.kind == StateKind::Parameter) {
            params_.tensor(param_slots_[p++]).copy_from_host(t.f32.data(), exec_.stream);
        } else if (e.kind == StateKind::Buffer) {
            Bn* bn = bns[buf / 2];
            buffers_.tensor(buf % 2 == 0 ? bn->running_mean : bn->running_var)
                .copy_from_host(t.f32.data(), exec_.stream);
            ++buf;
        } else {
            bns[b++]->num_batches_tracked = t.i64[0];
        }
    }
    layer::synchronize(exec_);  // the host vectors may go away on return
}

StFile ResNet18::optimizer_state() const {
    require_training("optimizer_state");
    layer::synchronize(exec_);
    StFile f;
    size_t p = 0;
    for (const StateEntry& e : layout_) {
        if (e.kind != StateKind::Parameter) continue;
        Arena::Slot slot = param_slots_[p++];
        f.tensors.push_back(
            {"exp_avg." + e.name, StDtype::F32, e.shape, adam_m_.tensor(slot).to_host(), {}});
        f.tensors.push_back(
            {"exp_avg_sq." + e.name, StDtype::F32, e.shape, adam_v_.tensor(slot).to_host(), {}});
    }
    f.tensors.push_back({"step", StDtype::I64, {}, {}, {adam_steps_}});
    return f;
}

OptimizerMoments check_optimizer_state(const StFile& state, const std::vector<StateEntry>& layout,
                                       const std::string& source) {
    std::map<std::string, const StTensor*> by_name;
    for (const StTensor& t : state.tensors)
        by_name[t.name] = &t;
    auto take = [&](const std::string& name, StDtype dtype, const Shape& shape) {
        auto it = by_name.find(name);
        if (it == by_name.end()) throw Error(source + ": tensor '" + name + "' is missing");
        const StTensor& t = *it->second;
        if (t.dtype != dtype || t.shape != shape)
            throw Error(source + ": tensor '" + name + "' is " + st_dtype_name(t.dtype) + " " +
                        shape_string(t.shape) + ", expected " + st_dtype_name(dtype) + " " +
                        shape_string(shape));
        by_name.erase(it);
        return &t;
    };
    OptimizerMoments out;
    for (const StateEntry& e : layout)
        if (e.kind == StateKind::Parameter)
            out.moments.push_back({take("exp_avg." + e.name, StDtype::F32, e.shape),
                                   take("exp_avg_sq." + e.name, StDtype::F32, e.shape)});
    const StTensor* step = take("step", StDtype::I64, {});
    if (!by_name.empty())
        throw Error(source + ": unexpected tensor '" + by_name.begin()->first +
                    "' in the optimizer state");
    GNET_CHECK(step->i64[0] >= 0, source + ": negative Adam step count");
    out.step = step->i64[0];
    return out;
}

void ResNet18::load_optimizer_state(const StFile& state, const std::string& source) {
    require_training("load_optimizer_state");
    const OptimizerMoments checked = check_optimizer_state(state, layout_, source);
    for (size_t p = 0; p < checked.moments.size(); ++p) {
        adam_m_.tensor(param_slots_[p])
            .copy_from_host(checked.moments[p].first->f32.data(), exec_.stream);
        adam_v_.tensor(param_slots_[p])
            .copy_from_host(checked.moments[p].second->f32.data(), exec_.stream);
    }
    adam_steps_ = checked.step;
    layer::synchronize(exec_);
}

}  // namespace gnet
