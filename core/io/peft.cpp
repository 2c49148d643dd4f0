#include "core/io/peft.h"

#include <nlohmann/json.hpp>
#include <set>

#include "core/common/errors.h"
#include "core/io/atomic_file.h"
#include "core/io/safetensors.h"
#include "core/model/checkpoint.h"

namespace lwb::io {

namespace {
using json = nlohmann::json;

}  // namespace

std::string peft_config_json(const AdapterState& s) {
  const AdapterConfig& c = s.config;
  std::set<std::string> modules;
  for (Target t : c.targets) modules.insert(target_module_name(t));
  json j = {
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"base_model_name_or_path", s.base_model},
      {"r", c.r},
      {"lora_alpha", c.alpha},
      {"lora_dropout", c.dropout},
      {"target_modules", std::vector<std::string>(modules.begin(), modules.end())},
      {"use_rslora", c.use_rslora},
      {"use_dora", false},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"init_lora_weights", c.init == LoraInit::Kaiming ? json(true) : json("gaussian")},
      {"rank_pattern", json::object()},
      {"alpha_pattern", json::object()},
      {"modules_to_save", nullptr},
      {"layers_to_transform", nullptr},
      {"inference_mode", true},
  };
  return j.dump(2);
}

std::vector<std::uint8_t> peft_safetensors_bytes(const AdapterState& s) {
  std::vector<StTensorWrite> tensors;
  for (const auto& [key, t] : s.tensors)
    tensors.push_back({key, StDType::F32, t.shape, std::as_bytes(std::span<const float>(t.values))});
  return serialize_safetensors(std::move(tensors),
                               {{"format", "pt"},
                                {"lwb.base_fingerprint", s.base_fingerprint},
                                {"lwb.model_config", model_config_to_json(s.model)}});
}

void write_peft_folder(const std::filesystem::path& dir, const AdapterState& s) {
  std::filesystem::create_directories(dir);
  const std::vector<std::uint8_t> weights = peft_safetensors_bytes(s);
  write_file_atomically(dir / "adapter_model.safetensors", std::as_bytes(std::span(weights)));
  write_file_atomically(dir / "adapter_config.json", peft_config_json(s) + "\n");
}

}  // namespace lwb::io
