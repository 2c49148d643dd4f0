#pragma once
// Puts the configured adapter on every targeted linear of a model (before it
// is materialised), and merges adapters back into the base weights.
#include <memory>

#include "core/adapters/adapter_config.h"
#include "core/adapters/lora.h"
#include "core/model/model.h"

namespace lwb {

// Model::Mode::Frozen is required for adapter methods, Full for full fine-tuning.
Model::Mode model_mode_for(const AdapterConfig& config);
void attach_adapters(Model& model, const AdapterConfig& config);
// The module of `config`'s method (an adapter method) for one linear of a
// model shaped `model`: LoRA, rsLoRA and ReLoRA share LoraLinear; DoRA and
// AdaLoRA have their own. The inference engine builds adapters with it too.
std::unique_ptr<LoraLinear> make_adapter_linear(int layer, Target t, const ModelConfig& model,
                                                const AdapterConfig& config);
// W <- W + delta for every adapted linear (sign -1 unmerges).
void merge_adapters(Model& model, double sign = 1.0);

}  // namespace lwb
