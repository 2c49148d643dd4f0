#pragma once
// The classifier and its loss fused and chunked over rows (the technique of
// Liger Kernel's FusedLinearCrossEntropy and Apple's Cut Cross-Entropy):
// logits = h W^T exist for one chunk of rows at a time, so training never
// holds B*T*V of them (400 MB of fp32 for SmolLM2's 49,152 tokens at 8x256).
// Composed of Backend ops (gemm with transpose flags, the fused softmax
// cross-entropy, argmax_rows), so the CPU and CUDA run the same sequence.
#include <cstdint>

#include "core/tensor/backend.h"

namespace lwb {

// Rows of one chunk: about N*C/V, so a chunk's logits are the size of one
// hidden-state activation (Liger's rule), but at least kMinChunkRows so each
// gemm keeps a useful height (and the lm_head gradient is not re-read and
// re-written for a handful of rows), and at most n.
inline constexpr std::int64_t kMinChunkRows = 128;
std::int64_t linear_cross_entropy_chunk_rows(std::int64_t n, std::int64_t C, std::int64_t V);

// For rows i < n, with logits[i] = h[i] W^T:
//   losses[i] = -log softmax(logits[i])[targets[i]] (0 where targets[i] < 0);
//   predictions[i] = argmax_j logits[i, j]      (when predictions is defined);
//   dh[i] (=) = dlogits[i] W                    (when dh is defined),
//   dW (+=)  = sum_i dlogits[i]^T h[i]          (when dW is defined too),
// where dlogits[i] = (softmax(logits[i]) - onehot(targets[i])) * scale.
// h, dh [n, C]; W, dW [V, C]; losses [n]; targets, predictions I32 [n].
// chunk [rows, V] holds one chunk's logits (then their gradient); its row
// count is the chunk size. dW may alias a tied embedding's gradient.
void linear_cross_entropy(Backend& be, const Tensor& losses, const Tensor& predictions,
                          const Tensor& dh, const Tensor& dW, const Tensor& h, const Tensor& W,
                          const Tensor& targets, const Tensor& chunk, std::int64_t n,
                          std::int64_t C, std::int64_t V, double scale);

}  // namespace lwb
