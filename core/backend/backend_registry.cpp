#include "core/backend/backend_registry.h"

#include <algorithm>
#include <limits>
#include <mutex>
#include <optional>
#include <string_view>

#include "core/common/errors.h"
#include "core/common/integers.h"
#include "core/cpu/cpu_backend.h"

namespace lwb {

namespace {
std::mutex g_mutex;
GpuProvider g_provider;
}  // namespace

void register_gpu_provider(GpuProvider provider) {
  std::lock_guard lock(g_mutex);
  g_provider = std::move(provider);
}

bool gpu_provider_registered() {
  std::lock_guard lock(g_mutex);
  return static_cast<bool>(g_provider.create);
}

std::unique_ptr<Backend> make_backend(const std::string& device, std::string* note) {
  if (device == "cpu") return std::make_unique<CpuBackend>();
  GpuProvider provider;
  {
    std::lock_guard lock(g_mutex);
    provider = g_provider;
  }
  std::string reason;
  const std::vector<int> usable =
      provider.usable_devices ? provider.usable_devices(&reason) : std::vector<int>{};
  if (!provider.create) reason = "this build has no CUDA backend";
  if (device == "auto") {
    if (!usable.empty()) return provider.create(usable.front());
    if (note) *note = "no usable GPU (" + reason + "); training on the CPU";
    return std::make_unique<CpuBackend>();
  }
  if (device.rfind("cuda", 0) == 0) {
    std::optional<int> index;  // none: "cuda", the first usable device
    if (device.size() > 4) {
      if (device[4] != ':' || device.size() == 5)
        throw ConfigError("train.device", "expected cuda or cuda:N, got \"" + device + "\"");
      const std::optional<int> n = parse_integer<int>(std::string_view(device).substr(5), 0);
      if (!n)
        throw ConfigError("train.device", "expected cuda:N with N " +
                                              integer_range_text(0, std::numeric_limits<int>::max()) + ", got \"" +
                                              device + "\"");
      index = *n;
    }
    if (usable.empty()) throw DeviceError(device + ": no usable GPU (" + reason + ")");
    if (!index) return provider.create(usable.front());
    if (std::find(usable.begin(), usable.end(), *index) == usable.end()) {
      std::string list;
      for (int d : usable) list += (list.empty() ? "cuda:" : ", cuda:") + std::to_string(d);
      throw ConfigError("train.device", device + " is not a usable device; usable: " + list +
                                            (reason.empty() ? "" : " (" + reason + ")"));
    }
    return provider.create(*index);
  }
  throw ConfigError("train.device", "expected auto, cpu or cuda:N, got \"" + device + "\"");
}

}  // namespace lwb
