#pragma once
// DoRA (Liu et al. 2024) as PEFT computes it. With W' = W + s B A and
// n = ||W'|| per output row, g = m / n:
//   no dropout:   y = g * (W x + s B A x)
//   dropout xd:   y = W x + (g - 1) * W xd + g * s B A xd
// m (the magnitude) starts at ||W|| row-wise and trains; n is a constant in
// the backward unless the setting dora.norm_grad lets the gradient through it
// (the paper's full form, which keeps W + sBA of every module for the
// backward; PEFT and the DoRA paper's section 4.3 detach it).
#include "core/adapters/lora.h"

namespace lwb {

class DoraLinear : public LoraLinear {
 public:
  DoraLinear(int layer, Target target, LinearShape shape, const AdapterConfig& config);

  void declare(ModelBuffers& buffers) override;
  std::int64_t scratch_elems(std::int64_t max_rows) const override;
  void initialize(Backend& backend, std::uint64_t seed) override;
  void forward(const ForwardContext& ctx, const Tensor& x, const Tensor& y) override;
  void backward(const ForwardContext& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx,
                double dx_beta) override;
  // W <- g * (W + s B A) row-wise; sign -1 restores the original W.
  void merge_into_base(Backend& backend, double sign = 1.0) override;

  Tensor magnitude, magnitude_grad;  // [out]

  // Inference: g = m / ||W + sBA|| depends on the parameters only, so it is
  // computed here once (W + sBA [out, in] in the scratch) and every later
  // forward skips the out x in recomputation (the training forward
  // recomputes it every step).
  std::int64_t inference_scratch_elems() const override;
  void fix_for_inference(Backend& backend, const Tensor& scratch) override;

  // Keeps the current row norm in the forward as well. Only for checking the
  // detached backward by finite differences: with the norm frozen the
  // forward is exactly the function whose gradient that backward computes.
  void freeze_norm_for_checks(bool frozen) { norm_frozen_ = frozen; }

 protected:
  std::vector<std::pair<Tensor*, Tensor*>> table_members() override;

 private:
  // norm_ = ||W + s B A|| row-wise, with W + s B A left in `w_prime`.
  void compute_norm(Backend& backend, const Tensor& w_prime);
  Tensor w_prime_buffer(const ForwardContext& ctx) const;

  bool norm_grad_;
  bool norm_frozen_ = false;
  bool norm_fixed_ = false;
  Tensor z_;            // [N, out] the unscaled output (W x + s B A x), for dm
  Tensor norm_, g_;     // [out]
  Tensor w_prime_;      // [out, in] kept for the backward in norm_grad mode
  Tensor merged_norm_;  // [out] the norm at merge time, to unmerge exactly
};

const VariantDescriptor& dora_variant();

}  // namespace lwb
