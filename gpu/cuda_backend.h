#pragma once
// The CUDA backend's public face: a probe that says whether a usable GPU is
// there (and why not) and a factory. Qt-free and CUDA-free, so the app (and
// anything else) can include it in every build; the backend itself lives in
// the `gpu` library, which exists only when nvcc was found (LWB_HAVE_CUDA).
#include <memory>
#include <string>
#include <vector>

#include "core/tensor/backend.h"
#include "core/backend/backend_registry.h"

namespace lwb {

struct CudaProbe {
  // CUDA ordinals of the usable devices (this build has a kernel image for
  // them), ascending: cuda:1 may be usable when cuda:0 is not.
  std::vector<int> devices;
  std::string reason;  // why the others are not usable; why none is, when devices is empty
};

// Never aborts, never throws (ggml_cuda_init style): a missing driver, no
// device or a device too old for this build all give no devices and a reason.
CudaProbe probe_cuda();

// The provider core's make_backend chooses from: probe_cuda and make_cuda_backend.
GpuProvider cuda_gpu_provider();

// A backend on CUDA device `device` (CUDA's ordinal). tf32: fp32 GEMMs use
// TF32 tensor cores (faster, ~1e-3 relative error per product instead of ~1e-7).
// Throws DeviceError saying why the device cannot be used.
std::unique_ptr<Backend> make_cuda_backend(int device, bool tf32 = false);

}  // namespace lwb
