#pragma once
// Base-model weights on disk: a safetensors file with HF LLaMA names and, in
// its metadata, the model config and a content fingerprint. Adapters record
// the fingerprint of the base they were trained on.
#include <cstddef>
#include <filesystem>
#include <map>
#include <span>
#include <string>

#include "core/format/safetensors.h"
#include "core/model/model.h"

namespace lwb {

// How many of `values` are NaN or infinite.
std::size_t count_non_finite(std::span<const float> values);
// A base weight as float32. FormatError naming the tensor and how many of its
// values are NaN or infinite: such a base can neither train nor run.
std::vector<float> read_finite_weight(const io::SafetensorsFile& st, const std::string& name);

// FNV-1a 64 over the base weights' float32 bytes in name order, as hex.
std::string base_fingerprint(const Model& model);

// Copies every base weight by HF name between two materialised models of the
// same shape, on any backends, converting dtypes on the way (fp32 -> bf16
// rounds to nearest even, bf16 -> fp32 widens exactly). ConfigError naming the
// tensor when a shape differs.
void copy_base_weights(const Model& from, Model& to);

void save_base_checkpoint(const Model& model, const std::filesystem::path& file,
                          const std::map<std::string, std::string>& extra_metadata = {});
// Loads every base weight by name; shapes must match the model's config and
// values be finite. Throws FormatError naming the file and the tensor on any
// mismatch.
void load_base_checkpoint(Model& model, const std::filesystem::path& file);
// One metadata value of a checkpoint ("" when absent).
std::string checkpoint_metadata(const std::filesystem::path& file, const std::string& key);
// The model config stored in a checkpoint's metadata (key "lwb.model_config").
ModelConfig checkpoint_model_config(const std::filesystem::path& file);

std::string model_config_to_json(const ModelConfig& c);
ModelConfig model_config_from_json(const std::string& text, const std::string& source);

}  // namespace lwb
