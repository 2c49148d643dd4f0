#include "core/source/base_cache.h"

#include "core/model/checkpoint.h"

namespace lwb {

std::filesystem::path cached_base_path(const std::filesystem::path& data_dir, const std::string& preset) {
  return data_dir / "models" / (preset + "-base.safetensors");
}

CachedBaseState cached_base_state(const std::filesystem::path& file, const std::string& recipe) {
  if (!std::filesystem::exists(file)) return CachedBaseState::Missing;
  return checkpoint_metadata(file, "lwb.recipe") == recipe ? CachedBaseState::Ready : CachedBaseState::OtherRecipe;
}

void store_cached_base(const Model& model, const std::filesystem::path& file, const std::string& preset,
                       const std::string& recipe, const std::map<std::string, std::string>& facts) {
  std::map<std::string, std::string> meta = facts;
  meta["lwb.preset"] = preset;
  meta["lwb.recipe"] = recipe;
  std::filesystem::create_directories(file.parent_path());
  save_base_checkpoint(model, file, meta);
}

}  // namespace lwb
