#include "core/cpu/openblas_tune.h"

#include <cblas.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace lwb {

const char* openblas_core_name() { return openblas_get_corename(); }

void reexec_for_avx512_openblas(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("LWB_OPENBLAS_REEXEC")) return;
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  const char* core = openblas_get_corename();
  if (!avx512 || !core) return;
  if (std::strcmp(core, "Haswell") != 0 && std::strcmp(core, "Zen") != 0) return;
  setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
  setenv("LWB_OPENBLAS_REEXEC", "1", 1);  // never loop, even if the exec'd program reads it differently
  execv("/proc/self/exe", argv);
  // exec failed: carry on with the kernels we have.
  unsetenv("OPENBLAS_CORETYPE");
}

}  // namespace lwb
