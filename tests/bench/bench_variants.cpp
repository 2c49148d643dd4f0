// Every method on the same model and batch: tokens/s and peak memory by
// category, relative to plain LoRA at the same rank (r = 8, all targets),
// and what DoRA saves by treating the norm as a constant.
#include <omp.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/adapters/attach.h"
#include "core/cpu/cpu_backend.h"
#include "core/cpu/process_settings.h"
#include "core/train/experiment_config.h"
#include "tests/bench/bench_common.h"

using namespace lwb;

namespace {

struct Row {
  std::string label;
  double tokens_per_s = 0;
  LedgerSnapshot memory;
  std::int64_t trainable = 0;
};

Row measure(const std::string& label, const std::string& preset, const AdapterConfig& ac, std::int64_t B,
            std::int64_t T, int reps) {
  const bench::Measurement m = bench::measure_steps(model_preset(preset), ac, B, T, 2, reps);
  return {label, B * T / m.seconds_per_step, m.memory, m.trainable};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--default-kernels") != 0) reexec_with_process_settings(argv);
  const std::string preset = argc > 2 ? argv[2] : "small";
  const std::int64_t B = preset == "tiny" ? 16 : 8, T = preset == "tiny" ? 64 : 256;
  std::printf("threads %d, OpenBLAS kernels %s, model %s, batch %lldx%lld, r = 8 on all targets\n",
              omp_get_max_threads(), openblas_core_name(), preset.c_str(), static_cast<long long>(B),
              static_cast<long long>(T));
  auto cfg = [](const char* method) {
    ExperimentConfig c;
    c.set("adapter.method", method);
    c.adapter.r = 8;
    c.adapter.targets.assign(kAllTargets.begin(), kAllTargets.end());
    return c.adapter;
  };
  AdapterConfig adalora = cfg("adalora");  // init_r 8 so the rank matches LoRA's
  adalora.set_option("adalora.target_r", 4);
  AdapterConfig dora_full = cfg("dora");
  dora_full.set_option("dora.norm_grad", true);
  const int reps = preset == "tiny" ? 20 : 5;
  std::vector<Row> rows = {measure("lora", preset, cfg("lora"), B, T, reps),
                           measure("rslora", preset, cfg("rslora"), B, T, reps),
                           measure("dora", preset, cfg("dora"), B, T, reps),
                           measure("dora-normgrad", preset, dora_full, B, T, reps),
                           measure("adalora", preset, adalora, B, T, reps),
                           measure("relora", preset, cfg("relora"), B, T, reps),
                           measure("full", preset, cfg("full"), B, T, reps)};
  const Row& lora = rows[0];
  std::printf("\n%-14s %11s %10s %8s %10s %10s %10s %10s %10s\n", "method", "trainable", "tokens/s", "vs lora",
              "peak MiB", "vs lora", "activ MiB", "grads MiB", "optim MiB");
  for (const Row& r : rows)
    std::printf("%-14s %11lld %10.0f %7.2fx %10.1f %9.2fx %10.1f %10.1f %10.1f\n", r.label.c_str(),
                static_cast<long long>(r.trainable), r.tokens_per_s, r.tokens_per_s / lora.tokens_per_s,
                r.memory.peak_total / 1048576.0, static_cast<double>(r.memory.peak_total) / lora.memory.peak_total,
                r.memory.peak[2] / 1048576.0, r.memory.peak[3] / 1048576.0, r.memory.peak[4] / 1048576.0);
  const double detached = static_cast<double>(rows[2].memory.peak_total);
  const double through = static_cast<double>(rows[3].memory.peak_total);
  std::printf("\nDoRA step time vs LoRA: %.2fx (detached norm), %.2fx (gradient through the norm)\n",
              lora.tokens_per_s / rows[2].tokens_per_s, lora.tokens_per_s / rows[3].tokens_per_s);
  std::printf("DoRA memory saved by detaching the norm: %.1f MiB of %.1f MiB (%.1f%%)\n",
              (through - detached) / 1048576.0, through / 1048576.0, 100 * (through - detached) / through);
  return 0;
}
