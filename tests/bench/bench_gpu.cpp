// GPU training throughput on a GPT-2-small-sized LLaMA layout: tokens/s, peak
// memory by ledger category and MFU for full fine-tuning, LoRA r = 16 on all
// seven projections (fp32, TF32, bf16 frozen), DoRA and AdaLoRA, against the
// cuBLAS GEMM rates (fp32, TF32, bf16) measured through the same backend in
// the same run. tests/bench/peft_bench.py prints the same rows for PyTorch +
// PEFT; tests/gpu/device-check.sh puts both side by side.
//
// FLOPs per token: bench::train_flops_per_token (6 N full, 4 N + 6 N_adapter;
// attention and DoRA's norm not counted). MFU = achieved matmul FLOP/s over
// the measured GEMM rate of the row's precision (a bf16-frozen row against the
// bf16 rate: its bulk is bf16 x bf16 products).
//
// A benchmark, not a test: without a usable GPU it prints one SKIP line and
// exits 0. Output lines starting with RESULT are key=value pairs for scripts.
//
//   bench_gpu [--steps N] [--warmup N] [--batch B] [--seq T]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "gpu/cuda_backend.h"
#include "tests/bench/bench_common.h"

using namespace lwb;

namespace {

// hidden 768, 12 layers, 12 heads (no GQA), intermediate 2048, vocab 32000,
// untied lm_head: 134,105,856 parameters (GPT-2 small's 124 M has a tied
// 50257-token embedding and a 3072-wide GELU MLP; this is its LLaMA twin).
ModelConfig gpt2_small_llama() {
  ModelConfig c;
  c.name = "llama-gpt2-small";
  c.hidden = 768;
  c.intermediate = 2048;
  c.layers = 12;
  c.heads = 12;
  c.kv_heads = 12;
  c.vocab = 32000;
  c.max_seq = 1024;
  return c;
}

// C = A B^T at n^3 through Backend::gemm, as the model's linears call it.
double gemm_tflops(Backend& be, std::int64_t n, DType b_dtype) {
  const Tensor a = make_tensor(be, Shape{n, n}, DType::F32);
  const Tensor b = make_tensor(be, Shape{n, n}, b_dtype);
  const Tensor c = make_tensor(be, Shape{n, n}, DType::F32);
  be.fill(a, 0.5);
  be.fill(b, 0.25);
  auto run = [&] { be.gemm(false, true, n, n, n, 1.0, a, n, b, n, 0.0, c, n); };
  for (int i = 0; i < 3; ++i) run();
  be.synchronize();
  int reps = 0;
  const double t0 = bench::now_s();
  double t = 0;
  while (t < 0.5) {
    for (int i = 0; i < 10; ++i) run();
    be.synchronize();
    reps += 10;
    t = bench::now_s() - t0;
  }
  return 2.0 * static_cast<double>(n) * n * n * reps / t / 1e12;
}

struct Row {
  std::string method, precision;
  AdapterConfig adapter;
  bool tf32 = false;
  bool bf16_frozen = false;
};

AdapterConfig method_config(const std::string& m) {
  AdapterConfig ac;
  ac.method = m;
  ac.r = 16;
  ac.alpha = 32;
  ac.set_option("adalora.target_r", 8);
  ac.targets.assign(kAllTargets.begin(), kAllTargets.end());
  return ac;
}

double gb(std::size_t bytes) { return static_cast<double>(bytes) / 1e9; }

}  // namespace

