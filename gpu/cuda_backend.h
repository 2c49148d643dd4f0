#pragma once
// The CUDA backend's public face: a probe that says whether a usable GPU is
// there (and why not) and a factory. Qt-free and CUDA-free, so the app (and
// anything else) can include it in every build; the backend itself lives in
// the `gpu` library, which exists only when nvcc was found (LWB_HAVE_CUDA).
#include <memory>
#include <string>

#include "core/tensor/backend.h"

namespace lwb {

struct CudaProbe {
  int device_count = 0;  // usable devices (compute capability this build runs on)
  std::string reason;    // why none is usable, when device_count == 0
};

// Never aborts, never throws (ggml_cuda_init style): a missing driver, no
// device or a device too old for this build all give device_count 0 and a reason.
CudaProbe probe_cuda();

// A backend on CUDA device `device` (CUDA's ordinal). tf32: fp32 GEMMs use
// TF32 tensor cores (faster, ~1e-3 relative error per product instead of ~1e-7).
// Throws DeviceError saying why the device cannot be used.
std::unique_ptr<Backend> make_cuda_backend(int device, bool tf32 = false);

}  // namespace lwb
