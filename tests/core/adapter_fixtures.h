#pragma once
// Adapters with random factors on the tiny shape, for tests of merges and
// library tools that compare against dense computations, and those dense
// computations done by plain loops; a full fine-tuning run with given weights.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/adapters/adapter_state.h"
#include "core/model/checkpoint.h"
#include "core/model/config.h"
#include "core/model/weights_init.h"
#include "core/store/store.h"

namespace lwb::test {

inline const char* kFingerprint = "00112233445566778899aabbccddeeff";

// A LoRA-form adapter on the tiny shape (or `model`'s) with random A and B (B nonzero, so ΔW is).
inline AdapterState random_adapter(std::uint64_t seed, int r = 4, std::vector<Target> targets = {Target::Q, Target::V},
                            const std::string& method = "lora", double alpha = 8,
                            const ModelConfig& model = model_preset("tiny")) {
  AdapterState s;
  s.config.method = method;
  s.config.r = r;
  s.config.alpha = alpha;
  s.config.targets = std::move(targets);
  s.base_model = "lora-workbench/tiny";
  s.base_fingerprint = kFingerprint;
  s.model = model;
  std::uint64_t k = seed * 1000;
  for (int l = 0; l < s.model.layers; ++l)
    for (Target t : s.config.targets) {
      const LinearShape shape = linear_shape(s.model, t);
      const std::string module = "model.layers." + std::to_string(l) + "." + target_hf_path(t);
      auto put = [&](const std::string& suffix, std::vector<std::int64_t> dims, double scale) {
        HostTensor h;
        h.shape = dims;
        const std::vector<double> v = normal_values(h.numel(), scale, ++k);
        h.values.assign(v.begin(), v.end());
        s.tensors[peft_key(module, suffix)] = std::move(h);
      };
      if (method == "adalora") {
        put("lora_A", {r, shape.in}, 0.1);
        put("lora_B", {shape.out, r}, 0.1);
        put("lora_E", {r, 1}, 0.5);
        // The allocator pruned the last triplet everywhere.
        s.tensors[peft_key(module, "lora_E")].values.back() = 0;
        std::vector<bool> keep(static_cast<std::size_t>(r), true);
        keep.back() = false;
        s.rank_pattern[module] = keep;
      } else {
        put("lora_A.weight", {r, shape.in}, 0.1);
        put("lora_B.weight", {shape.out, r}, 0.1);
        if (method == "dora") put("lora_magnitude_vector", {shape.out}, 1.0);
      }
    }
  return s;
}

inline double rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

inline double squared_norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return s;
}

// s·B·diag(E)·A of one module straight from the tensors, with plain loops.
inline std::vector<double> direct_delta(const AdapterState& a, int layer, Target t) {
  const LinearShape sh = linear_shape(a.model, t);
  const std::string m = module_hf_name(layer, t);
  const bool ada = a.tensors.contains(peft_key(m, "lora_E"));
  const HostTensor& A = a.tensors.at(peft_key(m, ada ? "lora_A" : "lora_A.weight"));
  const HostTensor& B = a.tensors.at(peft_key(m, ada ? "lora_B" : "lora_B.weight"));
  const int r = a.config.r;
  std::vector<double> d(static_cast<std::size_t>(sh.out) * sh.in, 0.0);
  for (int o = 0; o < sh.out; ++o)
    for (int i = 0; i < sh.in; ++i) {
      double sum = 0;
      for (int k = 0; k < r; ++k) {
        const double e = ada ? a.tensors.at(peft_key(m, "lora_E")).values[static_cast<std::size_t>(k)] : 1.0;
        sum += static_cast<double>(B.values[static_cast<std::size_t>(o * r + k)]) * e *
               A.values[static_cast<std::size_t>(k * sh.in + i)];
      }
      d[static_cast<std::size_t>(o) * sh.in + i] = a.config.scaling() * sum;
    }
  return d;
}

// Σ σᵢ² over the singular values past `rank`, and over all of them: the
// squared error of the best rank-`rank` approximation and the energy
// (Eckart–Young).
struct TailEnergy {
  double dropped = 0, total = 0;
};
inline TailEnergy tail_energy(const std::vector<double>& singular, int rank) {
  TailEnergy e;
  for (std::size_t i = 0; i < singular.size(); ++i) {
    e.total += singular[i] * singular[i];
    if (i >= static_cast<std::size_t>(rank)) e.dropped += singular[i] * singular[i];
  }
  return e;
}

// A finished full fine-tuning run in `store` whose kept weights are `weights`
// (what the extract tool reads).
inline std::int64_t full_run_with_weights(Store& store, const Model& weights) {
  const ExperimentConfig full = experiment_preset("tiny-full");
  const std::int64_t run = store.create_run(store.create_experiment("full", full), "cpu", RunInfo{full});
  RunResult done;
  done.status = RunStatus::Finished;
  done.steps_done = 10;
  store.finish_run(run, done);
  std::filesystem::create_directories(store.model_file(run).parent_path());
  save_base_checkpoint(weights, store.model_file(run));
  return run;
}

}  // namespace lwb::test
