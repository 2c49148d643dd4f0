#pragma once
// Settings the CPU libraries read once, when they load, so that the only way
// to change them is to set the environment and restart the process, which
// reexec_with_process_settings does once, early in main():
//  - OpenMP's wait: idle OpenMP threads by default spin 300,000 rounds
//    before they sleep, and two processes whose threads outnumber the cores
//    then spin while the thread they wait for is descheduled: two decodes at
//    once ran at 9 tokens/s each, 100 training steps took 32 s instead of
//    1.1 s. Sleeping at once (OMP_WAIT_POLICY=passive) avoids that but pays
//    a wake-up at every parallel region, and a decode step has hundreds:
//    batch-1 decode ran at 42-48 tokens/s passive against 62-74 with a short
//    spin. GOMP_SPINCOUNT=1000 (tens of microseconds) bridges the gaps
//    between one step's regions and gives up before a descheduled partner
//    costs much (two decodes at once: 18 tokens/s each). The program's own
//    runs divide the cores between them (cpu_share.h), so they do not
//    outnumber the cores.
//  - OpenBLAS 0.3.21 (Debian 12) does not know AMD Zen 4 and runs its AVX2
//    "Haswell" kernels there, although the CPU has AVX-512; its SkylakeX
//    kernels measure 1.8x faster on such a machine (tests/bench/bench_train
//    prints both rates): OPENBLAS_CORETYPE=SkylakeX.
// What the user has set is kept.
#include <string>

namespace lwb {

// Name of the kernel set OpenBLAS picked ("Haswell", "SkylakeX", ...).
const char* openblas_core_name();
// OpenMP's wait as set for this process: OMP_WAIT_POLICY ("passive",
// "active") when set, else "spin N rounds, then sleep" (N from GOMP_SPINCOUNT,
// libgomp's default when unset).
std::string omp_wait_policy();
// Re-executes this program with the settings above when one is missing.
// Returns only when nothing was done (or exec failed).
void reexec_with_process_settings(char** argv);

}  // namespace lwb
