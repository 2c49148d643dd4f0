// CPU training throughput: full fine-tuning vs LoRA (r = 8, all targets) on
// the built-in presets, against OpenBLAS sgemm measured in the same run.
// FLOPs per token: bench::train_flops_per_token (6 N full, 4 N + 6 N_lora).
//
// With --one, a single measurement for tests/bench/compare-cpu.sh, which runs
// it alternately with PyTorch + PEFT (tests/bench/peft_cpu_bench.py):
//   bench_train --one --model small|tiny|smollm2-135m|<config.json> --method full|lora|dora
//               [--batch 8] [--seq 256] [--rank 8] [--warmup 2] [--steps 5] [--config-only]
// prints the model's dimensions (CONFIG ...) and one RESULT line: tokens/s
// (median step), peak RSS (getrusage) and the OpenMP and OpenBLAS thread
// counts, which must agree (OMP_NUM_THREADS and OPENBLAS_NUM_THREADS).
//
// With --gemm-shapes, the step's matrix products alone, for compare-cpu.sh
// --gemm to set beside torch's on the same shapes: for each linear layer
// shape (out x in, and how many the step has), the forward y = x W^T, the
// input gradient dx = dy W and the weight gradient dW = dy^T x, each timed
// through the backend's gemm over about half a second:
//   bench_train --gemm-shapes --model small|... [--batch 8] [--seq 256]
// prints one RESULT line per product: role, M N K, count, GFLOP/s, and a
// PEAK line first: the machine's multiply-add ceiling at this thread count
// (fma_peak_gflops below), which no product reaches but a good one nears.
//
// With --pair, two methods' steps in one process, alternating step by step
// (which goes first alternates too): on a machine whose speed swings from one
// second to the next, the ratio of two adjacent steps is steadier than that
// of two runs a minute apart. Prints each pair and the median ratio:
//   bench_train --pair --model small|... [--methods lora,full] [--batch 8] [--seq 256]
//               [--rank 8] [--warmup 2] [--pairs 8]
#include <cblas.h>
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/adapters/attach.h"
#include "core/cpu/cpu_backend.h"
#include "core/cpu/kernels.h"
#include "core/cpu/process_settings.h"
#include "core/cpu/small_gemm.h"
#include "core/plan/planner.h"
#include "tests/bench/bench_common.h"

using namespace lwb;

