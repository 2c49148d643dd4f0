#pragma once
// LoRA (Hu et al.) as PEFT computes it: y = x W^T + s * B (A dropout(x)),
// A [r, in] kaiming-uniform (or gaussian), B [out, r] = 0, s = alpha / r (or
// alpha / sqrt(r) with rsLoRA: the alias "rslora"). Dropout touches only the
// adapter path. DoRA and ReLoRA reuse its module and its PEFT form
// (peft_type LORA).
#include <string>

#include "core/adapters/adapter_linear.h"
#include "core/adapters/descriptor.h"

namespace lwb {

class LoraLinear : public AdapterLinear {
 public:
  LoraLinear(int layer, Target target, LinearShape shape, const AdapterConfig& config);

  void initialize(Backend& backend, std::uint64_t seed) override;
  void forward(const ForwardContext& ctx, const Tensor& x, const Tensor& y) override;
  void backward(const ForwardContext& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx,
                double dx_beta) override;
  // W <- W + sign * s * B A (sign -1 unmerges). ConfigError when W is bf16.
  void merge_into_base(Backend& backend, double sign = 1.0) override;

  double scaling() const { return scaling_; }

  Tensor lora_A, lora_B;  // [r, in], [out, r]
  Tensor lora_A_grad, lora_B_grad;

 protected:
  std::vector<std::pair<Tensor*, Tensor*>> table_members() override;
  // u = xa A^T (kept for the backward), y = s u B^T + y_beta y.
  void lora_forward(const ForwardContext& ctx, const Tensor& xa, const Tensor& y, double y_beta);
  // y = x W^T + s u B^T with u as lora_forward. The adapter's term is written
  // first and the base GEMM adds to it with beta = 1: on the CPU that spares
  // two passes over y (cpu/short_gemm.h says which). The decoder's base
  // products overwrite y, so with them the adapter's term comes second.
  void forward_with_base(const ForwardContext& ctx, const Tensor& x, const Tensor& xa, const Tensor& y);
  // dx = dx_beta dx + g W + du A, for an adapter whose input is x itself (no
  // dropout); the base weight's gradient, if it has one, accumulates. du·A
  // first, then the base GEMM adds with beta = 1, for the same reason.
  void input_grad_with_base(const ForwardContext& ctx, const Tensor& x, const Tensor& g, const Tensor& du,
                            const Tensor& dx, double dx_beta);
  // g is the gradient of the LoRA term s u B^T: dB += s g^T u, du = s g B,
  // dA += du^T xa. du lives in scratch at element 0.
  Tensor lora_backward(const ForwardContext& ctx, const Tensor& xa, const Tensor& g);

  double scaling_;
  LoraInit init_;
};

const VariantDescriptor& lora_variant();

// ---- the LoRA family's shared pieces (DoRA and ReLoRA build on them) -------

// A [r, in] and B [out, r] under PEFT's LoRA suffixes.
std::vector<AdapterTensorSpec> lora_tensor_table();
// alpha / r, or alpha / sqrt(r) with rsLoRA.
double lora_scaling(const AdapterConfig& config);
// adapter_config.json of peft_type LORA: the fields every LoRA-family
// variant writes (r, lora_alpha, use_rslora, init_lora_weights, ...).
void write_lora_config(const AdapterState& state, nlohmann::json& j);
// Reads them (r, use_rslora, init_lora_weights true/false/"gaussian", and
// "eva"/"orthogonal", which leave W alone); initialisations that change the
// base weights (PiSSA, OLoRA, ...) are refused.
void read_lora_config(const PeftConfigReader& c, PeftAdapterFields& out);
// The same without init_lora_weights, for a variant that reads it itself (PiSSA).
void read_lora_shape(const PeftConfigReader& c, PeftAdapterFields& out);
// Plain LoRA factors: A, B and the scaling.
LoraFactors lora_factors_of(const AdapterConfig& config, int in, int out, const AdapterTensorReader& read);
// Settings over the tiny-lora preset for a comparison arm of this method.
ComparisonArm method_arm(const std::string& label, const std::string& description, std::string lr_note,
                         std::vector<std::pair<std::string, std::string>> more = {}, double lr_factor = 1);

}  // namespace lwb
