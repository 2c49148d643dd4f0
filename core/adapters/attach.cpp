#include "core/adapters/attach.h"

#include <stdexcept>

#include "core/adapters/adalora.h"
#include "core/adapters/dora.h"

namespace lwb {

Model::Mode model_mode_for(const AdapterConfig& config) {
  return config.is_adapter() ? Model::Mode::Frozen : Model::Mode::Full;
}

std::unique_ptr<LoraLinear> make_adapter_linear(int layer, Target t, const ModelConfig& model,
                                                const AdapterConfig& config) {
  const LinearShape shape = linear_shape(model, t);
  switch (config.method) {
    case Method::Lora:
    case Method::ReLora:
      return std::make_unique<LoraLinear>(layer, t, shape, config);
    case Method::Dora:
      return std::make_unique<DoraLinear>(layer, t, shape, config);
    case Method::AdaLora:
      return std::make_unique<AdaLoraLinear>(layer, t, shape, config);
    case Method::Full:
      break;
  }
  throw std::logic_error("make_adapter_linear: full fine-tuning has no adapter module");
}

void attach_adapters(Model& model, const AdapterConfig& config) {
  if (!config.is_adapter()) return;
  config.validate(model.config());
  for (int l = 0; l < model.config().layers; ++l)
    for (Target t : config.targets) model.replace_linear(make_adapter_linear(l, t, model.config(), config));
}

void merge_adapters(Model& model, double sign) {
  for (int l = 0; l < model.config().layers; ++l)
    for (Target t : kAllTargets)
      if (auto* lora = dynamic_cast<LoraLinear*>(&model.linear(l, t)))
        lora->merge_into_base(model.backend(), sign);
}

}  // namespace lwb
