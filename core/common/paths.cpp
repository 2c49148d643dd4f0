#include "core/common/paths.h"

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

std::filesystem::path resources_dir() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("LWB_RESOURCES"); env && *env) return env;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  for (const fs::path& p : {exe.parent_path() / ".." / ".." / "resources",
                            exe.parent_path() / ".." / "share" / "lora-workbench" / "resources"})
    if (fs::is_directory(p, ec)) return fs::weakly_canonical(p, ec);
#ifdef LWB_SOURCE_RESOURCES
  // A build folder outside the source tree still finds the shipped configs.
  if (fs::is_directory(LWB_SOURCE_RESOURCES, ec)) return LWB_SOURCE_RESOURCES;
#endif
  return {};
}

}  // namespace lwb