namespace {

// The CPU's multiply-add ceiling: ten independent chains of vector FMAs on
// registers alone in each OpenMP thread, so that neither latency nor loads
// hold them back. A matrix product also loads its operands and so stays
// below this; how far below says what a better kernel could still gain.
constexpr int kFmaChains = 10;

typedef float Floats8 __attribute__((vector_size(32)));
typedef float Floats16 __attribute__((vector_size(64)));

// Inlined into the functions below, which compile it for their ISA (a*b + c
// contracts to one FMA: GCC's default for C++).
template <class V>
[[gnu::always_inline]] inline float fma_chains(std::int64_t rounds) {
  constexpr int lanes = sizeof(V) / sizeof(float);
  V acc[kFmaChains];
  const V b = V{} + 0.999999f, c = V{} + 1e-7f;
  for (int i = 0; i < kFmaChains; ++i) acc[i] = V{} + static_cast<float>(i);
  for (std::int64_t r = 0; r < rounds; ++r)
#pragma GCC unroll 10
    for (int i = 0; i < kFmaChains; ++i) acc[i] = acc[i] * b + c;
  float sum = 0;  // the chains' results are used, so the loop stays
  for (int i = 0; i < kFmaChains; ++i)
    for (int l = 0; l < lanes; ++l) sum += acc[i][l];
  return sum;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f"))) float fma_chains_avx512(std::int64_t rounds) { return fma_chains<Floats16>(rounds); }
__attribute__((target("avx2,fma"))) float fma_chains_avx2(std::int64_t rounds) { return fma_chains<Floats8>(rounds); }
#endif

// On the widest path the program's own kernels run here (cpu::best_simd);
// 0 where that is the baseline ISA.
double fma_peak_gflops() {
  int lanes = 0;
  float (*chains)(std::int64_t) = nullptr;
#if defined(__x86_64__) && defined(__GNUC__)
  switch (cpu::best_simd()) {
    case cpu::Simd::Avx512: lanes = 16, chains = fma_chains_avx512; break;
    case cpu::Simd::Avx2: lanes = 8, chains = fma_chains_avx2; break;
    case cpu::Simd::Baseline: break;
  }
#endif
  if (!chains) return 0;
  // Lengthened until a run takes half a second, then the best of three.
  std::int64_t rounds = 1 << 20;
  double best = 0;
  volatile float keep = 0;
  for (int run = 0; run < 3;) {
    const double t0 = bench::now_s();
    float sum = 0;
#pragma omp parallel reduction(+ : sum)
    sum += chains(rounds);
    const double t = bench::now_s() - t0;
    keep = keep + sum;
    if (t < 0.5) {
      rounds *= 2;
      continue;
    }
    best = std::max(best, 2.0 * lanes * kFmaChains * rounds * omp_get_max_threads() / t / 1e9);
    ++run;
  }
  return best;
}

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

// Reads "--name value" pairs into opt (whose keys are the options known,
// with their defaults) and the bare flags named in flags. False, with a
// message, on anything else.
bool parse_options(int argc, char** argv, const char* mode, std::map<std::string, std::string>& opt,
                   std::map<std::string, bool>& flags) {
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (flags.count(a)) {
      flags[a] = true;
    } else if (opt.count(a) && i + 1 < argc) {
      opt[a] = argv[++i];
    } else {
      std::fprintf(stderr, "bench_train %s: unknown or incomplete option \"%s\"\n", mode, a.c_str());
      return false;
    }
  }
  return true;
}

ModelConfig plan_model(const std::string& name) {
  return load_plan_model(name, std::filesystem::path(LWB_SOURCE_DIR) / "resources");
}

// OpenMP and OpenBLAS must run as many threads, or a figure would mean
// neither count.
bool thread_counts_agree() {
  if (omp_get_max_threads() == openblas_get_num_threads()) return true;
  std::fprintf(stderr, "bench_train: OpenMP runs %d threads but OpenBLAS %d; set OMP_NUM_THREADS and "
               "OPENBLAS_NUM_THREADS alike\n", omp_get_max_threads(), openblas_get_num_threads());
  return false;
}

AdapterConfig method_config(const std::string& method, int rank) {
  AdapterConfig ac;
  select_method(ac, method);
  ac.r = rank;
  ac.targets.assign(kAllTargets.begin(), kAllTargets.end());
  return ac;
}

// --one: see the header. Returns the exit status.
int measure_one(int argc, char** argv) {
  std::map<std::string, std::string> opt{{"--model", "small"}, {"--method", "lora"}, {"--batch", "8"},
                                         {"--seq", "256"},     {"--rank", "8"},      {"--warmup", "2"},
                                         {"--steps", "5"}};
  std::map<std::string, bool> flags{{"--config-only", false}};
  if (!parse_options(argc, argv, "--one", opt, flags)) return 2;
  const bool config_only = flags["--config-only"];
  const ModelConfig mc = plan_model(opt["--model"]);
  std::printf("CONFIG hidden=%d intermediate=%d layers=%d heads=%d kv_heads=%d vocab=%d max_seq=%d "
              "rope_theta=%g norm_eps=%g tie=%d\n",
              mc.hidden, mc.intermediate, mc.layers, mc.heads, mc.kv_heads, mc.vocab, mc.max_seq, mc.rope_theta,
              mc.norm_eps, mc.tie_embeddings ? 1 : 0);
  if (config_only) return 0;
  if (!thread_counts_agree()) return 2;
  const int omp = omp_get_max_threads(), blas = openblas_get_num_threads();
  const AdapterConfig ac = method_config(opt["--method"], std::stoi(opt["--rank"]));
  const std::int64_t B = std::stoll(opt["--batch"]), T = std::stoll(opt["--seq"]);
  const bench::Measurement m =
      bench::measure_steps(mc, ac, B, T, std::stoi(opt["--warmup"]), std::stoi(opt["--steps"]));
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("RESULT side=workbench model=%s method=%s batch=%lld seq=%lld rank=%d alpha=%g threads=%d "
              "blas_threads=%d tokens_per_s=%.1f peak_rss_mb=%.1f trainable=%lld\n",
              mc.name.c_str(), opt["--method"].c_str(), static_cast<long long>(B), static_cast<long long>(T), ac.r,
              ac.alpha, omp, blas, static_cast<double>(B * T) / m.seconds_per_step,
              static_cast<double>(ru.ru_maxrss) / 1024.0, static_cast<long long>(m.trainable));
  return 0;
}

// The linear layers of a step, as (out, in, how many).
struct LinearShape {
  const char* name;
  std::int64_t out, in, count;
};
std::vector<LinearShape> linear_shapes(const ModelConfig& mc) {
  const std::int64_t q = static_cast<std::int64_t>(mc.heads) * mc.head_dim(),
                     kv = static_cast<std::int64_t>(mc.kv_heads) * mc.head_dim(), L = mc.layers;
  return {{"q_proj", q, mc.hidden, L},          {"k_proj+v_proj", kv, mc.hidden, 2 * L},
          {"o_proj", mc.hidden, q, L},          {"gate_proj+up_proj", mc.intermediate, mc.hidden, 2 * L},
          {"down_proj", mc.hidden, mc.intermediate, L}, {"lm_head", mc.vocab, mc.hidden, 1}};
}

// --gemm-shapes: see the header. Returns the exit status.
int measure_gemm_shapes(int argc, char** argv) {
  std::map<std::string, std::string> opt{{"--model", "small"}, {"--batch", "8"}, {"--seq", "256"}};
  std::map<std::string, bool> no_flags;
  if (!parse_options(argc, argv, "--gemm-shapes", opt, no_flags)) return 2;
  const ModelConfig mc = plan_model(opt["--model"]);
  const std::int64_t tokens = std::stoll(opt["--batch"]) * std::stoll(opt["--seq"]);
  std::printf("PEAK threads=%d fma_gflops=%.1f\n", omp_get_max_threads(), fma_peak_gflops());
  for (const LinearShape& l : linear_shapes(mc)) {
    std::vector<float> x(tokens * l.in, 0.25f), w(l.out * l.in, 0.5f), y(tokens * l.out, 0.125f),
        dw(l.out * l.in), dx(tokens * l.in), fy(tokens * l.out);
    struct Role {
      const char* name;
      bool ta, tb;
      std::int64_t M, N, K;
      const float *A, *B;
      float* C;
      std::int64_t lda, ldb, ldc;
    };
    const Role roles[] = {{"fwd", false, true, tokens, l.out, l.in, x.data(), w.data(), fy.data(), l.in, l.in, l.out},
                          {"dx", false, false, tokens, l.in, l.out, y.data(), w.data(), dx.data(), l.out, l.in, l.in},
                          {"dw", true, false, l.out, l.in, tokens, y.data(), x.data(), dw.data(), l.out, l.in, l.in}};
    for (const Role& r : roles) {
      const auto run = [&] { cpu::gemm<float>(r.ta, r.tb, r.M, r.N, r.K, 1.0f, r.A, r.lda, r.B, r.ldb, 0.0f, r.C, r.ldc); };
      run();
      int reps = 0;
      const double t0 = bench::now_s();
      double t = 0;
      while (t < 0.5) {
        run();
        ++reps;
        t = bench::now_s() - t0;
      }
      std::printf("RESULT side=workbench linear=%s role=%s m=%lld n=%lld k=%lld count=%lld gflops=%.1f\n", l.name,
                  r.name, static_cast<long long>(r.M), static_cast<long long>(r.N), static_cast<long long>(r.K),
                  static_cast<long long>(l.count), 2.0 * r.M * r.N * r.K * reps / t / 1e9);
    }
  }
  return 0;
}

// --pair: see the header. Returns the exit status.
int measure_pair(int argc, char** argv) {
  std::map<std::string, std::string> opt{{"--model", "small"}, {"--methods", "lora,full"}, {"--batch", "8"},
                                         {"--seq", "256"},     {"--rank", "8"},             {"--warmup", "2"},
                                         {"--pairs", "8"}};
  std::map<std::string, bool> no_flags;
  if (!parse_options(argc, argv, "--pair", opt, no_flags)) return 2;
  const std::string methods = opt["--methods"];
  const std::size_t comma = methods.find(',');
  if (comma == std::string::npos) {
    std::fprintf(stderr, "bench_train --pair: --methods takes two methods, as in lora,full\n");
    return 2;
  }
  if (!thread_counts_agree()) return 2;
  const std::string names[2] = {methods.substr(0, comma), methods.substr(comma + 1)};
  const ModelConfig mc = plan_model(opt["--model"]);
  const std::int64_t B = std::stoll(opt["--batch"]), T = std::stoll(opt["--seq"]);
  const int rank = std::stoi(opt["--rank"]), warmup = std::stoi(opt["--warmup"]), pairs = std::stoi(opt["--pairs"]);
  CpuBackend be;
  bench::TrainingSetup a(be, mc, method_config(names[0], rank), B, T), b(be, mc, method_config(names[1], rank), B, T);
  bench::StepRunner* runners[2] = {a.runner.get(), b.runner.get()};
  for (int i = 0; i < warmup; ++i)
    for (bench::StepRunner* r : runners) r->step(i);
  std::printf("model %s, %lldx%lld, %d threads, OpenBLAS %s; each pair is one step of each, adjacent in time\n",
              mc.name.c_str(), static_cast<long long>(B), static_cast<long long>(T), omp_get_max_threads(),
              openblas_core_name());
  std::vector<double> ratios, rate[2];
  for (int p = 0; p < pairs; ++p) {
    double seconds[2];
    // Which goes first alternates, so that neither always follows the other.
    for (int j = 0; j < 2; ++j) {
      const int m = (p + j) % 2;
      const double t0 = bench::now_s();
      runners[m]->step(warmup + p);
      seconds[m] = bench::now_s() - t0;
    }
    for (int m = 0; m < 2; ++m) rate[m].push_back(static_cast<double>(B * T) / seconds[m]);
    ratios.push_back(seconds[1] / seconds[0]);
    std::printf("pair %2d: %s %7.1f tok/s, %s %7.1f tok/s, %s / %s %.3fx\n", p + 1, names[0].c_str(), rate[0].back(),
                names[1].c_str(), rate[1].back(), names[0].c_str(), names[1].c_str(), ratios.back());
  }
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  std::printf("RESULT side=workbench model=%s methods=%s batch=%lld seq=%lld rank=%d threads=%d pairs=%d "
              "%s_tokens_per_s=%.1f %s_tokens_per_s=%.1f ratio_median=%.3f ratio_min=%.3f ratio_max=%.3f\n",
              mc.name.c_str(), methods.c_str(), static_cast<long long>(B), static_cast<long long>(T), rank,
              omp_get_max_threads(), pairs, names[0].c_str(), median(rate[0]), names[1].c_str(), median(rate[1]),
              median(ratios), *std::min_element(ratios.begin(), ratios.end()),
              *std::max_element(ratios.begin(), ratios.end()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--default-kernels") != 0) reexec_with_process_settings(argv);
  if (argc >= 2 && std::strcmp(argv[1], "--one") == 0) return measure_one(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "--gemm-shapes") == 0) return measure_gemm_shapes(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "--pair") == 0) return measure_pair(argc, argv);
  std::printf("threads: %d, OpenBLAS kernels: %s\n", omp_get_max_threads(), openblas_core_name());
  const double fma_peak = fma_peak_gflops(), peak = bench::sgemm_gflops(2048);
  std::printf("FMA peak (registers only): %.1f GFLOP/s\n", fma_peak);
  std::printf("OpenBLAS sgemm 2048^3: %.1f GFLOP/s (%.0f%% of the FMA peak)\n\n", peak,
              fma_peak > 0 ? 100 * peak / fma_peak : 0.0);
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
