#pragma once
// Chooses a Backend from the config's device string. core knows nothing of
// CUDA: the application registers the CUDA backend's factory at start-up when
// it was built with one, so a CPU-only build and a CUDA build share this code.
#include <functional>
#include <memory>
#include <string>

#include "core/tensor/backend.h"

namespace lwb {

struct GpuProvider {
  // Number of usable devices and, when 0, why (driver missing, no device, ...).
  std::function<int(std::string* reason)> device_count;
  std::function<std::unique_ptr<Backend>(int device)> create;
};
void register_gpu_provider(GpuProvider provider);
bool gpu_provider_registered();

// "cpu", "cuda:N" (ConfigError or DeviceError when unusable) or "auto" (the
// first GPU when one is usable, else the CPU; *note says once why it fell back).
std::unique_ptr<Backend> make_backend(const std::string& device, std::string* note = nullptr);

}  // namespace lwb
