#include "core/model/linear.h"

namespace lwb {

std::string Linear::hf_name() const {
  return "model.layers." + std::to_string(layer_) + "." + target_hf_path(target_);
}

void Linear::forward(const ForwardContext& ctx, const Tensor& x, const Tensor& y) {
  ctx.backend.gemm(false, true, ctx.rows, out(), in(), 1.0, x, in(), weight, in(), 0.0, y, out());
}

void Linear::backward(const ForwardContext& ctx, const Tensor& x, const Tensor& dy,
                      const Tensor& dx, double dx_beta) {
  ctx.backend.gemm(false, false, ctx.rows, in(), out(), 1.0, dy, out(), weight, in(), dx_beta, dx,
                   in());
  if (weight_grad.defined())
    ctx.backend.gemm(true, false, out(), in(), ctx.rows, 1.0, dy, out(), x, in(), 1.0,
                     weight_grad, in());
}

}  // namespace lwb
