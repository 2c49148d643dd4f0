#include "core/adapters/adapter_linear.h"

#include <stdexcept>

#include "core/adapters/descriptor.h"
#include "core/common/errors.h"
#include "core/tensor/rng.h"

namespace lwb {

AdapterLinear::AdapterLinear(int layer, Target target, LinearShape shape, const AdapterConfig& config,
                             LinearShape extent)
    : Linear(layer, target, shape),
      variant_(config.variant()),
      r_(config.r),
      dropout_(config.dropout),
      extent_(extent) {}

void AdapterLinear::declare(ModelBuffers& b) {
  const std::string m = target_module_name(target());
  const std::vector<std::pair<Tensor*, Tensor*>> members = table_members();
  std::size_t next = 0;
  declared_.clear();
  shared_.clear();
  owns_shared_ = false;
  for (const AdapterTensorSpec& spec : variant_.tensors) {
    // Ledger names drop PEFT's ".weight": "q_proj.lora_A".
    std::string name = spec.suffix;
    if (name.ends_with(".weight")) name.resize(name.size() - 7);
    const std::vector<std::int64_t> dims =
        spec.model_level ? tensor_shape(spec, extent_.in, extent_.out, r_) : tensor_shape(spec, in(), out(), r_);
    Shape shape;
    shape.ndim = static_cast<int>(dims.size());
    for (std::size_t i = 0; i < dims.size(); ++i) shape.dims[i] = dims[i];
    if (spec.model_level) {
      // Frozen by design (VeRA's projections): a trainable shared tensor
      // would need its gradient summed over the modules.
      if (spec.trainable || extent_.in <= 0 || extent_.out <= 0)
        throw std::logic_error(variant_.title + ": the model-level tensor " + spec.suffix +
                               " must be frozen and its module built with the model's extent");
      bool first = false;
      const Tensor& t = b.shared.frozen(b.frozen, name, shape, first);
      shared_.push_back(&t);
      owns_shared_ = owns_shared_ || first;
      if (first) declared_.push_back({spec.suffix, &t, true});
      continue;
    }
    const auto [value, grad] = members.at(next++);
    if (spec.trainable)
      b.trainable.add(value, grad, layer(), m + "." + name, shape, true);
    else
      b.frozen.add(value, layer(), m + "." + name, shape);
    declared_.push_back({spec.suffix, value, false});
  }
  b.activations.add(&u_, layer(), m + ".lora", Shape{b.max_rows, r_});
  if (dropout_ > 0) b.activations.add(&x_drop_, layer(), m + ".lora_dropout", Shape{b.max_rows, in()});
}

std::vector<AdapterTensorRef> AdapterLinear::adapter_tensors() const {
  std::vector<AdapterTensorRef> out;
  for (const Declared& d : declared_) out.push_back({d.suffix, *d.tensor, d.model_level});
  return out;
}

std::int64_t AdapterLinear::base_scratch_elems(std::int64_t max_rows) const {
  return max_rows * r_ + (dropout_ > 0 ? max_rows * in() : 0);
}

Tensor AdapterLinear::extra_scratch(const ForwardContext& ctx, std::int64_t offset, Shape shape) const {
  return ctx.scratch.view(base_scratch_elems(ctx.rows) + offset, shape);
}

std::uint64_t AdapterLinear::dropout_seed(const ForwardContext& ctx) const {
  return derive_seed(ctx.step_seed, module_index());
}

Tensor AdapterLinear::adapter_input(const ForwardContext& ctx, const Tensor& x, bool compute) {
  if (!dropout_active(ctx)) return x;
  const Tensor xd = x_drop_.rows(0, ctx.rows);
  if (compute) ctx.backend.dropout_forward(xd, x, dropout_, dropout_seed(ctx), ctx.rows * in());
  return xd;
}

Tensor AdapterLinear::input_grad_buffer(const ForwardContext& ctx, const Tensor& dx) const {
  if (!dropout_active(ctx)) return dx;
  const Tensor buf = ctx.scratch.view(ctx.rows * r_, Shape{ctx.rows, in()});
  ctx.backend.fill(buf, 0.0);
  return buf;
}

void AdapterLinear::finish_input_grad(const ForwardContext& ctx, const Tensor& buffer, const Tensor& dx) const {
  if (dropout_active(ctx)) ctx.backend.dropout_backward(dx, buffer, dropout_, dropout_seed(ctx), ctx.rows * in());
}

void AdapterLinear::require_mergeable_base() const {
  if (weight.dtype == DType::BF16)
    throw ConfigError("model.frozen_dtype",
                      "cannot merge the adapter of " + hf_name() +
                          " into its bf16 base weight: the sum would be rounded to bf16, losing any update "
                          "below ~0.4% of a weight (2^-8 relative); merge into an fp32 copy of the base "
                          "(merged export does) or train with model.frozen_dtype = fp32");
}

}  // namespace lwb
