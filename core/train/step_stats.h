#pragma once
// Cheap statistics of a training step beside its loss, for the window's
// TensorBoard-style views: the gradient norm of every layer (a heat-map over
// steps x layers shows where the learning happens) and histograms of the
// trainable weights per kind (lora_A, lora_B, magnitude, ...). The trainer
// samples them every few steps; buffers are sized once and reused.
#include <cstdint>
#include <vector>

#include "core/common/variant_event.h"
#include "core/tensor/arena.h"
#include "core/tensor/backend.h"

namespace lwb {

// The event kind weight_histogram() makes; its payload is
// {"step": S, "groups": [{"name", "lo", "hi", "count", "mean", "std", "counts": [...]}]}.
inline constexpr char kWeightHistogramKind[] = "train.weight_histogram";

class StepStats {
 public:
  static constexpr int kHistogramBins = 40;

  explicit StepStats(int layers, int bins = kHistogramBins);

  // L2 norm of each layer's slots of `grads` (index = layer); slots of the
  // model level (embeddings, final norm, lm_head) are left out.
  void layer_grad_norms(Backend& backend, const TensorArena& grads, std::vector<double>& out);
  // Histograms of the F32 tensors of `params`, one per group: the slot's
  // module name after its last '.' ("q_proj.lora_A" -> "lora_A"), or the
  // whole name when it has none. Bins are equal-width over [lo, hi] of the
  // group.
  VariantEvent weight_histogram(Backend& backend, const TensorArena& params, std::int64_t step);

 private:
  int layers_;
  int bins_;
  std::vector<double> squares_;
  std::vector<float> host_;
};

}  // namespace lwb
