#include "core/adapters/lora.h"

#include <cmath>

#include "core/model/weights_init.h"
#include "core/tensor/rng.h"

namespace lwb {

LoraLinear::LoraLinear(int layer, Target target, LinearShape shape, const AdapterConfig& config)
    : Linear(layer, target, shape),
      r_(config.r),
      scaling_(config.scaling()),
      dropout_(config.dropout),
      init_(config.init) {}

void LoraLinear::declare(ModelBuffers& b) {
  const std::string m = target_module_name(target());
  b.trainable.add(&lora_A, &lora_A_grad, layer(), m + ".lora_A", Shape{r_, in()}, true);
  b.trainable.add(&lora_B, &lora_B_grad, layer(), m + ".lora_B", Shape{out(), r_}, true);
  b.activations.add(&u_, layer(), m + ".lora", Shape{b.max_rows, r_});
  if (dropout_ > 0) b.activations.add(&x_drop_, layer(), m + ".lora_dropout", Shape{b.max_rows, in()});
}

std::int64_t LoraLinear::scratch_elems(std::int64_t max_rows) const {
  // du [rows, r], then with dropout the gradient of the dropped input [rows, in].
  return max_rows * r_ + (dropout_ > 0 ? max_rows * in() : 0);
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

std::uint64_t LoraLinear::dropout_seed(const ForwardContext& ctx) const {
  return derive_seed(ctx.step_seed, module_index());
}

const Tensor& LoraLinear::adapter_input(const ForwardContext& ctx, const Tensor& x) {
  if (!dropout_active(ctx)) return x;
  input_view_ = x_drop_.rows(0, ctx.rows);
  return input_view_;
}

void LoraLinear::forward(const ForwardContext& ctx, const Tensor& x, const Tensor& y) {
  Backend& be = ctx.backend;
  Linear::forward(ctx, x, y);
  if (dropout_active(ctx))
    be.dropout_forward(x_drop_, x, dropout_, dropout_seed(ctx), ctx.rows * in());
  const Tensor& xa = adapter_input(ctx, x);
  be.gemm(false, true, ctx.rows, r_, in(), 1.0, xa, in(), lora_A, in(), 0.0, u_, r_);
  be.gemm(false, true, ctx.rows, out(), r_, scaling_, u_, r_, lora_B, r_, 1.0, y, out());
}

// With u = xa A^T and y += s u B^T:
// dB += s dy^T u, du = s dy B, dA += du^T xa, dxa = du A (then through dropout).
void LoraLinear::backward(const ForwardContext& ctx, const Tensor& x, const Tensor& dy,
                          const Tensor& dx, double dx_beta) {
  Backend& be = ctx.backend;
  const std::int64_t n = ctx.rows;
  Linear::backward(ctx, x, dy, dx, dx_beta);
  const Tensor du = ctx.scratch.view(0, Shape{n, r_});
  be.gemm(true, false, out(), r_, n, scaling_, dy, out(), u_, r_, 1.0, lora_B_grad, r_);
  be.gemm(false, false, n, r_, out(), scaling_, dy, out(), lora_B, r_, 0.0, du, r_);
  const Tensor& xa = adapter_input(ctx, x);
  be.gemm(true, false, r_, in(), n, 1.0, du, r_, xa, in(), 1.0, lora_A_grad, in());
  if (dropout_active(ctx)) {
    const Tensor dxa = ctx.scratch.view(n * r_, Shape{n, in()});
    be.gemm(false, false, n, in(), r_, 1.0, du, r_, lora_A, in(), 0.0, dxa, in());
    be.dropout_backward(dx, dxa, dropout_, dropout_seed(ctx), n * in());
  } else {
    be.gemm(false, false, n, in(), r_, 1.0, du, r_, lora_A, in(), 1.0, dx, in());
  }
}

void LoraLinear::merge_into_base(Backend& backend, double sign) {
  backend.gemm(false, false, out(), in(), r_, sign * scaling_, lora_B, r_, lora_A, in(), 1.0,
               weight, in());
}

}  // namespace lwb
