#include "app/cli.h"
#include "core/backend/backend_registry.h"

#ifdef LWB_HAVE_CUDA
#include "gpu/cuda_backend.h"
#endif

namespace lwb::cli {

void register_gpu_backend() {
#ifdef LWB_HAVE_CUDA
  register_gpu_provider(GpuProvider{
      [](std::string* reason) {
        const CudaProbe p = probe_cuda();
        if (reason) *reason = p.reason;
        return p.device_count;
      },
      [](int device) { return make_cuda_backend(device); }});
#endif
}

}  // namespace lwb::cli
