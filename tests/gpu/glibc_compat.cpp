// Portable gpu_check only (LWB_GPU_CHECK_PORTABLE): the static libstdc++ of
// GCC 12 calls arc4random (glibc 2.36) in std::random_device. Defining it here
// keeps the binary runnable on glibc 2.34/2.35 hosts (Ubuntu 22.04) as well.
#include <sys/random.h>

#include <cstdint>

extern "C" std::uint32_t arc4random(void) {
  std::uint32_t v = 0;
  while (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
  }
  return v;
}
