#pragma once
// PEFT adapter folders: adapter_config.json + adapter_model.safetensors, laid
// out so that `PeftModel.from_pretrained` loads them (keys and config fields
// per PEFT_REFERENCE.md).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/adapters/adapter_state.h"

namespace lwb::io {

std::string peft_config_json(const AdapterState& state);
std::vector<std::uint8_t> peft_safetensors_bytes(const AdapterState& state);
// Writes both files into dir (created if needed); existing files are replaced
// atomically.
void write_peft_folder(const std::filesystem::path& dir, const AdapterState& state);

}  // namespace lwb::io
