// Binary cross-entropy on logits (multi-label), mean over all N*G elements, loss and gradient in
// one pass. Per element, with lw = 1 + (pw_g - 1) * t (pw = 1 without pos_weight):
//   l = (1 - t) * z + lw * (log1p(exp(-|z|)) + max(-z, 0))        (stable softplus(-z))
//   dl/dz = (1 - t) - lw * sigmoid(-z)                            (= sigmoid(z) - t when pw = 1)
// loss (scalar) = mean l (=); dlogits (N, G) = (dl/dz) / (N*G) (=), skipped when nullptr.
// logits, targets: (N, G); pos_weight: (G) or nullptr. Nothing is saved.
// GPU: ONE block; threads stride over the N*G elements (writing dlogits as they go) and the loss
// is summed in double by a fixed tree in shared memory into the device scalar: deterministic.
#pragma once

struct CUstream_st;

namespace gnet {

using Stream = CUstream_st*;

namespace cpu {
void bce_logits_forward_backward(int N, int G, const float* logits, const float* targets,
                                 const float* pos_weight, float* loss, float* dlogits);
}  // namespace cpu

namespace gpu {
// `loss` is a device pointer to one float.
void bce_logits_forward_backward(int N, int G, const float* logits, const float* targets,
                                 const float* pos_weight, float* loss, float* dlogits,
                                 Stream stream);
}  // namespace gpu

}  // namespace gnet
