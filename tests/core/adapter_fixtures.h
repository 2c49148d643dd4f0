#pragma once
// Adapters with random factors on the tiny shape, for tests of merges and
// library tools that compare against dense computations.
#include <string>
#include <vector>

#include "core/adapters/adapter_state.h"
#include "core/model/weights_init.h"

namespace lwb::test {

inline const char* kFingerprint = "00112233445566778899aabbccddeeff";

// A LoRA-form adapter on the tiny shape with random A and B (B nonzero, so ΔW is).
inline AdapterState random_adapter(std::uint64_t seed, int r = 4, std::vector<Target> targets = {Target::Q, Target::V},
                            Method method = Method::Lora, double alpha = 8) {
  AdapterState s;
  s.config.method = method;
  s.config.r = r;
  s.config.alpha = alpha;
  s.config.targets = std::move(targets);
  s.base_model = "lora-workbench/tiny";
  s.base_fingerprint = kFingerprint;
  s.model = model_preset("tiny");
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
      if (method == Method::AdaLora) {
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
        if (method == Method::Dora) put("lora_magnitude_vector", {shape.out}, 1.0);
      }
    }
  return s;
}

}  // namespace lwb::test
