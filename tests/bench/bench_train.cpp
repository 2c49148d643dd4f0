// CPU training throughput: full fine-tuning vs LoRA (r = 8, all targets) on
// the built-in presets, against OpenBLAS sgemm measured in the same run.
// FLOPs per token: bench::train_flops_per_token (6 N full, 4 N + 6 N_lora).
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/adapters/attach.h"
#include "core/cpu/cpu_backend.h"
#include "core/cpu/process_settings.h"
#include "tests/bench/bench_common.h"

using namespace lwb;

namespace {

struct Row {
  std::string model, method;
  double tokens_per_s, gflops;
  std::int64_t trainable;
};

Row measure(const std::string& preset, bool lora, std::int64_t B, std::int64_t T, int reps) {
  const ModelConfig mc = model_preset(preset);
  AdapterConfig ac;
  ac.method = lora ? "lora" : "full";
  ac.r = 8;
  ac.targets.assign(kAllTargets.begin(), kAllTargets.end());
  const bench::Measurement m = bench::measure_steps(mc, ac, B, T, 2, reps);
  const double flops_per_token = bench::train_flops_per_token(mc, ac);
  const double tps = B * T / m.seconds_per_step;
  return {preset, lora ? "lora r=8 all" : "full", tps, tps * flops_per_token / 1e9, m.trainable};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--default-kernels") != 0) reexec_with_process_settings(argv);
  std::printf("threads: %d, OpenBLAS kernels: %s\n", omp_get_max_threads(), openblas_core_name());
  const double peak = bench::sgemm_gflops(2048);
  std::printf("OpenBLAS sgemm 2048^3: %.1f GFLOP/s\n\n", peak);
  std::printf("%-6s %-14s %6s %12s %12s %10s %9s\n", "model", "method", "BxT", "trainable", "tokens/s",
              "GFLOP/s", "% sgemm");
  struct Case {
    const char* preset;
    std::int64_t B, T;
    int reps;
  };
  for (const Case c : {Case{"tiny", 16, 64, 20}, Case{"small", 8, 256, 5}}) {
    Row full = measure(c.preset, false, c.B, c.T, c.reps);
    Row lora = measure(c.preset, true, c.B, c.T, c.reps);
    for (const Row& r : {full, lora})
      std::printf("%-6s %-14s %3lldx%-3lld %12lld %12.0f %10.1f %8.1f%%\n", r.model.c_str(), r.method.c_str(),
                  static_cast<long long>(c.B), static_cast<long long>(c.T), static_cast<long long>(r.trainable),
                  r.tokens_per_s, r.gflops, 100 * r.gflops / peak);
    std::printf("%-6s LoRA / full tokens/s: %.2fx\n\n", c.preset, lora.tokens_per_s / full.tokens_per_s);
  }
  return 0;
}
