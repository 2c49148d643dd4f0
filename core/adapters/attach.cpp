#include "core/adapters/attach.h"

#include <stdexcept>

#include "core/adapters/adapter_linear.h"
#include "core/adapters/descriptor.h"

namespace lwb {

Model::Mode model_mode_for(const AdapterConfig& config) {
  return config.is_adapter() ? Model::Mode::Frozen : Model::Mode::Full;
}

std::unique_ptr<AdapterLinear> make_adapter_linear(int layer, Target t, const ModelConfig& model,
                                                   const AdapterConfig& config) {
  const VariantDescriptor& v = config.variant();
  if (!v.module) throw std::logic_error("make_adapter_linear: " + v.title + " has no adapter module per linear");
  return v.module(layer, t, model, config);
}

void attach_adapters(Model& model, const AdapterConfig& config) {
  if (!config.is_adapter()) return;
  config.validate(model.config());
  config.variant().attach(model, config);
}

void merge_adapters(Model& model, double sign) {
  for (int l = 0; l < model.config().layers; ++l)
    for (Target t : kAllTargets)
      if (auto* a = dynamic_cast<AdapterLinear*>(&model.linear(l, t))) a->merge_into_base(model.backend(), sign);
}

}  // namespace lwb
