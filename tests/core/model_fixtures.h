#pragma once
// A micro model and batch for whole-model finite-difference checks in double.
#include <string>
#include <vector>

#include "core/model/model.h"
#include "core/model/weights_init.h"
#include "gradcheck.h"

namespace lwb::test {

// Through two whole layers the stencil's own error is 1e-9..1e-7 (it moves
// with h: truncation for large h, rounding for small); a wrong backward term
// shows up at 1e-3 or worse.
constexpr double kModelTol = 1e-6;

inline ModelConfig micro_config() {
  ModelConfig c;
  c.name = "micro";
  c.hidden = 16;
  c.intermediate = 24;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.vocab = 11;
  c.max_seq = 8;
  return c;
}

struct MicroBatch {
  std::int64_t B = 2, T = 6;
  std::vector<std::int32_t> inputs, targets;
  std::int64_t scored = 0;
  MicroBatch() {
    for (std::int64_t i = 0; i < B * T; ++i) {
      inputs.push_back(static_cast<std::int32_t>((i * 7 + 3) % 11));
      // Leave the first two tokens of each row unscored, like a prompt.
      const bool scored_pos = (i % T) >= 2;
      targets.push_back(scored_pos ? static_cast<std::int32_t>((i * 5 + 1) % 11) : -1);
      scored += scored_pos;
    }
  }
};

// Randomises every trainable tensor (LoRA B and AdaLoRA E included, so no
// gradient is trivially zero) and the base.
inline void randomise(Model& m, Backend& be, std::uint64_t seed, double scale = 0.3) {
  m.init_base_weights(seed);
  const TensorArena& params = m.trainable().params();
  for (std::size_t i = 0; i < params.entries().size(); ++i) {
    const Tensor t = params.slot_tensor(i);
    upload_values(be, t, normal_values(t.numel(), scale, seed + 100 + i));
  }
}

// Logits of a forward pass (eval mode) over the micro batch.
inline std::vector<double> micro_logits(Model& m, Backend& be, const MicroBatch& mb) {
  m.set_batch(mb.inputs.data(), mb.targets.data(), mb.B, mb.T);
  m.forward(false, 0);
  return download_values(be, m.logits());
}

// Logits of the micro base model (fp32, no adapters) initialised from `seed`.
inline std::vector<double> base_micro_logits(Backend& be, MemoryLedger& ledger, const MicroBatch& mb,
                                             std::uint64_t seed) {
  Model base(micro_config(), Model::Mode::Frozen, DType::F32);
  base.materialize(be, ledger, mb.B, mb.T);
  base.init_base_weights(seed);
  return micro_logits(base, be, mb);
}

// ||a - b|| / ||b||
inline double relative_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0, r = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    d += (a[i] - b[i]) * (a[i] - b[i]);
    r += b[i] * b[i];
  }
  return std::sqrt(d / r);
}

// extra_loss adds terms computed on the parameters (and their gradients,
// when called from the backward).
inline double model_gradcheck(Model& m, Backend& be, const MicroBatch& mb, const std::string& label,
                              const std::function<double()>& extra_loss = [] { return 0.0; }) {
  m.set_batch(mb.inputs.data(), mb.targets.data(), mb.B, mb.T);
  std::vector<GradInput> inputs;
  const TensorArena& params = m.trainable().params();
  for (std::size_t i = 0; i < params.entries().size(); ++i)
    inputs.push_back({params.entries()[i].module + "@" + std::to_string(params.entries()[i].layer),
                      params.slot_tensor(i), m.trainable().grads().slot_tensor(i)});
  auto loss = [&] {
    m.forward(true, 7);
    return m.loss(mb.scored, false) + extra_loss();
  };
  auto backward = [&] {
    m.forward(true, 7);
    m.loss(mb.scored, true);
    m.backward(7);
    extra_loss();
  };
  return gradcheck(label, be, inputs, loss, backward, 12);
}

}  // namespace lwb::test
