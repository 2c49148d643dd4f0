#pragma once
// An adapter lifted off the device: its config, lineage and tensors under PEFT
// key names. This is what the store keeps, PEFT folders hold, and LoRAHub
// composes.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/adapters/adapter_config.h"
#include "core/model/model.h"

namespace lwb {

struct HostTensor {
  std::vector<std::int64_t> shape;
  std::vector<float> values;
  std::int64_t numel() const;
};

struct AdapterState {
  AdapterConfig config;
  std::string base_model;        // base_model_name_or_path, e.g. "lora-workbench/tiny"
  std::string base_fingerprint;  // of the base weights it was trained on
  ModelConfig model;             // the base model's shape
  // "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" -> tensor
  std::map<std::string, HostTensor> tensors;
};

// "base_model.model." + module name + "." + suffix, as PEFT saves them.
std::string peft_key(const std::string& module_hf_name, const std::string& suffix);

AdapterState extract_adapter(const Model& model, const AdapterConfig& config,
                             const std::string& base_model, const std::string& base_fingerprint);
// Uploads an adapter into a model built with the same config; every key and
// shape must match (FormatError naming the key otherwise).
void load_adapter(Model& model, const AdapterState& state, const std::string& source);

}  // namespace lwb