int main(int argc, char** argv) {
  int steps = 10, warmup = 3;
  std::int64_t B = 8, T = 512;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const long v = std::strtol(argv[i + 1], nullptr, 10);
    if (k == "--steps") steps = static_cast<int>(v);
    else if (k == "--warmup") warmup = static_cast<int>(v);
    else if (k == "--batch") B = v;
    else if (k == "--seq") T = v;
    else {
      std::fprintf(stderr, "bench_gpu: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  const CudaProbe probe = probe_cuda();
  if (probe.devices.empty()) {
    std::printf("SKIP: bench_gpu: no CUDA device (%s)\n", probe.reason.c_str());
    return 0;
  }
  try {
    const ModelConfig mc = gpt2_small_llama();
    auto fp32 = make_cuda_backend(probe.devices.front(), false);
    auto tf32 = make_cuda_backend(probe.devices.front(), true);
    std::printf("bench_gpu: %s; model %s: hidden %d, %d layers, %d heads, intermediate %d, vocab %d, %lld parameters\n",
                fp32->name().c_str(), mc.name.c_str(), mc.hidden, mc.layers, mc.heads, mc.intermediate, mc.vocab,
                static_cast<long long>(mc.param_count()));
    std::printf("batch %lld x %lld tokens, %d warm-up + %d timed steps (median), AdamW, random tokens\n",
                static_cast<long long>(B), static_cast<long long>(T), warmup, steps);
    const double r_fp32 = gemm_tflops(*fp32, 4096, DType::F32);
    const double r_tf32 = gemm_tflops(*tf32, 4096, DType::F32);
    const double r_bf16 = gemm_tflops(*fp32, 4096, DType::BF16);
    std::printf("cuBLAS GEMM 4096^3 through the backend: fp32 %.1f, tf32 %.1f, bf16 %.1f TFLOP/s "
                "(bf16: fp32 A rounded each call, as the engine does)\n",
                r_fp32, r_tf32, r_bf16);
    std::printf("RESULT side=ours kind=gemm fp32_tflops=%.2f tf32_tflops=%.2f bf16_tflops=%.2f\n", r_fp32, r_tf32,
                r_bf16);

    const std::vector<Row> rows = {
        {"full", "fp32", method_config("full"), false, false},
        {"full", "tf32", method_config("full"), true, false},
        {"lora", "fp32", method_config("lora"), false, false},
        {"lora", "tf32", method_config("lora"), true, false},
        {"lora", "bf16-frozen", method_config("lora"), false, true},
        {"dora", "fp32", method_config("dora"), false, false},
        {"adalora", "fp32", method_config("adalora"), false, false},
    };
    std::printf("\n%-8s %-12s %11s %10s %8s %8s %6s | GB: %7s %7s %7s %7s %7s %7s %7s\n", "method", "precision",
                "trainable", "tokens/s", "step ms", "TFLOP/s", "MFU%", "frozen", "train", "acts", "grads", "optim",
                "work", "peak");
    for (const Row& r : rows) {
      Backend& be = r.tf32 ? *tf32 : *fp32;
      const bench::Measurement m =
          bench::measure_steps(be, mc, r.adapter, B, T, warmup, steps,
                               r.bf16_frozen ? std::optional(DType::BF16) : std::nullopt);
      const double tps = static_cast<double>(B * T) / m.seconds_per_step;
      const double tflops = tps * bench::train_flops_per_token(mc, r.adapter) / 1e12;
      const double peak_rate = r.bf16_frozen ? r_bf16 : r.tf32 ? r_tf32 : r_fp32;
      const CategoryBytes& p = m.memory.peak;
      std::printf("%-8s %-12s %11lld %10.0f %8.1f %8.1f %6.1f | GB: %7.3f %7.3f %7.3f %7.3f %7.3f %7.3f %7.3f\n",
                  r.method.c_str(), r.precision.c_str(), static_cast<long long>(m.trainable), tps,
                  1e3 * m.seconds_per_step, tflops, 100 * tflops / peak_rate, gb(p[0]), gb(p[1]), gb(p[2]),
                  gb(p[3]), gb(p[4]), gb(p[5]), gb(m.memory.peak_total));
      std::printf("RESULT side=ours method=%s precision=%s attn=ours tokens_per_s=%.1f peak_gb=%.4f mfu=%.4f "
                  "trainable=%lld\n",
                  r.method.c_str(), r.precision.c_str(), tps, gb(m.memory.peak_total), tflops / peak_rate,
                  static_cast<long long>(m.trainable));
      std::fflush(stdout);
    }
    std::printf("peak: the ledger's largest total (every buffer the engine allocates; the backend's own GEMM and "
                "reduction scratch are not in it)\n");
    return 0;
  } catch (const std::exception& e) {
    std::printf("FAIL: bench_gpu: %s\n", e.what());
    return 1;
  }
}
