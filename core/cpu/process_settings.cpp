#include "core/cpu/process_settings.h"

#include <cblas.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace lwb {

const char* openblas_core_name() { return openblas_get_corename(); }

std::string omp_wait_policy() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  if (policy && *policy) return policy;
  const char* spins = std::getenv("GOMP_SPINCOUNT");
  return std::string("spin ") + (spins && *spins ? spins : "300000") + " rounds, then sleep";
}

namespace {

bool wants_avx512_kernels() {
  if (std::getenv("OPENBLAS_CORETYPE")) return false;
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  const char* core = openblas_get_corename();
  return avx512 && core && (std::strcmp(core, "Haswell") == 0 || std::strcmp(core, "Zen") == 0);
}

}  // namespace

void reexec_with_process_settings(char** argv) {
  if (std::getenv("LWB_PROCESS_SETTINGS_DONE")) return;
  const bool avx512 = wants_avx512_kernels();
  const bool short_spin = !std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT");
  if (!avx512 && !short_spin) return;
  if (avx512) setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
  if (short_spin) setenv("GOMP_SPINCOUNT", "1000", 1);
  setenv("LWB_PROCESS_SETTINGS_DONE", "1", 1);  // never loop, even if the exec'd program reads it differently
  execv("/proc/self/exe", argv);
  // exec failed: carry on as we are (the libraries already read their settings).
  if (avx512) unsetenv("OPENBLAS_CORETYPE");
  if (short_spin) unsetenv("GOMP_SPINCOUNT");
}

}  // namespace lwb
