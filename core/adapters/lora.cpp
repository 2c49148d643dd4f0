#include "core/adapters/lora.h"

#include <cmath>

#include "core/common/errors.h"
#include "core/model/weights_init.h"
#include "core/tensor/rng.h"

namespace lwb {

LoraLinear::LoraLinear(int layer, Target target, LinearShape shape, const AdapterConfig& config)
    : LoraLinear(layer, target, shape, config, config.scaling()) {}

LoraLinear::LoraLinear(int layer, Target target, LinearShape shape, const AdapterConfig& config,
                       double scaling)
    : Linear(layer, target, shape),
      r_(config.r),
      scaling_(scaling),
      dropout_(config.dropout),
      init_(config.init) {}

void LoraLinear::declare(ModelBuffers& b) {
  const std::string m = target_module_name(target());
  b.trainable.add(&lora_A, &lora_A_grad, layer(), m + ".lora_A", Shape{r_, in()}, true);
  b.trainable.add(&lora_B, &lora_B_grad, layer(), m + ".lora_B", Shape{out(), r_}, true);
  b.activations.add(&u_, layer(), m + ".lora", Shape{b.max_rows, r_});
  if (dropout_ > 0)
    b.activations.add(&x_drop_, layer(), m + ".lora_dropout", Shape{b.max_rows, in()});
}

std::int64_t LoraLinear::lora_scratch_elems(std::int64_t max_rows) const {
  // du [rows, r], then with dropout the gradient of the dropped input [rows, in].
  return max_rows * r_ + (dropout_ > 0 ? max_rows * in() : 0);
}

std::int64_t LoraLinear::scratch_elems(std::int64_t max_rows) const {
  return lora_scratch_elems(max_rows);
}

Tensor LoraLinear::extra_scratch(const ForwardContext& ctx, std::int64_t offset, Shape shape) const {
  return ctx.scratch.view(lora_scratch_elems(ctx.rows) + offset, shape);
}

void LoraLinear::initialize(Backend& backend, std::uint64_t seed) {
  const std::uint64_t s = derive_seed(seed, module_index());
  // kaiming_uniform_(a=sqrt(5)) on [r, in] has bound 1/sqrt(in); PEFT's
  // "gaussian" init draws A ~ N(0, 1/r^2). B starts at zero either way.
  upload_values(backend, lora_A,
                init_ == LoraInit::Kaiming
                    ? uniform_values(lora_A.numel(), 1.0 / std::sqrt(static_cast<double>(in())), s)
                    : normal_values(lora_A.numel(), 1.0 / r_, s));
  backend.fill(lora_B, 0.0);
}

std::vector<std::pair<std::string, Tensor>> LoraLinear::adapter_tensors() const {
  return {{"lora_A.weight", lora_A}, {"lora_B.weight", lora_B}};
}

std::uint64_t LoraLinear::dropout_seed(const ForwardContext& ctx) const {
  return derive_seed(ctx.step_seed, module_index());
}

Tensor LoraLinear::adapter_input(const ForwardContext& ctx, const Tensor& x, bool compute) {
  if (!dropout_active(ctx)) return x;
  const Tensor xd = x_drop_.rows(0, ctx.rows);
  if (compute) ctx.backend.dropout_forward(xd, x, dropout_, dropout_seed(ctx), ctx.rows * in());
  return xd;
}

void LoraLinear::lora_forward(const ForwardContext& ctx, const Tensor& xa, const Tensor& y) {
  Backend& be = ctx.backend;
  be.gemm(false, true, ctx.rows, r_, in(), 1.0, xa, in(), lora_A, in(), 0.0, u_, r_);
  be.gemm(false, true, ctx.rows, out(), r_, scaling_, u_, r_, lora_B, r_, 1.0, y, out());
}

Tensor LoraLinear::lora_backward(const ForwardContext& ctx, const Tensor& xa, const Tensor& g) {
  Backend& be = ctx.backend;
  const std::int64_t n = ctx.rows;
  const Tensor du = ctx.scratch.view(0, Shape{n, r_});
  be.gemm(true, false, out(), r_, n, scaling_, g, out(), u_, r_, 1.0, lora_B_grad, r_);
  be.gemm(false, false, n, r_, out(), scaling_, g, out(), lora_B, r_, 0.0, du, r_);
  be.gemm(true, false, r_, in(), n, 1.0, du, r_, xa, in(), 1.0, lora_A_grad, in());
  return du;
}

Tensor LoraLinear::input_grad_buffer(const ForwardContext& ctx, const Tensor& dx) const {
  if (!dropout_active(ctx)) return dx;
  const Tensor buf = ctx.scratch.view(ctx.rows * r_, Shape{ctx.rows, in()});
  ctx.backend.fill(buf, 0.0);
  return buf;
}

void LoraLinear::finish_input_grad(const ForwardContext& ctx, const Tensor& buffer,
                                   const Tensor& dx) const {
  if (dropout_active(ctx)) ctx.backend.dropout_backward(dx, buffer, dropout_, dropout_seed(ctx), ctx.rows * in());
}

void LoraLinear::forward(const ForwardContext& ctx, const Tensor& x, const Tensor& y) {
  Linear::forward(ctx, x, y);
  lora_forward(ctx, adapter_input(ctx, x, true), y);
}

void LoraLinear::backward(const ForwardContext& ctx, const Tensor& x, const Tensor& dy,
                          const Tensor& dx, double dx_beta) {
  Linear::backward(ctx, x, dy, dx, dx_beta);
  const Tensor du = lora_backward(ctx, adapter_input(ctx, x, false), dy);
  const Tensor dxa = input_grad_buffer(ctx, dx);
  ctx.backend.gemm(false, false, ctx.rows, in(), r_, 1.0, du, r_, lora_A, in(), 1.0, dxa, in());
  finish_input_grad(ctx, dxa, dx);
}

void LoraLinear::require_mergeable_base() const {
  if (weight.dtype == DType::BF16)
    throw ConfigError("model.frozen_dtype",
                      "cannot merge the adapter of " + hf_name() +
                          " into its bf16 base weight: the sum would be rounded to bf16, losing any update "
                          "below ~0.4% of a weight (2^-8 relative); merge into an fp32 copy of the base "
                          "(merged export does) or train with model.frozen_dtype = fp32");
}

void LoraLinear::merge_into_base(Backend& backend, double sign) {
  require_mergeable_base();
  backend.gemm(false, false, out(), in(), r_, sign * scaling_, lora_B, r_, lora_A, in(), 1.0,
               weight, in());
}

}  // namespace lwb
