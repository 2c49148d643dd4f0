#include "app/cli.h"
#include "core/backend/backend_registry.h"

#ifdef LWB_HAVE_CUDA
#include "gpu/cuda_backend.h"
#endif

namespace lwb::cli {

void register_gpu_backend() {
#ifdef LWB_HAVE_CUDA
  register_gpu_provider(cuda_gpu_provider());
#endif
}

}  // namespace lwb::cli
