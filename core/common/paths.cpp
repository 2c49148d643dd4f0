#include "core/common/paths.h"

#include <cctype>
#include <cstdlib>

namespace lwb {

std::filesystem::path user_data_dir() {
  if (const char* d = std::getenv("LWB_DATA_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x)
    return std::filesystem::path(x) / "lora-workbench";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home && *home ? home : ".") / ".local" / "share" / "lora-workbench";
}

std::string safe_file_name(const std::string& name) {
  constexpr std::size_t kMaxBytes = 80;
  std::string out;
  for (unsigned char ch : name) {
    const bool plain = std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '+' || ch == '=' || ch >= 0x80;
    out += plain ? static_cast<char>(ch) : '_';
  }
  if (out.size() > kMaxBytes) {
    std::size_t cut = kMaxBytes;  // not inside a UTF-8 character
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
  }
  if (!out.empty() && out.front() == '.') out.front() = '_';
  return out.empty() ? "unnamed" : out;
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
