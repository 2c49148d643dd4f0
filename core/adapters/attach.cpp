#include "core/adapters/attach.h"

#include "core/adapters/adapter_linear.h"
#include "core/adapters/descriptor.h"

namespace lwb {

Model::Mode model_mode_for(const AdapterConfig& config) {
  return config.is_adapter() ? Model::Mode::Frozen : Model::Mode::Full;
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
