#include "core/model/linear.h"

#include <stdexcept>

namespace lwb {

const Tensor& SharedTensors::frozen(TensorArena& arena, const std::string& name, Shape shape, bool& first) {
  auto [it, fresh] = tensors_.try_emplace(name);
  first = fresh;
  if (fresh) {
    it->second = std::make_unique<Tensor>();
    it->second->shape = shape;
    arena.add(it->second.get(), kModelLevel, name, shape);
  } else if (!(it->second->shape == shape)) {
    throw std::logic_error("shared tensor " + name + " asked for as " + shape.str() + " but declared as " +
                           it->second->shape.str());
  }
  return *it->second;
}

std::string Linear::hf_name() const {
  return "model.layers." + std::to_string(layer_) + "." + target_hf_path(target_);
}

void Linear::forward(const ForwardContext& ctx, const Tensor& x, const Tensor& y) {
  if (ctx.base_products && ctx.base_products->forward(*this, ctx.rows, x, y)) return;
  base_product(ctx, x, y, 0.0);
}

void Linear::base_product(const ForwardContext& ctx, const Tensor& x, const Tensor& y, double beta) const {
  ctx.backend.gemm(false, true, ctx.rows, out(), in(), 1.0, x, in(), weight, in(), beta, y, out());
}

void Linear::backward(const ForwardContext& ctx, const Tensor& x, const Tensor& dy,
                      const Tensor& dx, double dx_beta) {
  if (dx.defined())
    ctx.backend.gemm(false, false, ctx.rows, in(), out(), 1.0, dy, out(), weight, in(), dx_beta, dx, in());
  if (weight_grad.defined())
    ctx.backend.gemm(true, false, out(), in(), ctx.rows, 1.0, dy, out(), x, in(), 1.0,
                     weight_grad, in());
}

}  // namespace lwb
