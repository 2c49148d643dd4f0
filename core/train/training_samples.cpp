#include "core/train/training_samples.h"

#include <algorithm>

#include "core/adapters/adapter_state.h"
#include "core/common/errors.h"
#include "core/tensor/rng.h"
#include "core/infer/adapter_set.h"
#include "core/infer/decoder.h"
#include "core/infer/generator.h"

namespace lwb {

TrainingSampler::TrainingSampler(const Model& model, const AdapterConfig& adapter, const data::Tokenizer& tokenizer,
                                 std::span<const data::Example> heldout, const TrainConfig& config,
                                 MemoryLedger& ledger)
    : every_(config.sample_every), max_new_(config.sample_max_new), greedy_(config.sample_greedy),
      seed_(derive_seed(config.seed, 5)) {
  const auto n = static_cast<std::size_t>(config.samples);
  if (heldout.size() < n)
    throw ConfigError("train.samples", std::to_string(n) + " samples need as many held-out examples; the data has " +
                                           std::to_string(heldout.size()));
  const data::DecodeOptions text{.skip_special = true};
  std::int64_t longest = 1;
  for (std::size_t i = 0; i < n; ++i) {
    const data::Example& e = heldout[i];
    if (e.prompt_length() < 1)
      throw ConfigError("train.samples", "held-out example " + std::to_string(i + 1) +
                                             " has no prompt to answer (plain text); samples need prompt and "
                                             "completion data");
    prompt_tokens_.emplace_back(e.tokens.begin(), e.tokens.begin() + static_cast<std::ptrdiff_t>(e.prompt_length()));
    prompt_text_.push_back(tokenizer.decode(prompt_tokens_.back(), text));
    longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(prompt_tokens_.back().size()));
  }
  const std::int64_t context = std::min<std::int64_t>(longest + max_new_, model.config().max_seq);
  decoder_ = std::make_unique<infer::Decoder>(model, infer::DecoderLimits{static_cast<std::int64_t>(n), context, 0},
                                              ledger);
  if (adapter.is_adapter()) {
    adapter_ = std::make_unique<infer::AdapterSet>(*decoder_, extract_adapter(model, adapter, "", ""), "training");
    adapter_->follow(model);
  }
  generator_ = std::make_unique<infer::Generator>(*decoder_, tokenizer);
}

TrainingSampler::~TrainingSampler() = default;

void TrainingSampler::sample(std::vector<TrainingSample>& out, const std::atomic<bool>* cancel) {
  if (adapter_) adapter_->refresh();
  // The weights changed since the last sample: nothing cached is valid.
  generator_->reset();
  infer::GenerateOptions options;
  options.sampling.greedy = greedy_;
  options.sampling.seed = seed_;
  options.max_new_tokens = max_new_;
  options.adapter = adapter_.get();
  options.cancel = cancel;
  const std::vector<infer::Completion> answers = generator_->generate(prompt_tokens_, options);
  for (std::size_t i = 0; i < answers.size(); ++i)
    out.push_back({static_cast<int>(i), prompt_text_[i], answers[i].text});
}

}  // namespace lwb
