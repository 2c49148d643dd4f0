// Whether this binary carries a kernel image the current device can run
// (SASS for its architecture, or PTX the driver can compile for it).
#include "gpu/common.cuh"

namespace lwb::gpu {

namespace {
__global__ void probe_kernel(int* p) {
  if (p) *p = 1;
}
}  // namespace

cudaError_t kernel_image_available() {
  cudaFuncAttributes attr{};
  const cudaError_t err = cudaFuncGetAttributes(&attr, probe_kernel);
  if (err != cudaSuccess) (void)cudaGetLastError();
  return err;
}

}  // namespace lwb::gpu
