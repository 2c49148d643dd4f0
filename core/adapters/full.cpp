// Full fine-tuning as a variant: every base weight trains (Model::Mode::Full),
// there is no adapter to save, compose or merge.
#include "core/adapters/descriptor.h"

namespace lwb {

const VariantDescriptor& full_variant() {
  static const VariantDescriptor d = [] {
    VariantDescriptor v;
    v.name = "full";
    v.title = "full fine-tuning";
    v.description =
        "every weight of the model is trained: the reference the adapters are measured against, at the memory "
        "cost of a gradient and two AdamW moments per weight";
    v.is_adapter = false;
    v.uses_alpha = v.uses_dropout = false;
    v.attach = [](Model&, const AdapterConfig&) {};
    v.caps.composable = false;
    v.caps.not_composable_why = "it holds full fine-tuned weights, not a low-rank adapter";
    // Nothing is frozen: model.frozen_dtype does not apply (the trainer says
    // so and keeps fp32).
    v.compare_arms = {{"full",
                       "full fine-tuning",
                       {{"adapter.method", "full"}, {"optimizer.lr", "0.001"}},
                       1,
                       "the tiny-full preset's rate"}};
    return v;
  }();
  return d;
}

}  // namespace lwb
