#pragma once
// What a run's numbers depend on besides its config and seed: the same
// config and seed repeat bit for bit only on the same device, BLAS kernels,
// thread count and build. OpenBLAS picks its kernels by CPU (Haswell,
// SkylakeX, Cooperlake, ...), each summing in its own order, and
// -march=native compiles our own loops for the building CPU; a few ulps of
// difference early in training can move a single run's final exact match by
// tens of points (issue 19 measured 3.5% / 73% / 10.5% for one seed on three
// kernel sets). Every run records this beside its config.
#include <string>

namespace lwb {

struct RunEnvironment {
  std::string device;         // the backend: "cpu", "cuda:0 (NVIDIA H200)"
  std::string cpu;            // the CPU's model name (/proc/cpuinfo)
  std::string blas_core;      // openblas_get_corename(): "Haswell", "SkylakeX", ...
  std::string blas_coretype;  // $OPENBLAS_CORETYPE when set (it forces blas_core)
  int threads = 0;            // the run's CPU threads (0: not measured)
  std::string compiler;       // "GNU 12.2.0"
  std::string flags;          // build type and C++ flags, "-march=native" included when used
  std::string git;            // `git describe --always --dirty --tags` at build time
};

// This process's environment for a run on `device` with `threads` CPU threads.
RunEnvironment current_environment(const std::string& device, int threads);

// JSON for the store, and back (unknown keys ignored, missing ones empty;
// FormatError naming `source` for text that is not a JSON object).
std::string environment_to_json(const RunEnvironment& e);
RunEnvironment environment_from_json(const std::string& text, const std::string& source);

// One "key: value" line per field, for a run's details.
std::string environment_text(const RunEnvironment& e);

// Whether two runs' numbers can be expected to repeat bit for bit: the same
// device, CPU kernels, threads and build. The words say what differs.
std::string environment_difference(const RunEnvironment& a, const RunEnvironment& b);

}  // namespace lwb
