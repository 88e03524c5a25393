#include "nn/resnet18_bf16.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/error.h"
#if GNET_HAVE_CUDA
#include "kernels/cuda_check.h"
#endif
#include "nn/layers_bf16.h"
#include "nn/model_init.h"
#include "nn/traffic.h"

namespace gnet {
namespace {

constexpr float kBnEps = 1e-5f, kBnMomentum = 0.1f;
constexpr int kFeatures = 512;

static_assert(sizeof(AdamScalars) == 4 * sizeof(float), "AdamScalars travels as 4 floats");

// GNET_CUDA_GRAPHS=0 runs GPU steps kernel by kernel (for profiling and comparison); graphs are
// also off under GNET_SYNC_DEBUG, whose per-launch synchronisation a capture cannot contain.
bool graphs_wanted() {
    const char* s = std::getenv("GNET_CUDA_GRAPHS");
    if (s && std::string(s) == "0") return false;
#if GNET_HAVE_CUDA
    return !sync_debug_enabled();
#else
    return false;
#endif
}

bool is_conv_weight(const StateEntry& e) {
    return e.kind == StateKind::Parameter && e.shape.size() == 4;
}

// A conv weight of shape (OC, C, KH, KW) from torchvision's OIHW to the model's OHWI, or back.
enum class WeightOrder { ToOhwi, ToOihw };
std::vector<float> permute_conv_weight(const std::vector<float>& w, const Shape& s,
                                       WeightOrder order) {
    const int64_t OC = s[0], C = s[1], KH = s[2], KW = s[3];
    std::vector<float> out(w.size());
    for (int64_t oc = 0; oc < OC; ++oc)
        for (int64_t c = 0; c < C; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
                for (int64_t kw = 0; kw < KW; ++kw) {
                    const size_t oihw = size_t(((oc * C + c) * KH + kh) * KW + kw);
                    const size_t ohwi = size_t(((oc * KH + kh) * KW + kw) * C + c);
                    if (order == WeightOrder::ToOhwi)
                        out[ohwi] = w[oihw];
                    else
                        out[oihw] = w[ohwi];
                }
    return out;
}

std::vector<float> oihw_to_ohwi(const std::vector<float>& w, const Shape& s) {
    return permute_conv_weight(w, s, WeightOrder::ToOhwi);
}

std::vector<float> ohwi_to_oihw(const std::vector<float>& w, const Shape& s) {
    return permute_conv_weight(w, s, WeightOrder::ToOihw);
}

}  // namespace

Conv2dParams ResNet18Bf16::Conv::params(int N) const {
    return Conv2dParams::make(N, C, H, W, OC, K, K, stride, pad);
}

Arena::Slot ResNet18Bf16::reserve_bf16(int64_t count) {
    return acts_.reserve({(count + 1) / 2});
}

Bf16* ResNet18Bf16::bf16(Arena::Slot slot) const {
    return reinterpret_cast<Bf16*>(acts_.tensor(slot).data());
}

float* ResNet18Bf16::f32(const Arena& a, Arena::Slot slot) const {
    return a.tensor(slot).data();
}

Bf16* ResNet18Bf16::w16(const Conv& c) const {
    return reinterpret_cast<Bf16*>(weights16_.tensor(params16_).data()) + params_.offset(c.w);
}

ResNet18Bf16::Conv ResNet18Bf16::make_conv(const std::string& name, int C, int OC, int K,
                                           int stride, int pad, int H, int W) {
    Conv c;
    c.name = name;
    c.C = C, c.OC = OC, c.K = K, c.stride = stride, c.pad = pad, c.H = H, c.W = W;
    c.OH = conv_out_size(H, K, stride, pad);
    c.OW = conv_out_size(W, K, stride, pad);
    c.w = param_slot_.at(name + ".weight");
    c.wt16 = weights16_.reserve({(int64_t(OC) * C * K * K + 1) / 2});
    return c;
}

ResNet18Bf16::Bn ResNet18Bf16::make_bn(const std::string& name, int C, int64_t HW) {
    Bn b;
    b.name = name;
    b.C = C;
    b.HW = HW;
    b.gamma = param_slot_.at(name + ".weight");
    b.beta = param_slot_.at(name + ".bias");
    b.running_mean = buffer_slot_.at(name + ".running_mean");
    b.running_var = buffer_slot_.at(name + ".running_var");
    b.mean = acts_.reserve({C});
    b.invstd = acts_.reserve({C});
    b.sum = acts_.reserve({C});
    b.sum_sq = acts_.reserve({C});
    return b;
}

ResNet18Bf16::ResNet18Bf16(const ResNet18Config& config, Device device, Stream stream)
    : config_(config) {
    GNET_CHECK(
        config.max_batch >= 1 && config.num_genres >= 1 && config.height >= 8 && config.width >= 8,
        "ResNet18Bf16: bad configuration");
    exec_.device = device;
    exec_.stream = stream;
    exec_.cpu = effective_cpu_backend(config.cpu_backend);
    if (device == Device::CUDA && !stream) {  // graphs cannot capture the legacy stream
        own_stream_ = OwnedStream::create();
        exec_.stream = own_stream_.get();
    }
    const int G = config.num_genres, maxN = config.max_batch;
    layout_ = resnet18_state_layout(G);
    for (const StateEntry& e : layout_) {
        if (e.kind == StateKind::Parameter) {
            param_slot_[e.name] = params_.reserve(e.shape);
            if (config.training) {
                grads_.reserve(e.shape);
                adam_m_.reserve(e.shape);
                adam_v_.reserve(e.shape);
            }
        } else if (e.kind == StateKind::Buffer) {
            buffer_slot_[e.name] = buffers_.reserve(e.shape);
        }
    }
    params16_ = weights16_.reserve({(params_.numel() + 1) / 2});

    // The network's shapes.
    const int H = config.height, W = config.width;
    stem_ = make_conv("conv1", 1, 64, 7, 2, 3, H, W);
    stem_bn_ = make_bn("bn1", 64, int64_t(stem_.OH) * stem_.OW);
    pool_ = Pool2dParams::make(maxN, 64, stem_.OH, stem_.OW, 3, 2, 1);
    const int64_t stem_size = int64_t(maxN) * stem_.OH * stem_.OW * 64;
    x16_ = reserve_bf16(int64_t(maxN) * H * W);
    stem_y_ = reserve_bf16(stem_size);
    stem_z_ = reserve_bf16(stem_size);
    const int64_t pool_size = int64_t(maxN) * pool_.OH * pool_.OW * 64;
    pool_out_ = reserve_bf16(pool_size);
    pool_argmax_ = acts_.reserve({pool_size});
    int C = 64, h = pool_.OH, w = pool_.OW;
    for (int stage = 0; stage < 4; ++stage) {
        const int OC = 64 << stage;
        for (int b = 0; b < 2; ++b) {
            const int stride = b == 0 && stage > 0 ? 2 : 1;
            const std::string prefix =
                "layer" + std::to_string(stage + 1) + "." + std::to_string(b);
            Block blk;
            blk.conv1 = make_conv(prefix + ".conv1", C, OC, 3, stride, 1, h, w);
            const int oh = blk.conv1.OH, ow = blk.conv1.OW;
            const int64_t hw = int64_t(oh) * ow, size = int64_t(maxN) * hw * OC;
            blk.bn1 = make_bn(prefix + ".bn1", OC, hw);
            blk.conv2 = make_conv(prefix + ".conv2", OC, OC, 3, 1, 1, oh, ow);
            blk.bn2 = make_bn(prefix + ".bn2", OC, hw);
            blk.has_down = stride != 1 || C != OC;
            if (blk.has_down) {
                blk.down = make_conv(prefix + ".downsample.0", C, OC, 1, stride, 0, h, w);
                blk.down_bn = make_bn(prefix + ".downsample.1", OC, hw);
                blk.yd = reserve_bf16(size);
                blk.zd = reserve_bf16(size);
            }
            blk.y1 = reserve_bf16(size);
            blk.z1 = reserve_bf16(size);
            blk.y2 = reserve_bf16(size);
            blk.out = reserve_bf16(size);
            blocks_.push_back(blk);
            C = OC, h = oh, w = ow;
        }
    }
    GNET_CHECK(C == kFeatures, "ResNet18Bf16: the last stage must have 512 channels");
    pooled_ = acts_.reserve({int64_t(maxN) * kFeatures});
    logits_ = acts_.reserve({int64_t(maxN) * G});
    dlogits_ = acts_.reserve({int64_t(maxN) * G});
    dpooled_ = acts_.reserve({int64_t(maxN) * kFeatures});
    targets_ = acts_.reserve({int64_t(maxN) * G});
    pos_weight_ = acts_.reserve({G});
    loss_ = acts_.reserve({1});
    // The input in float32 on the model's device, before its bf16 copy; and the gradient buffers.
    for (Arena::Slot& g : grad_buf_)
        g = reserve_bf16(std::max(stem_size, int64_t(maxN) * H * W));

    // One workspace for the largest scratch any conv or BN pass asks for, at any batch size
    // (backward_weight's split of K is not monotonic in the batch).
    for (int N = 1; N <= maxN; ++N)
        for (const Conv* c : all_convs()) {
            const Conv2dParams p = c->params(N);
            workspace_bytes_ = std::max(
                {workspace_bytes_, layer_bf16::conv_forward_workspace_bytes(exec_, p, true),
                 layer_bf16::conv_backward_weight_workspace_bytes(exec_, p)});
        }
    for (const Bn* bn : all_bns())
        workspace_bytes_ =
            std::max(workspace_bytes_, layer_bf16::bn_backward_workspace_bytes(
                                           exec_, BnBf16Params{int64_t(maxN) * bn->HW, bn->C}));
    workspace_ = acts_.reserve({int64_t(workspace_bytes_ / sizeof(float)) + 1});

    if (device == Device::CUDA) {
        graphs_enabled_ = graphs_wanted();
        copy_stream_ = OwnedStream::create();
        for (StepIo& io : io_) {
            if (!config.training) break;
            io.x = acts_.reserve({int64_t(maxN) * H * W});
            io.targets = acts_.reserve({int64_t(maxN) * G});
            io.pos_weight = acts_.reserve({G});
            io.scalars = acts_.reserve({4});
            io.scalars_host = PinnedBuffer(sizeof(AdamScalars));
            io.out_host = PinnedBuffer(sizeof(float) * (1 + size_t(maxN) * G));
            io.copied = StreamEvent::create();
            io.done = StreamEvent::create();
        }
    }

    stream = exec_.stream;
    params_.allocate(device, stream);
    buffers_.allocate(device, stream);
    if (config.training) {
        grads_.allocate(device, stream);
        adam_m_.allocate(device, stream);
        adam_v_.allocate(device, stream);
    }
    weights16_.allocate(device, stream);
    acts_.allocate(device, stream);
    if (config.init_seed) {
        load_state_dict(resnet18_init_state(G, *config.init_seed), "torchvision init");
    } else {
        refresh_weight_copies();
    }
    layer::synchronize(exec_);
}

std::vector<const ResNet18Bf16::Conv*> ResNet18Bf16::all_convs() const {
    std::vector<const Conv*> v = {&stem_};
    for (const Block& b : blocks_) {
        v.push_back(&b.conv1);
        v.push_back(&b.conv2);
        if (b.has_down) v.push_back(&b.down);
    }
    return v;
}

std::vector<const ResNet18Bf16::Bn*> ResNet18Bf16::all_bns() const {
    std::vector<const Bn*> v = {&stem_bn_};
    for (const Block& b : blocks_) {
        v.push_back(&b.bn1);
        v.push_back(&b.bn2);
        if (b.has_down) v.push_back(&b.down_bn);
    }
    return v;
}

std::vector<ResNet18Bf16::Bn*> ResNet18Bf16::all_bns() {
    std::vector<Bn*> v = {&stem_bn_};
    for (Block& b : blocks_) {
        v.push_back(&b.bn1);
        v.push_back(&b.bn2);
        if (b.has_down) v.push_back(&b.down_bn);
    }
    return v;
}

void ResNet18Bf16::require_training(const char* what) const {
    GNET_CHECK(config_.training,
               std::string("ResNet18Bf16::") + what + ": this model was built for inference only");
}

void ResNet18Bf16::refresh_weight_copies() {
    layer_bf16::to_bf16(exec_, params_.numel(), params_.data(),
                        reinterpret_cast<Bf16*>(weights16_.tensor(params16_).data()));
    for (const Conv* c : all_convs())
        layer_bf16::conv_ihwo(exec_, c->params(1), w16(*c),
                              reinterpret_cast<Bf16*>(weights16_.tensor(c->wt16).data()));
}

// ---------------------------------------------------------------------------------------------
// Forward
// ---------------------------------------------------------------------------------------------

void ResNet18Bf16::conv_bn(const Conv& c, Bn& bn, int N, const Bf16* x, Bf16* y, BnEpilogue epi,
                           const Bf16* residual, Bf16* z) {
    const Conv2dParams p = c.params(N);
    const BnBf16Params bp{int64_t(N) * bn.HW, bn.C, kBnEps, kBnMomentum};
    void* ws = f32(acts_, workspace_);
    float *mean = f32(acts_, bn.mean), *invstd = f32(acts_, bn.invstd);
    if (mode_ == Mode::Train && config_.training) {
        ChannelStats st{f32(acts_, bn.sum), f32(acts_, bn.sum_sq)};
        layer_bf16::conv_forward(exec_, p, x, w16(c), y, &st, ws);
        layer_bf16::bn_finalize(exec_, bp, st.sum, st.sum_sq, mean, invstd,
                                f32(buffers_, bn.running_mean), f32(buffers_, bn.running_var));
        ++bn.num_batches_tracked;
    } else {
        layer_bf16::conv_forward(exec_, p, x, w16(c), y, nullptr, ws);
        layer_bf16::bn_eval_stats(exec_, bp, f32(buffers_, bn.running_mean),
                                  f32(buffers_, bn.running_var), mean, invstd);
    }
    layer_bf16::bn_apply(exec_, bp, epi, y, mean, invstd, f32(params_, bn.gamma),
                         f32(params_, bn.beta), residual, z);
}

Tensor ResNet18Bf16::forward(const Tensor& x) {
    const int H = config_.height, W = config_.width;
    GNET_CHECK(x.rank() == 4 && x.dim(1) == 1 && x.dim(2) == H && x.dim(3) == W,
               "ResNet18Bf16: input has shape " + shape_string(x.shape()) + "; expected [N, 1, " +
                   std::to_string(H) + ", " + std::to_string(W) + "]");
    const int64_t N64 = x.dim(0);
    GNET_CHECK(N64 >= 1 && N64 <= config_.max_batch,
               "ResNet18Bf16: a batch of " + std::to_string(N64) + "; this model takes 1.." +
                   std::to_string(config_.max_batch));
    const int N = int(N64);
    // The float32 input on the model's device (a gradient buffer is free during forward).
    float* x32 = f32(acts_, grad_buf_[0]);
    count_traffic("input_copy", 4.0 * double(x.numel()));
    copy_floats(x32, exec_.device, x.data(), x.device(), x.numel(), exec_.stream);
    if (mode_ == Mode::Eval && uses_graphs())
        graph(1, N, 0, false, [&] { forward_body(x32, N); }).launch(exec_.stream);
    else
        forward_body(x32, N);
    last_batch_ = N;
    return logits();
}

void ResNet18Bf16::forward_body(const float* x32, int N) {
    layer_bf16::to_bf16(exec_, int64_t(N) * config_.height * config_.width, x32, bf16(x16_));

    conv_bn(stem_, stem_bn_, N, bf16(x16_), bf16(stem_y_), BnEpilogue::Relu, nullptr,
            bf16(stem_z_));
    Pool2dParams pool = Pool2dParams::make(N, 64, stem_.OH, stem_.OW, 3, 2, 1);
    layer_bf16::maxpool_forward(exec_, pool, bf16(stem_z_), bf16(pool_out_),
                                reinterpret_cast<int32_t*>(f32(acts_, pool_argmax_)));
    const Bf16* cur = bf16(pool_out_);
    for (Block& b : blocks_) {
        conv_bn(b.conv1, b.bn1, N, cur, bf16(b.y1), BnEpilogue::Relu, nullptr, bf16(b.z1));
        const Bf16* residual = cur;
        if (b.has_down) {
            conv_bn(b.down, b.down_bn, N, cur, bf16(b.yd), BnEpilogue::None, nullptr, bf16(b.zd));
            residual = bf16(b.zd);
        }
        conv_bn(b.conv2, b.bn2, N, bf16(b.z1), bf16(b.y2), BnEpilogue::AddRelu, residual,
                bf16(b.out));
        cur = bf16(b.out);
    }
    const Block& last = blocks_.back();
    layer_bf16::avgpool_forward(exec_, N, last.conv2.OH * last.conv2.OW, kFeatures, cur,
                                f32(acts_, pooled_));
    layer::linear_forward(exec_, LinearParams{N, kFeatures, config_.num_genres},
                          f32(acts_, pooled_), f32(params_, param_slot_.at("fc.weight")),
                          f32(params_, param_slot_.at("fc.bias")), f32(acts_, logits_));
}

Tensor ResNet18Bf16::features() const {
    GNET_CHECK(last_batch_ > 0, "ResNet18Bf16: no forward pass yet");
    return Tensor::view(f32(acts_, pooled_), {last_batch_, kFeatures}, exec_.device);
}

Tensor ResNet18Bf16::logits() const {
    GNET_CHECK(last_batch_ > 0, "ResNet18Bf16: no forward pass yet");
    return Tensor::view(f32(acts_, logits_), {last_batch_, config_.num_genres}, exec_.device);
}

// ---------------------------------------------------------------------------------------------
// Backward and Adam
// ---------------------------------------------------------------------------------------------

void ResNet18Bf16::backward(const Tensor& dlogits) {
    require_training("backward");
    const int N = last_batch_, G = config_.num_genres;
    GNET_CHECK(N > 0 && dlogits.numel() == int64_t(N) * G,
               "ResNet18Bf16::backward: dlogits do not match the last forward");
    float* dl = f32(acts_, dlogits_);
    if (dlogits.data() != dl)
        copy_floats(dl, exec_.device, dlogits.data(), dlogits.device(), dlogits.numel(),
                    exec_.stream);
    void* ws = f32(acts_, workspace_);
    auto grad = [&](Arena::Slot s) { return f32(grads_, s); };
    auto g16 = [&](int i) { return bf16(grad_buf_[i]); };

    const Arena::Slot fc_w = param_slot_.at("fc.weight"), fc_b = param_slot_.at("fc.bias");
    layer::linear_backward(exec_, LinearParams{N, kFeatures, G}, f32(acts_, pooled_),
                           f32(params_, fc_w), dl, f32(acts_, dpooled_), grad(fc_w), grad(fc_b));
    if (gradient_hook_) gradient_hook_(grads_.offset(fc_w));
    if (backbone_frozen_) {  // only fc learns
        if (gradient_hook_) gradient_hook_(0);
        return;
    }
    const Block& last = blocks_.back();
    layer_bf16::avgpool_backward(exec_, N, last.conv2.OH * last.conv2.OW, kFeatures,
                                 f32(acts_, dpooled_), g16(0));

    // g16(0) holds the gradient of the current block's output throughout.
    for (size_t bi = blocks_.size(); bi-- > 0;) {
        Block& b = blocks_[bi];
        const Bf16* in = bi == 0 ? bf16(pool_out_) : bf16(blocks_[bi - 1].out);
        auto bn_params = [&](const Bn& bn) {
            return BnBf16Params{int64_t(N) * bn.HW, bn.C, kBnEps, kBnMomentum};
        };
        auto bn_back = [&](Bn& bn, BnEpilogue epi, const Bf16* dz, const Bf16* z, const Bf16* y,
                           Bf16* dy, Bf16* dres) {
            layer_bf16::bn_backward(exec_, bn_params(bn), epi, dz, z, y, f32(acts_, bn.mean),
                                    f32(acts_, bn.invstd), f32(params_, bn.gamma), dy, dres,
                                    grad(bn.gamma), grad(bn.beta), ws);
        };
        auto conv_back = [&](const Conv& c, const Bf16* x, const Bf16* dy, Bf16* dx) {
            const Conv2dParams p = c.params(N);
            layer_bf16::conv_backward_weight(exec_, p, x, dy, grad(c.w), Accum::Add, ws);
            if (dx)
                layer_bf16::conv_backward_data(
                    exec_, p, dy, reinterpret_cast<Bf16*>(weights16_.tensor(c.wt16).data()), dx);
        };
        // out = relu(bn2(y2) + residual)
        bn_back(b.bn2, BnEpilogue::AddRelu, g16(0), bf16(b.out), bf16(b.y2), g16(1), g16(2));
        conv_back(b.conv2, bf16(b.z1), g16(1), g16(3));  // dz1 in 3
        bn_back(b.bn1, BnEpilogue::Relu, g16(3), bf16(b.z1), bf16(b.y1), g16(1), nullptr);
        conv_back(b.conv1, in, g16(1), g16(3));  // din (main path) in 3
        if (b.has_down) {
            bn_back(b.down_bn, BnEpilogue::None, g16(2), bf16(b.zd), bf16(b.yd), g16(1), nullptr);
            conv_back(b.down, in, g16(1), g16(0));  // din (shortcut) in 0
            layer_bf16::add(exec_, b.conv1.params(N).x_size(), g16(3), g16(0), g16(0));
        } else {
            layer_bf16::add(exec_, b.conv1.params(N).x_size(), g16(3), g16(2), g16(0));
        }
        if (gradient_hook_) gradient_hook_(grads_.offset(b.conv1.w));
    }
    Pool2dParams pool = Pool2dParams::make(N, 64, stem_.OH, stem_.OW, 3, 2, 1);
    layer_bf16::maxpool_backward(
        exec_, pool, g16(0), reinterpret_cast<const int32_t*>(f32(acts_, pool_argmax_)), g16(1));
    layer_bf16::bn_backward(exec_, BnBf16Params{int64_t(N) * stem_bn_.HW, 64, kBnEps, kBnMomentum},
                            BnEpilogue::Relu, g16(1), bf16(stem_z_), bf16(stem_y_),
                            f32(acts_, stem_bn_.mean), f32(acts_, stem_bn_.invstd),
                            f32(params_, stem_bn_.gamma), g16(2), nullptr, grad(stem_bn_.gamma),
                            grad(stem_bn_.beta), ws);
    layer_bf16::conv_backward_weight(exec_, stem_.params(N), bf16(x16_), g16(2), grad(stem_.w),
                                     Accum::Add, ws);
    if (gradient_hook_) gradient_hook_(0);
}

float* ResNet18Bf16::gradient_data() {
    require_training("gradient_data");
    return grads_.data();
}

void ResNet18Bf16::zero_grad() {
    require_training("zero_grad");
    count_traffic("zero_grad", 4.0 * double(grads_.numel()));
    grads_.zero(exec_.stream);
}

void ResNet18Bf16::adam_step(const AdamParams& p) {
    require_training("adam_step");
    adam_body(p, nullptr);
}

void ResNet18Bf16::adam_body(const AdamParams& p, const AdamScalars* scalars) {
    // fc.weight and fc.bias are the arena's last slots: a frozen backbone updates only that tail
    // (and no conv weight changes, so their IHWO copies stay as they are).
    const int64_t from = backbone_frozen_ ? params_.offset(param_slot_.at("fc.weight")) : 0;
    layer_bf16::adam_step(exec_, p, scalars, params_.numel() - from, params_.data() + from,
                          grads_.data() + from, adam_m_.data() + from, adam_v_.data() + from,
                          reinterpret_cast<Bf16*>(weights16_.tensor(params16_).data()) + from);
    if (backbone_frozen_) return;
    for (const Conv* c : all_convs())
        layer_bf16::conv_ihwo(exec_, c->params(1), w16(*c),
                              reinterpret_cast<Bf16*>(weights16_.tensor(c->wt16).data()));
}

// ---------------------------------------------------------------------------------------------
// Train steps: direct, or as CUDA graphs
// ---------------------------------------------------------------------------------------------

bool ResNet18Bf16::uses_graphs() const {
    return graphs_enabled_ && exec_.device == Device::CUDA && !gradient_hook_;
}

void ResNet18Bf16::set_graphs_enabled(bool enabled) {
    GNET_CHECK(!enabled || exec_.device == Device::CUDA,
               "ResNet18Bf16: CUDA graphs need a GPU model");
    graphs_enabled_ = enabled;
}

const CudaGraph& ResNet18Bf16::graph(int kind, int N, int set, bool pos_weight,
                                     const std::function<void()>& record) {
    const auto key = std::make_tuple(kind, N, set, pos_weight, backbone_frozen_);
    auto it = graphs_.find(key);
    if (it == graphs_.end())
        it = graphs_.emplace(key, CudaGraph::capture(exec_.stream, record)).first;
    return it->second;
}

void ResNet18Bf16::train_body(int N, const float* x32, const float* targets,
                              const float* pos_weight, const AdamParams& adam,
                              const AdamScalars* scalars, float* out_host) {
    const int G = config_.num_genres;
    const Mode saved = mode_;
    mode_ = Mode::Train;
    try {
        zero_grad();
        forward_body(x32, N);
        last_batch_ = N;
        layer::bce_logits_forward_backward(exec_, N, G, f32(acts_, logits_), targets, pos_weight,
                                           f32(acts_, loss_), f32(acts_, dlogits_));
        backward(Tensor::view(f32(acts_, dlogits_), {N, G}, exec_.device));
        adam_body(adam, scalars);
        if (out_host) {  // the loss, then the logits
            copy_floats(out_host, Device::CPU, f32(acts_, loss_), exec_.device, 1, exec_.stream);
            copy_floats(out_host + 1, Device::CPU, f32(acts_, logits_), exec_.device,
                        int64_t(N) * G, exec_.stream);
        }
        mode_ = saved;
    } catch (...) {
        mode_ = saved;
        throw;
    }
}

float ResNet18Bf16::direct_train_step(const Tensor& x, const Tensor& targets,
                                      const Tensor* pos_weight, AdamParams adam) {
    const int N = int(x.dim(0)), G = config_.num_genres;
    // The float32 input on the model's device (a gradient buffer is free during forward).
    float* x32 = f32(acts_, grad_buf_[0]);
    count_traffic("input_copy", 4.0 * double(x.numel() + targets.numel()));
    copy_floats(x32, exec_.device, x.data(), x.device(), x.numel(), exec_.stream);
    copy_floats(f32(acts_, targets_), exec_.device, targets.data(), targets.device(),
                targets.numel(), exec_.stream);
    const float* pw = nullptr;
    if (pos_weight) {
        copy_floats(f32(acts_, pos_weight_), exec_.device, pos_weight->data(), pos_weight->device(),
                    G, exec_.stream);
        pw = f32(acts_, pos_weight_);
    }
    adam.step = int(adam_steps_ + 1);
    train_body(N, x32, f32(acts_, targets_), pw, adam, nullptr, nullptr);
    ++adam_steps_;
    float loss = 0;
    copy_floats(&loss, Device::CPU, f32(acts_, loss_), exec_.device, 1, exec_.stream);
    layer::synchronize(exec_);
    return loss;
}

float ResNet18Bf16::train_step(const Tensor& x, const Tensor& targets, const Tensor* pos_weight,
                               AdamParams adam) {
    GNET_CHECK(in_flight_.empty(), "ResNet18Bf16::train_step: finish the begun steps first");
    begin_train_step(x, targets, pos_weight, adam);
    return finish_train_step(nullptr);
}

void ResNet18Bf16::begin_train_step(const Tensor& x, const Tensor& targets,
                                    const Tensor* pos_weight, AdamParams adam) {
    require_training("train_step");
    GNET_CHECK(in_flight_.size() < 2, "ResNet18Bf16: two train steps are in flight already");
    const int H = config_.height, W = config_.width, G = config_.num_genres;
    GNET_CHECK(x.rank() == 4 && x.dim(1) == 1 && x.dim(2) == H && x.dim(3) == W && x.dim(0) >= 1 &&
                   x.dim(0) <= config_.max_batch,
               "ResNet18Bf16::train_step: input has shape " + shape_string(x.shape()) +
                   "; expected [1.." + std::to_string(config_.max_batch) + ", 1, " +
                   std::to_string(H) + ", " + std::to_string(W) + "]");
    const int N = int(x.dim(0));
    GNET_CHECK(targets.rank() == 2 && targets.dim(0) == N && targets.dim(1) == G,
               "ResNet18Bf16::train_step: targets have shape " + shape_string(targets.shape()) +
                   "; expected [" + std::to_string(N) + ", " + std::to_string(G) + "]");
    GNET_CHECK(!pos_weight || pos_weight->numel() == G,
               "ResNet18Bf16::train_step: pos_weight has shape " +
                   (pos_weight ? shape_string(pos_weight->shape()) : std::string()));
    if (!uses_graphs()) {
        const float loss = direct_train_step(x, targets, pos_weight, adam);
        direct_results_.emplace_back(loss, logits().to_host());
        in_flight_.push_back({-1, N, true});
        return;
    }

    // Captured graphs hold beta1, beta2 and eps as launch arguments: new ones, new graphs.
    if (adam.beta1 != graph_adam_.beta1 || adam.beta2 != graph_adam_.beta2 ||
        adam.eps != graph_adam_.eps || adam.mode != graph_adam_.mode) {
        for (auto it = graphs_.begin(); it != graphs_.end();)
            it = std::get<0>(it->first) == 0 ? graphs_.erase(it) : std::next(it);
        graph_adam_ = adam;
    }
    adam.step = int(adam_steps_ + 1);
    const AdamScalars scalars = AdamScalars::make(adam);  // checks adam

    // Inputs of set k on the copy stream, after the step that last read them (two steps back).
    const int k = next_set_;
    StepIo& io = io_[k];
    const Stream copy = copy_stream_.get();
    io.done.wait_on(copy);
    std::memcpy(io.scalars_host.data(), &scalars, sizeof scalars);
    count_traffic("input_copy", 4.0 * double(x.numel() + targets.numel()));
    copy_floats(f32(acts_, io.x), exec_.device, x.data(), x.device(), x.numel(), copy);
    copy_floats(f32(acts_, io.targets), exec_.device, targets.data(), targets.device(),
                targets.numel(), copy);
    if (pos_weight)
        copy_floats(f32(acts_, io.pos_weight), exec_.device, pos_weight->data(),
                    pos_weight->device(), G, copy);
    copy_floats(f32(acts_, io.scalars), exec_.device, io.scalars_host.as<float>(), Device::CPU, 4,
                copy);
    io.copied.record(copy);
    io.copied.synchronize();  // the caller may reuse x, targets and pos_weight now
    io.copied.wait_on(exec_.stream);

    // Capturing runs the host side of the step once (batch-norm counters included); the
    // counters then advance once per launch.
    std::vector<int64_t> tracked;
    for (const Bn* bn : all_bns())
        tracked.push_back(bn->num_batches_tracked);
    const CudaGraph& g = graph(0, N, k, pos_weight != nullptr, [&] {
        train_body(N, f32(acts_, io.x), f32(acts_, io.targets),
                   pos_weight ? f32(acts_, io.pos_weight) : nullptr, adam,
                   reinterpret_cast<const AdamScalars*>(f32(acts_, io.scalars)),
                   io.out_host.as<float>());
    });
    g.launch(exec_.stream);
    io.done.record(exec_.stream);
    size_t i = 0;
    for (Bn* bn : all_bns())
        bn->num_batches_tracked = tracked[i++] + 1;
    ++adam_steps_;
    last_batch_ = N;
    next_set_ ^= 1;
    in_flight_.push_back({k, N, false});
}

float ResNet18Bf16::finish_train_step(std::vector<float>* logits) {
    GNET_CHECK(!in_flight_.empty(), "ResNet18Bf16::finish_train_step: no step was begun");
    const InFlight f = in_flight_.front();
    in_flight_.pop_front();
    if (f.direct) {
        std::pair<float, std::vector<float>> r = std::move(direct_results_.front());
        direct_results_.pop_front();
        if (logits) *logits = std::move(r.second);
        return r.first;
    }
    const StepIo& io = io_[f.set];
    io.done.synchronize();
    const float* out = io.out_host.as<float>();
    if (logits) logits->assign(out + 1, out + 1 + size_t(f.N) * config_.num_genres);
    return out[0];
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

StFile ResNet18Bf16::state_dict() const {
    layer::synchronize(exec_);
    StFile f;
    std::vector<const Bn*> bns = all_bns();
    std::map<std::string, int64_t> counters;
    for (const Bn* bn : bns)
        counters[bn->name + ".num_batches_tracked"] = bn->num_batches_tracked;
    for (const StateEntry& e : layout_) {
        StTensor t;
        t.name = e.name;
        t.shape = e.shape;
        if (e.kind == StateKind::Parameter) {
            t.f32 = params_.tensor(param_slot_.at(e.name)).to_host();
            if (is_conv_weight(e)) t.f32 = ohwi_to_oihw(t.f32, e.shape);
        } else if (e.kind == StateKind::Buffer) {
            t.f32 = buffers_.tensor(buffer_slot_.at(e.name)).to_host();
        } else {
            t.dtype = StDtype::I64;
            t.i64 = {counters.at(e.name)};
        }
        f.tensors.push_back(std::move(t));
    }
    return f;
}

void ResNet18Bf16::load_state_dict(const StFile& state, const std::string& source) {
    std::vector<const StTensor*> ordered = check_state_dict(state, config_.num_genres, source);
    std::map<std::string, Bn*> bn_of;
    for (Bn* bn : all_bns())
        bn_of[bn->name + ".num_batches_tracked"] = bn;
    for (size_t i = 0; i < layout_.size(); ++i) {
        const StateEntry& e = layout_[i];
        const StTensor& t = *ordered[i];
        if (e.kind == StateKind::Parameter) {
            const std::vector<float> v = is_conv_weight(e) ? oihw_to_ohwi(t.f32, e.shape) : t.f32;
            params_.tensor(param_slot_.at(e.name)).copy_from_host(v.data(), exec_.stream);
            layer::synchronize(exec_);  // v goes away
        } else if (e.kind == StateKind::Buffer) {
            buffers_.tensor(buffer_slot_.at(e.name)).copy_from_host(t.f32.data(), exec_.stream);
        } else {
            bn_of.at(e.name)->num_batches_tracked = t.i64[0];
        }
    }
    refresh_weight_copies();
    layer::synchronize(exec_);
}

StFile ResNet18Bf16::optimizer_state() const {
    require_training("optimizer_state");
    layer::synchronize(exec_);
    StFile f;
    for (const StateEntry& e : layout_) {
        if (e.kind != StateKind::Parameter) continue;
        const Arena::Slot slot = param_slot_.at(e.name);
        std::vector<float> m = adam_m_.tensor(slot).to_host(), v = adam_v_.tensor(slot).to_host();
        if (is_conv_weight(e)) {
            m = ohwi_to_oihw(m, e.shape);
            v = ohwi_to_oihw(v, e.shape);
        }
        f.tensors.push_back({"exp_avg." + e.name, StDtype::F32, e.shape, std::move(m), {}});
        f.tensors.push_back({"exp_avg_sq." + e.name, StDtype::F32, e.shape, std::move(v), {}});
    }
    f.tensors.push_back({"step", StDtype::I64, {}, {}, {adam_steps_}});
    return f;
}

void ResNet18Bf16::load_optimizer_state(const StFile& state, const std::string& source) {
    require_training("load_optimizer_state");
    const OptimizerMoments checked = check_optimizer_state(state, layout_, source);
    size_t i = 0;
    for (const StateEntry& e : layout_) {
        if (e.kind != StateKind::Parameter) continue;
        const Arena::Slot slot = param_slot_.at(e.name);
        std::vector<float> m = checked.moments[i].first->f32, v = checked.moments[i].second->f32;
        ++i;
        if (is_conv_weight(e)) {
            m = oihw_to_ohwi(m, e.shape);
            v = oihw_to_ohwi(v, e.shape);
        }
        adam_m_.tensor(slot).copy_from_host(m.data(), exec_.stream);
        adam_v_.tensor(slot).copy_from_host(v.data(), exec_.stream);
        layer::synchronize(exec_);  // m and v go away
    }
    adam_steps_ = checked.step;
}

void ResNet18Bf16::copy_forward_state_from(const ResNet18Bf16& other) {
    GNET_CHECK(other.config_.max_batch == config_.max_batch &&
                   other.config_.num_genres == config_.num_genres &&
                   other.config_.height == config_.height && other.config_.width == config_.width,
               "ResNet18Bf16::copy_forward_state_from: the configurations differ");
    // Both activation arenas were planned in the same order; only the workspace (the last slot)
    // differs in size between devices, so everything before it lines up.
    layer::synchronize(other.exec_);
    const int64_t n = acts_.offset(workspace_);
    copy_floats(acts_.data(), exec_.device, other.acts_.data(), other.exec_.device, n,
                exec_.stream);
    layer::synchronize(exec_);
    last_batch_ = other.last_batch_;
}

std::vector<std::pair<std::string, std::vector<float>>> ResNet18Bf16::gradients() const {
    require_training("gradients");
    layer::synchronize(exec_);
    std::vector<std::pair<std::string, std::vector<float>>> out;
    for (const StateEntry& e : layout_) {
        if (e.kind != StateKind::Parameter) continue;
        std::vector<float> g = grads_.tensor(param_slot_.at(e.name)).to_host();
        if (is_conv_weight(e)) g = ohwi_to_oihw(g, e.shape);
        out.push_back({e.name, std::move(g)});
    }
    return out;
}

}  // namespace gnet
