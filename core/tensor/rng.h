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

// A sequential generator for host-side choices (data order, task inputs):
// the same seed gives the same sequence on every platform, unlike the
// standard distributions, whose algorithms are implementation-defined.
class SplitMix {
 public:
  explicit SplitMix(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() { return splitmix64(state_++ * 0x9E3779B97F4A7C15ull); }
  // Uniform in [0, n) without modulo bias (rejection of the short tail).
  std::uint64_t below(std::uint64_t n) {
    const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % n);
    std::uint64_t x;
    do x = next();
    while (x >= limit);
    return x % n;
  }
  // Uniform integer in [lo, hi].
  std::int64_t between(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo + 1)));
  }
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }

 private:
  std::uint64_t state_;
};

}  // namespace lwb
