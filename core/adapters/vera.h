#pragma once
// VeRA (Kopiczko et al. 2024, arXiv 2310.11454) as PEFT computes it
// (peft_type VERA): one pair of frozen random projections for the whole
// model, vera_A [r, max_in] and vera_B [max_out, r] (the largest in and out
// over the adapted linears), each module using its slices A = vera_A[:, :in]
// and B = vera_B[:out, :], and two trained vectors per module:
//   y = x Wᵀ + λ_b ⊙ (B (λ_d ⊙ (A dropout(x))))
// λ_d [r] starts at d_initial, λ_b [out] at zero, so training starts at the
// base; there is no alpha scaling. The projections are kaiming-uniform draws
// of torch.Generator().manual_seed(projection_prng_key), A first, then B:
// vera_projections below reproduces torch's CPU generator bit for bit (as
// PyTorch runs it on AVX2 / AVX-512 machines), so a PEFT adapter saved
// without them (save_projection false) reads back here exactly.
#include <cstdint>
#include <vector>

#include "core/adapters/adapter_linear.h"
#include "core/adapters/descriptor.h"

namespace lwb {

class VeraLinear : public AdapterLinear {
 public:
  VeraLinear(int layer, Target target, const ModelConfig& model, const AdapterConfig& config);

  std::int64_t scratch_elems(std::int64_t max_rows) const override;
  // λ_d = d_initial, λ_b = 0; the module that owns the shared projections
  // draws them from projection_prng_key (the run's seed plays no part, as in PEFT).
  void initialize(Backend& backend, std::uint64_t seed) override;
  void forward(const ForwardContext& ctx, const Tensor& x, const Tensor& y) override;
  void backward(const ForwardContext& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx,
                double dx_beta) override;
  // W <- W + sign · diag(λ_b) B diag(λ_d) A. ConfigError when W is bf16.
  void merge_into_base(Backend& backend, double sign = 1.0) override;

  Tensor lambda_b, lambda_d;  // [out], [r]
  Tensor lambda_b_grad, lambda_d_grad;
  // The shared projections, whole: [r, max_in] and [max_out, r].
  const Tensor& vera_A() const { return shared_tensor(0); }
  const Tensor& vera_B() const { return shared_tensor(1); }

 protected:
  std::vector<std::pair<Tensor*, Tensor*>> table_members() override;

 private:
  // The row stride of vera_A, whose first in() columns this module uses.
  std::int64_t max_in_;
  double d_initial_;
  std::uint32_t key_;
};

// vera_A [r, max_in] and vera_B [max_out, r], row-major, as PEFT's
// _init_vera_A_vera_B draws them for projection_prng_key in a float32
// (float64 = false, PyTorch's default dtype) or float64 model.
struct VeraProjections {
  std::vector<double> A, B;
};
VeraProjections vera_projections(std::uint64_t key, int r, int max_in, int max_out, bool float64 = false);

const VariantDescriptor& vera_variant();

}  // namespace lwb
