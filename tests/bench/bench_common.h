#pragma once
// Shared by the benchmarks (CPU and GPU): timing, one measured training step
// of a model on random tokens (the step the Trainer runs: forward, loss,
// backward, gradient norm, AdamW), and the FLOP count of a token.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/adapters/attach.h"
#include "core/adapters/variant.h"
#include "core/cpu/cpu_backend.h"
#include "core/model/model.h"
#include "core/optim/adamw.h"
#include "core/tensor/rng.h"

namespace lwb::bench {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// OpenBLAS sgemm on n x n x n (C = A B^T, the layout of every linear
// layer), GFLOP/s over about one second: the machine's matmul rate, measured
// in the same run as the figure it is the yardstick for.
inline double sgemm_gflops(int n) {
  std::vector<float> a(static_cast<std::size_t>(n) * n, 0.5f), b(a), c(a);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a.data(), n, b.data(), n, 0, c.data(), n);
  int reps = 0;
  const double t0 = now_s();
  double t = 0;
  while (t < 1.0) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a.data(), n, b.data(), n, 0, c.data(), n);
    ++reps;
    t = now_s() - t0;
  }
  return 2.0 * n * n * n * reps / t / 1e9;
}

struct StepRunner {
  Model& model;
  AdamW& opt;
  std::int64_t B, T;
  std::vector<std::int32_t> inputs, targets;
  VariantController* variant = nullptr;  // AdaLoRA / ReLoRA step hooks, when set

  StepRunner(Model& m, AdamW& o, std::int64_t b, std::int64_t t) : model(m), opt(o), B(b), T(t) {
    const int V = m.config().vocab;
    for (std::int64_t i = 0; i < B * T; ++i) {
      inputs.push_back(static_cast<std::int32_t>(splitmix64(i) % V));
      targets.push_back(static_cast<std::int32_t>(splitmix64(i + 1) % V));
    }
  }
  void step(std::int64_t k) {
    Backend& be = model.backend();
    std::vector<VariantEvent> events;
    if (variant) variant->before_step(k, events);
    model.set_batch(inputs.data(), targets.data(), B, T);
    be.fill(model.trainable().grads().flat(), 0.0);
    model.forward(true, static_cast<std::uint64_t>(k));
    model.loss(B * T, true);
    model.backward(static_cast<std::uint64_t>(k));
    if (variant) variant->regularize();
    const double clip = opt.step(be, variant ? variant->learning_rate(k, 1e-4) : 1e-4, opt.grad_norm(be));
    if (variant) variant->after_step(k, clip, events);
    be.synchronize();
  }
  // Seconds per step, median of `reps` after `warmup` steps.
  double time_step(int warmup, int reps) {
    for (int i = 0; i < warmup; ++i) step(i);
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
      const double t0 = now_s();
      step(warmup + i);
      t.push_back(now_s() - t0);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }
};

// A model with an adapter method, its optimiser and the method's step hooks,
// on random data: what one benchmark row measures.
struct Measurement {
  double seconds_per_step = 0;
  LedgerSnapshot memory;
  std::int64_t trainable = 0;
};

// Everything one measured step needs, built once: the model with its
// adapters on random weights, AdamW and the method's step hooks. Two can live
// side by side, so that their steps can alternate (bench_train --pair).
// frozen_linear_dtype: Model's (BF16 for bf16 frozen projections).
struct TrainingSetup {
  MemoryLedger ledger;
  Model model;
  std::unique_ptr<AdamW> opt;
  std::unique_ptr<VariantController> variant;
  std::unique_ptr<StepRunner> runner;

  TrainingSetup(Backend& be, const ModelConfig& mc, const AdapterConfig& ac, std::int64_t B, std::int64_t T,
                std::optional<DType> frozen_linear_dtype = std::nullopt)
      : model(mc, model_mode_for(ac), DType::F32, frozen_linear_dtype) {
    attach_adapters(model, ac);
    model.materialize(be, ledger, B, T);
    model.init_base_weights(1);
    model.init_adapters(2);
    opt = std::make_unique<AdamW>(model.trainable(), AdamWConfig{});
    opt->materialize(be, ledger);
    variant = make_variant_controller(ac, ScheduleConfig{}, 1e-4, 1000, 3);
    if (variant) variant->attach(model, *opt, ledger);
    runner = std::make_unique<StepRunner>(model, *opt, B, T);
    runner->variant = variant.get();
  }
};

inline Measurement measure_steps(Backend& be, const ModelConfig& mc, const AdapterConfig& ac, std::int64_t B,
                                 std::int64_t T, int warmup, int reps,
                                 std::optional<DType> frozen_linear_dtype = std::nullopt) {
  TrainingSetup setup(be, mc, ac, B, T, frozen_linear_dtype);
  const double s = setup.runner->time_step(warmup, reps);
  return {s, setup.ledger.snapshot(), setup.model.trainable_count()};
}

inline Measurement measure_steps(const ModelConfig& mc, const AdapterConfig& ac, std::int64_t B, std::int64_t T,
                                 int warmup, int reps) {
  CpuBackend be;
  return measure_steps(be, mc, ac, B, T, warmup, reps);
}

// Matmul FLOPs of one training token. Full fine-tuning 6 N (forward 2N,
// input gradients 2N, weight gradients 2N) with N the matmul parameters
// (everything but the embedding lookup table). Adapters: 4 N for the frozen
// base (no weight gradients) less the first layer's q, k and v input
// gradients, which nothing reads when the embeddings are frozen, plus 6
// N_adapter. Attention's S x S products and DoRA's norm are not counted (the
// usual 6 N convention), so rates are conservative.
inline double train_flops_per_token(const ModelConfig& mc, const AdapterConfig& ac) {
  const double N = static_cast<double>(mc.param_count() - static_cast<std::int64_t>(mc.vocab) * mc.hidden);
  if (!ac.is_adapter()) return 6 * N;
  const double qkv = static_cast<double>(mc.hidden) * (mc.hidden + 2.0 * mc.kv_heads * mc.head_dim());
  return 4 * N - 2 * qkv + 6.0 * static_cast<double>(ac.trainable_params(mc));
}

}  // namespace lwb::bench
