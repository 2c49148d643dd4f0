#pragma once
// Chooses a Backend from the config's device string. core knows nothing of
// CUDA: the application registers the CUDA backend's factory at start-up when
// it was built with one, so a CPU-only build and a CUDA build share this code.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor/backend.h"

namespace lwb {

struct GpuProvider {
  // The ordinals of the usable devices (not necessarily 0..n-1: a GPU this
  // build has no kernels for is skipped) and why the others are not usable
  // (driver missing, no device, no kernel image, ...).
  std::function<std::vector<int>(std::string* reason)> usable_devices;
  std::function<std::unique_ptr<Backend>(int device)> create;
};
void register_gpu_provider(GpuProvider provider);
bool gpu_provider_registered();

// "cpu", "cuda:N" (ConfigError or DeviceError when unusable), "cuda" (the
// first usable GPU) or "auto" (the first usable GPU, else the CPU; *note says
// once why it fell back).
std::unique_ptr<Backend> make_backend(const std::string& device, std::string* note = nullptr);

}  // namespace lwb
