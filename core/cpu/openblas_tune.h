#pragma once
// OpenBLAS 0.3.21 (Debian 12) does not know AMD Zen 4 and runs its AVX2
// "Haswell" kernels there, although the CPU has AVX-512; its SkylakeX kernels
// measure 1.8x faster on such a machine (tests/bench/bench_train prints both
// rates). The kernel is chosen when the library loads, from
// OPENBLAS_CORETYPE, so the only way to change it is to set the variable and
// restart the process, which this does once, early in main().
namespace lwb {

// Name of the kernel set OpenBLAS picked ("Haswell", "SkylakeX", ...).
const char* openblas_core_name();
// If the CPU has AVX-512 (F, BW, DQ, VL) but OpenBLAS picked an AVX2 kernel set
// and the user has not chosen one (OPENBLAS_CORETYPE unset), re-executes this
// program with OPENBLAS_CORETYPE=SkylakeX. Returns only when nothing was done.
void reexec_for_avx512_openblas(char** argv);

}  // namespace lwb
