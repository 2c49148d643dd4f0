#pragma once
// Samples during training (train.samples): the first prompts of the held-out
// split answered every train.sample_every steps, and at the last step, by
// the model as it is at that step, so that a run shows how its answers
// change. The generation engine (core/infer) runs on the training model's
// backend over the model's own base weights, read in place (no copy of the
// base), with a copy of the adapter's tensors refreshed from the live ones
// before each sample (infer::AdapterSet::follow). Its device buffers (K/V
// cache, activations, the adapter copy) are allocated once, when the run is
// prepared. Generation only reads the training weights and writes its own
// buffers, so a run's losses are the same with or without samples.
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/adapters/adapter_config.h"
#include "core/data/dataset.h"
#include "core/data/tokenizer.h"
#include "core/model/model.h"
#include "core/tensor/ledger.h"
#include "core/train/events.h"
#include "core/train/experiment_config.h"

namespace lwb {

namespace infer {
class Decoder;
class AdapterSet;
class Generator;
}  // namespace infer

class TrainingSampler {
 public:
  // `model` is the training model (materialised, `adapter` attached; for
  // full fine-tuning its weights are the live ones already) and must
  // outlive the sampler, as must `tokenizer`. The prompts are the first
  // config.samples examples of `heldout`, each up to its completion.
  // ConfigError (train.samples) when there are fewer held-out examples or
  // one has no prompt (plain text).
  TrainingSampler(const Model& model, const AdapterConfig& adapter, const data::Tokenizer& tokenizer,
                  std::span<const data::Example> heldout, const TrainConfig& config, MemoryLedger& ledger);
  ~TrainingSampler();
  TrainingSampler(const TrainingSampler&) = delete;
  TrainingSampler& operator=(const TrainingSampler&) = delete;

  // Whether completed step `step` (1-based) of `total` samples.
  bool due(std::int64_t step, std::int64_t total) const { return step % every_ == 0 || step == total; }
  // Answers every prompt with the weights as they are now; `cancel` (may be
  // null) ends the answers early. Appends one sample per prompt to `out`.
  void sample(std::vector<TrainingSample>& out, const std::atomic<bool>* cancel);
  const std::vector<std::string>& prompts() const { return prompt_text_; }

 private:
  std::int64_t every_;
  std::vector<std::vector<std::int32_t>> prompt_tokens_;
  std::vector<std::string> prompt_text_;
  std::unique_ptr<infer::Decoder> decoder_;
  std::unique_ptr<infer::AdapterSet> adapter_;  // null for full fine-tuning
  std::unique_ptr<infer::Generator> generator_;
  int max_new_ = 0;
  bool greedy_ = true;
  std::uint64_t seed_ = 0;
};

}  // namespace lwb
