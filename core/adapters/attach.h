#pragma once
// Puts the configured adapter on every targeted linear of a model (before it
// is materialised), and merges adapters back into the base weights.
#include <memory>

#include "core/adapters/adapter_config.h"
#include "core/adapters/adapter_linear.h"
#include "core/model/model.h"

namespace lwb {

// Model::Mode::Frozen is required for adapter methods, Full for full fine-tuning.
Model::Mode model_mode_for(const AdapterConfig& config);
// Validates the config against the model and lets its variant replace the
// targeted linears.
void attach_adapters(Model& model, const AdapterConfig& config);
// The module of `config`'s variant for one linear of a model shaped `model`
// (VariantDescriptor::module), outside any model: the inference engine builds
// adapter sets over a shared base with it.
std::unique_ptr<AdapterLinear> make_adapter_linear(int layer, Target t, const ModelConfig& model,
                                                   const AdapterConfig& config);
// W <- W + ΔW for every adapted linear (sign -1 unmerges).
void merge_adapters(Model& model, double sign = 1.0);

}  // namespace lwb
