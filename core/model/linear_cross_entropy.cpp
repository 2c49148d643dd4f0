#include "core/model/linear_cross_entropy.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace lwb {

std::int64_t linear_cross_entropy_chunk_rows(std::int64_t n, std::int64_t C, std::int64_t V) {
  const std::int64_t like_hidden = (n * C + V - 1) / V;
  return std::max<std::int64_t>(1, std::min(n, std::max(kMinChunkRows, like_hidden)));
}

void linear_cross_entropy(Backend& be, const Tensor& losses, const Tensor& predictions,
                          const Tensor& dh, const Tensor& dW, const Tensor& h, const Tensor& W,
                          const Tensor& targets, const Tensor& chunk, std::int64_t n,
                          std::int64_t C, std::int64_t V, double scale) {
  const std::int64_t rows = chunk.shape.ndim == 2 ? chunk.shape[0] : 0;
  if (rows <= 0 || chunk.shape[1] != V)
    throw std::invalid_argument("linear_cross_entropy: the chunk buffer is " + chunk.shape.str() +
                                ", expected [rows, " + std::to_string(V) + "]");
  if (dW.defined() && !dh.defined())
    throw std::invalid_argument("linear_cross_entropy: dW needs dh (both come from dlogits)");
  for (std::int64_t r0 = 0; r0 < n; r0 += rows) {
    const std::int64_t m = std::min(rows, n - r0);
    const Tensor logits = chunk.rows(0, m), hc = h.rows(r0, m);
    be.gemm(false, true, m, V, C, 1.0, hc, C, W, C, 0.0, logits, V);
    if (predictions.defined()) be.argmax_rows(predictions.view(r0, Shape{m}), logits, m, V);
    // In place: the chunk's logits become their gradient.
    be.cross_entropy(losses.view(r0, Shape{m}), dh.defined() ? logits : Tensor{}, logits,
                     targets.view(r0, Shape{m}), m, V, scale);
    if (!dh.defined()) continue;
    be.gemm(false, false, m, C, V, 1.0, logits, V, W, C, 0.0, dh.rows(r0, m), C);
    if (dW.defined()) be.gemm(true, false, V, C, m, 1.0, logits, V, hc, C, 1.0, dW, C);
  }
}

}  // namespace lwb
