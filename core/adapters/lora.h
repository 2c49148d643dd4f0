#pragma once
// LoRA (Hu et al.) as PEFT computes it: y = x W^T + s * B (A dropout(x)),
// A [r, in] kaiming-uniform (or gaussian), B [out, r] = 0, s = alpha / r (or
// alpha / sqrt(r) with rsLoRA). Dropout touches only the adapter path.
// DoRA and AdaLoRA derive from it and reuse its pieces.
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
  std::vector<std::pair<std::string, Tensor>> adapter_tensors() const override;

  // W <- W + sign * s * B A (sign -1 unmerges). ConfigError when W is bf16.
  virtual void merge_into_base(Backend& backend, double sign = 1.0);

  int rank() const { return r_; }
  double scaling() const { return scaling_; }

  Tensor lora_A, lora_B;  // [r, in], [out, r]
  Tensor lora_A_grad, lora_B_grad;

 protected:
  // The adapter's input: x itself, or its dropout (computed here) when
  // training with p > 0.
  Tensor adapter_input(const ForwardContext& ctx, const Tensor& x, bool compute);
  // u = xa A^T (kept for the backward), y += s u B^T.
  void lora_forward(const ForwardContext& ctx, const Tensor& xa, const Tensor& y);
  // g is the gradient of the LoRA term s u B^T: dB += s g^T u, du = s g B,
  // dA += du^T xa. du lives in scratch at element 0.
  Tensor lora_backward(const ForwardContext& ctx, const Tensor& xa, const Tensor& g);
  // Where the gradient of the adapter's input goes: dx itself (accumulate),
  // or a scratch buffer that finish_input_grad() sends through dropout.
  Tensor input_grad_buffer(const ForwardContext& ctx, const Tensor& dx) const;
  void finish_input_grad(const ForwardContext& ctx, const Tensor& buffer, const Tensor& dx) const;
  // Scratch elements used by lora_backward and input_grad_buffer.
  std::int64_t lora_scratch_elems(std::int64_t max_rows) const;
  // Scratch after the LoRA part, for a derived class's own temporaries.
  Tensor extra_scratch(const ForwardContext& ctx, std::int64_t offset, Shape shape) const;
  bool dropout_active(const ForwardContext& ctx) const { return ctx.training && dropout_ > 0; }
  // Every merge_into_base starts here: a bf16 base cannot take the merge.
  void require_mergeable_base() const;

  LoraLinear(int layer, Target target, LinearShape shape, const AdapterConfig& config, double scaling);

  int r_;
  double scaling_;
  double dropout_;
  LoraInit init_;
  Tensor u_;       // [N, r] = adapter_input A^T, kept for dB
  Tensor x_drop_;  // [N, in] dropout(x), only when dropout > 0

 private:
  std::uint64_t dropout_seed(const ForwardContext& ctx) const;
};

}  // namespace lwb
