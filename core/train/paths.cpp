#include "core/train/paths.h"

#include <cstdlib>

namespace lwb {

std::filesystem::path user_data_dir() {
  if (const char* d = std::getenv("LWB_DATA_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x)
    return std::filesystem::path(x) / "lora-workbench";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home && *home ? home : ".") / ".local" / "share" / "lora-workbench";
}

std::filesystem::path base_model_path(const std::filesystem::path& data_dir, const std::string& preset) {
  return data_dir / "models" / (preset + "-base.safetensors");
}

}  // namespace lwb
