#pragma once
// Puts the configured adapter on every targeted linear of a model (before it
// is materialised), and merges adapters back into the base weights.
#include "core/adapters/adapter_config.h"
#include "core/model/model.h"

namespace lwb {

// Model::Mode::Frozen is required for adapter methods, Full for full fine-tuning.
Model::Mode model_mode_for(const AdapterConfig& config);
// Validates the config against the model and lets its variant replace the
// targeted linears.
void attach_adapters(Model& model, const AdapterConfig& config);
// W <- W + ΔW for every adapted linear (sign -1 unmerges).
void merge_adapters(Model& model, double sign = 1.0);

}  // namespace lwb
