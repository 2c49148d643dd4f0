#pragma once
// Settings the CPU libraries read once, when they load, so that the only way
// to change them is to set the environment and restart the process, which
// reexec_with_process_settings does once, early in main():
//  - OpenMP's wait policy: idle OpenMP threads by default spin for a while
//    before sleeping, and two runs on one machine (the window and a CLI run)
//    then steal each other's cores: 100 steps took 32 s instead of 1.1 s.
//    Passive waiting sleeps at once (OMP_WAIT_POLICY=passive).
//  - OpenBLAS 0.3.21 (Debian 12) does not know AMD Zen 4 and runs its AVX2
//    "Haswell" kernels there, although the CPU has AVX-512; its SkylakeX
//    kernels measure 1.8x faster on such a machine (tests/bench/bench_train
//    prints both rates): OPENBLAS_CORETYPE=SkylakeX.
// What the user has set is kept.
namespace lwb {

// Name of the kernel set OpenBLAS picked ("Haswell", "SkylakeX", ...).
const char* openblas_core_name();
// OpenMP's wait policy as set for this process ("passive", "active"), or
// "spin, then sleep" when unset.
const char* omp_wait_policy();
// Re-executes this program with the settings above when one is missing.
// Returns only when nothing was done (or exec failed).
void reexec_with_process_settings(char** argv);

}  // namespace lwb
