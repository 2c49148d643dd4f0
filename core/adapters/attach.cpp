#include "core/adapters/attach.h"

#include "core/adapters/adalora.h"
#include "core/adapters/dora.h"
#include "core/adapters/lora.h"

namespace lwb {

Model::Mode model_mode_for(const AdapterConfig& config) {
  return config.is_adapter() ? Model::Mode::Frozen : Model::Mode::Full;
}

void attach_adapters(Model& model, const AdapterConfig& config) {
  if (!config.is_adapter()) return;
  config.validate(model.config());
  for (int l = 0; l < model.config().layers; ++l)
    for (Target t : config.targets) {
      const LinearShape shape = linear_shape(model.config(), t);
      switch (config.method) {
        case Method::Lora:
        case Method::ReLora:
          model.replace_linear(std::make_unique<LoraLinear>(l, t, shape, config));
          break;
        case Method::Dora:
          model.replace_linear(std::make_unique<DoraLinear>(l, t, shape, config));
          break;
        case Method::AdaLora:
          model.replace_linear(std::make_unique<AdaLoraLinear>(l, t, shape, config));
          break;
        case Method::Full:
          break;
      }
    }
}

void merge_adapters(Model& model, double sign) {
  for (int l = 0; l < model.config().layers; ++l)
    for (Target t : kAllTargets)
      if (auto* lora = dynamic_cast<LoraLinear*>(&model.linear(l, t)))
        lora->merge_into_base(model.backend(), sign);
}

}  // namespace lwb
