#include "core/cpu/process_settings.h"

#include <cblas.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace lwb {

const char* openblas_core_name() { return openblas_get_corename(); }

const char* omp_wait_policy() {
  const char* p = std::getenv("OMP_WAIT_POLICY");
  return p && *p ? p : "spin, then sleep";
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
  const bool passive = !std::getenv("OMP_WAIT_POLICY");
  if (!avx512 && !passive) return;
  if (avx512) setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
  if (passive) setenv("OMP_WAIT_POLICY", "passive", 1);
  setenv("LWB_PROCESS_SETTINGS_DONE", "1", 1);  // never loop, even if the exec'd program reads it differently
  execv("/proc/self/exe", argv);
  // exec failed: carry on as we are (the libraries already read their settings).
  if (avx512) unsetenv("OPENBLAS_CORETYPE");
  if (passive) unsetenv("OMP_WAIT_POLICY");
}

}  // namespace lwb
