#pragma once
// What every adapted linear shares: the variant's tensor table turned into
// declared buffers (each trainable tensor with its gradient; a model-level
// entry once per model, through ModelBuffers::shared), the adapter's
// input (x, or its dropout when training with p > 0) with the way its
// gradient goes back through that dropout, the first activation of the
// adapter path u [N, r], and the shared scratch layout. LoRA, DoRA and
// AdaLoRA modules derive from it.
#include <string>
#include <utility>
#include <vector>

#include "core/adapters/adapter_config.h"
#include "core/model/linear.h"

namespace lwb {

struct VariantDescriptor;

class AdapterLinear : public Linear {
 public:
  // extent: the largest in and out over the model's adapted linears
  // (adapted_extent), which sizes the model-level entries of the table; a
  // variant without such entries leaves it empty.
  AdapterLinear(int layer, Target target, LinearShape shape, const AdapterConfig& config, LinearShape extent = {});

  // The table's module tensors (and its model-level ones, shared), u and the
  // dropped input; derived modules declare their own activations after
  // calling this.
  void declare(ModelBuffers& buffers) override;
  std::int64_t scratch_elems(std::int64_t max_rows) const override { return base_scratch_elems(max_rows); }
  std::vector<AdapterTensorRef> adapter_tensors() const override;
  // W <- W + sign * ΔW. ConfigError when W is bf16 (require_mergeable_base).
  virtual void merge_into_base(Backend& backend, double sign = 1.0) = 0;
  // For a module whose weights no longer change (inference): computes once
  // what every forward would otherwise recompute from the parameters (DoRA's
  // row norm), with `scratch` of at least inference_scratch_elems() elements.
  virtual std::int64_t inference_scratch_elems() const { return 0; }
  virtual void fix_for_inference(Backend& /*backend*/, const Tensor& /*scratch*/) {}

  int rank() const { return r_; }
  const VariantDescriptor& variant() const { return variant_; }

 protected:
  // The members holding the module-level entries of the variant's table, in
  // table order: (value, gradient), gradient null for a frozen entry.
  virtual std::vector<std::pair<Tensor*, Tensor*>> table_members() = 0;
  // The i-th model-level entry of the table (in table order), the same
  // tensor in every module of the model; valid after declare().
  const Tensor& shared_tensor(std::size_t i) const { return *shared_.at(i); }
  // Whether this module declared the model-level entries: it initialises
  // them and reports them in adapter_tensors().
  bool owns_shared() const { return owns_shared_; }

  // The adapter's input: x itself, or its dropout (computed here) when
  // training with p > 0.
  Tensor adapter_input(const ForwardContext& ctx, const Tensor& x, bool compute);
  // Where the gradient of the adapter's input goes: dx itself (accumulate),
  // or a scratch buffer that finish_input_grad() sends through dropout.
  Tensor input_grad_buffer(const ForwardContext& ctx, const Tensor& dx) const;
  void finish_input_grad(const ForwardContext& ctx, const Tensor& buffer, const Tensor& dx) const;
  // Scratch: du [rows, r] at element 0 (the gradient of u), then with dropout
  // the gradient of the dropped input [rows, in]; a derived module's own
  // temporaries come after (extra_scratch).
  std::int64_t base_scratch_elems(std::int64_t max_rows) const;
  Tensor du_scratch(const ForwardContext& ctx) const { return ctx.scratch.view(0, Shape{ctx.rows, r_}); }
  Tensor extra_scratch(const ForwardContext& ctx, std::int64_t offset, Shape shape) const;
  bool dropout_active(const ForwardContext& ctx) const { return ctx.training && dropout_ > 0; }
  // Every merge_into_base starts here: a bf16 base cannot take the merge.
  void require_mergeable_base() const;

  const VariantDescriptor& variant_;
  int r_;
  double dropout_;
  Tensor u_;       // [N, r] the adapter input times its first factor, kept for the backward
  Tensor x_drop_;  // [N, in] dropout(x), only when dropout > 0

 private:
  std::uint64_t dropout_seed(const ForwardContext& ctx) const;
  struct Declared {
    std::string suffix;
    const Tensor* tensor;
    bool model_level;
  };
  LinearShape extent_;
  std::vector<Declared> declared_;  // what adapter_tensors() reports
  std::vector<const Tensor*> shared_;
  bool owns_shared_ = false;
};

}  // namespace lwb
