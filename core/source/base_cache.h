#pragma once
// The built-in presets' pretrained bases, cached in the data directory
// (<data dir>/models/<preset>-base.safetensors). Each file records the recipe
// that made it (the pretraining config and corpus version, computed by
// core/train), so a base made by another recipe is rebuilt rather than
// silently reused. Making one is training, which happens above this layer:
// the cache only says whether a usable file is there and stores a new one.
#include <filesystem>
#include <map>
#include <string>

#include "core/model/model.h"

namespace lwb {

enum class CachedBaseState { Ready, Missing, OtherRecipe };

std::filesystem::path cached_base_path(const std::filesystem::path& data_dir, const std::string& preset);
CachedBaseState cached_base_state(const std::filesystem::path& file, const std::string& recipe);
// Writes the model's weights (atomically) tagged with the preset and recipe
// plus `facts` (how it was made), creating the folder.
void store_cached_base(const Model& model, const std::filesystem::path& file, const std::string& preset,
                       const std::string& recipe, const std::map<std::string, std::string>& facts = {});

}  // namespace lwb
