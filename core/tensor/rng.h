#pragma once
// Counter-based random numbers: value i of stream `seed` is a pure function of
// (seed, i), so the CPU and GPU backends draw identical dropout masks and
// initialisations without sharing generator state. Plain C++ so nvcc can
// compile it for the device as well.
#include <cstdint>

#if defined(__CUDACC__)
#define LWB_HOST_DEVICE __host__ __device__
#else
#define LWB_HOST_DEVICE
#endif

namespace lwb {

LWB_HOST_DEVICE inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) with 24 random bits (exact in float and double).
LWB_HOST_DEVICE inline float counter_uniform(std::uint64_t seed, std::uint64_t i) {
  const std::uint64_t h = splitmix64(seed ^ splitmix64(i));
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
}

// Derives an independent stream seed from a parent seed and a tag.
LWB_HOST_DEVICE inline std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t tag) {
  return splitmix64(seed * 0x2545F4914F6CDD1Dull + tag);
}

}  // namespace lwb
