#pragma once
// LoRA (Hu et al.) as PEFT computes it: y = x W^T + s * B (A dropout(x)),
// A [r, in] kaiming-uniform (or gaussian), B [out, r] = 0, s = alpha / r (or
// alpha / sqrt(r) with rsLoRA). Dropout touches only the adapter path.
#include "core/adapters/adapter_config.h"
#include "core/model/linear.h"

namespace lwb {

class LoraLinear : public Linear {
 public:
  LoraLinear(int layer, Target target, LinearShape shape, const AdapterConfig& config);

  void declare(ModelBuffers& buffers) override;
  std::int64_t scratch_elems(std::int64_t max_rows) const override;
  void initialize(Backend& backend, std::uint64_t seed) override;
  void forward(const ForwardContext& ctx, const Tensor& x, const Tensor& y) override;
  void backward(const ForwardContext& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx,
                double dx_beta) override;

  // W <- W + sign * s * B A (sign -1 unmerges).
  void merge_into_base(Backend& backend, double sign = 1.0);

  int rank() const { return r_; }
  double scaling() const { return scaling_; }

  Tensor lora_A, lora_B;            // [r, in], [out, r]
  Tensor lora_A_grad, lora_B_grad;

 protected:
  // The adapter's input: x itself, or its dropout when training with p > 0.
  const Tensor& adapter_input(const ForwardContext& ctx, const Tensor& x);
  std::uint64_t dropout_seed(const ForwardContext& ctx) const;
  bool dropout_active(const ForwardContext& ctx) const { return ctx.training && dropout_ > 0; }

  int r_;
  double scaling_;
  double dropout_;
  LoraInit init_;
  Tensor u_;         // [N, r] = adapter_input A^T, kept for dB
  Tensor x_drop_;    // [N, in] dropout(x), only when dropout > 0
  Tensor input_view_;
};

}  // namespace lwb
