#include "core/adapters/adalora.h"

#include "core/model/weights_init.h"
#include "core/tensor/rng.h"

namespace lwb {

AdaLoraLinear::AdaLoraLinear(int layer, Target target, LinearShape shape, const AdapterConfig& config)
    : LoraLinear(layer, target, shape, config) {}

void AdaLoraLinear::declare(ModelBuffers& b) {
  LoraLinear::declare(b);
  b.trainable.add(&lora_E, &lora_E_grad, layer(), std::string(target_module_name(target())) + ".lora_E",
                  Shape{r_, 1}, true);
}

// Scratch after the LoRA part: v = u * E [rows, r].
std::int64_t AdaLoraLinear::scratch_elems(std::int64_t max_rows) const {
  return lora_scratch_elems(max_rows) + max_rows * r_;
}

void AdaLoraLinear::initialize(Backend& backend, std::uint64_t seed) {
  const std::uint64_t s = derive_seed(seed, module_index());
  upload_values(backend, lora_A, normal_values(lora_A.numel(), 0.02, s));
  upload_values(backend, lora_B, normal_values(lora_B.numel(), 0.02, derive_seed(s, 1)));
  backend.fill(lora_E, 0.0);
}

std::vector<std::pair<std::string, Tensor>> AdaLoraLinear::adapter_tensors() const {
  return {{"lora_A", lora_A}, {"lora_E", lora_E}, {"lora_B", lora_B}};
}

void AdaLoraLinear::forward(const ForwardContext& ctx, const Tensor& x, const Tensor& y) {
  Backend& be = ctx.backend;
  const std::int64_t n = ctx.rows;
  Linear::forward(ctx, x, y);
  const Tensor xa = adapter_input(ctx, x, true);
  const Tensor v = extra_scratch(ctx, 0, Shape{n, r_});
  be.gemm(false, true, n, r_, in(), 1.0, xa, in(), lora_A, in(), 0.0, u_, r_);
  be.scale_columns(v, u_, lora_E, n, r_);
  be.gemm(false, true, n, out(), r_, scaling_, v, r_, lora_B, r_, 1.0, y, out());
}

// With u = xa A^T, v = u * E, y += c v B^T: dB += c dy^T v, dv = c dy B,
// dE += colsum(dv * u), du = dv * E, dA += du^T xa, dxa = du A.
void AdaLoraLinear::backward(const ForwardContext& ctx, const Tensor& x, const Tensor& dy,
                             const Tensor& dx, double dx_beta) {
  Backend& be = ctx.backend;
  const std::int64_t n = ctx.rows;
  Linear::backward(ctx, x, dy, dx, dx_beta);
  const Tensor v = extra_scratch(ctx, 0, Shape{n, r_});
  const Tensor dv = ctx.scratch.view(0, Shape{n, r_});
  be.scale_columns(v, u_, lora_E, n, r_);
  be.gemm(true, false, out(), r_, n, scaling_, dy, out(), v, r_, 1.0, lora_B_grad, r_);
  be.gemm(false, false, n, r_, out(), scaling_, dy, out(), lora_B, r_, 0.0, dv, r_);
  be.column_dot(lora_E_grad, dv, u_, n, r_, 1.0);
  be.scale_columns(dv, dv, lora_E, n, r_);
  const Tensor xa = adapter_input(ctx, x, false);
  be.gemm(true, false, r_, in(), n, 1.0, dv, r_, xa, in(), 1.0, lora_A_grad, in());
  const Tensor dxa = input_grad_buffer(ctx, dx);
  be.gemm(false, false, n, in(), r_, 1.0, dv, r_, lora_A, in(), 1.0, dxa, in());
  finish_input_grad(ctx, dxa, dx);
}

void AdaLoraLinear::merge_into_base(Backend& be, double sign) {
  require_mergeable_base();
  const Tensor ea = make_tensor(be, Shape{r_, in()}, lora_A.dtype);
  be.scale_rows(ea, lora_A, lora_E, r_, in());
  be.gemm(false, false, out(), in(), r_, sign * scaling_, lora_B, r_, ea, in(), 1.0, weight, in());
}

}  // namespace lwb
