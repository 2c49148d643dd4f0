#pragma once
// AdaLoRA (Zhang et al. 2023) as PEFT computes it: an SVD-like triplet
// y = x W^T + c * B ((A * E) x), c = lora_alpha / (ranknum + 1e-5),
// A [r, in] ~ N(0, 0.02^2), E [r, 1] = 0, B [out, r] ~ N(0, 0.02^2). The rank
// allocator (core/adapters/adalora_allocator.h) masks entries of E. The
// adapter's rank r is PEFT's init_r.
#include "core/adapters/lora.h"

namespace lwb {

// The allocator's settings (adapter.adalora.*), read from an AdapterConfig.
struct AdaLoraOptions {
  int target_r = 8;
  std::int64_t tinit = 0, tfinal = 0;
  int delta_t = 1;
  double beta1 = 0.85, beta2 = 0.85;
  double orth_reg_weight = 0.5;

  AdaLoraOptions() = default;
  explicit AdaLoraOptions(const AdapterConfig& config);
};

class AdaLoraLinear : public LoraLinear {
 public:
  AdaLoraLinear(int layer, Target target, LinearShape shape, const AdapterConfig& config);

  std::int64_t scratch_elems(std::int64_t max_rows) const override;
  void initialize(Backend& backend, std::uint64_t seed) override;
  void forward(const ForwardContext& ctx, const Tensor& x, const Tensor& y) override;
  void backward(const ForwardContext& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx,
                double dx_beta) override;
  void merge_into_base(Backend& backend, double sign = 1.0) override;

  Tensor lora_E, lora_E_grad;  // [r, 1]

 protected:
  std::vector<std::pair<Tensor*, Tensor*>> table_members() override;
};

const VariantDescriptor& adalora_variant();

}  // namespace lwb
