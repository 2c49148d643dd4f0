#pragma once
// Choosing the next token from a row of logits, on the host, as transformers'
// generate does: the repetition penalty (CTRL: a logit l of a token already in
// the prompt or the answer becomes l / p if positive, l * p if not), then
// greedy argmax (lowest id on ties, as torch.argmax), or sampling from the
// softmax after temperature, top-k, top-p (the smallest set of most probable
// tokens whose probability reaches p) and min-p (tokens at least min_p times
// as probable as the most probable one), in that order. Draws come from the
// sequence's own counter-based stream (seed, sequence index), so a seed
// repeats its answers exactly, whatever else is in the batch; they are not
// torch's draws.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/tensor/rng.h"

namespace lwb::infer {

struct SamplingConfig {
  bool greedy = true;              // argmax; the fields below but repetition_penalty are unused
  double temperature = 1.0;        // > 0
  int top_k = 0;                   // 0: off
  double top_p = 1.0;              // in (0, 1]; 1: off
  double min_p = 0.0;              // in [0, 1); 0: off
  double repetition_penalty = 1.0; // > 0; 1: off
  std::uint64_t seed = 0;
  // ConfigError naming the field ("sampling.top_p", ...) for a value out of range.
  void validate() const;
};

// One sequence's sampler; buffers sized for the vocabulary once.
class Sampler {
 public:
  Sampler(const SamplingConfig& config, std::int32_t vocab, std::uint64_t stream);
  // Tokens already in the sequence (for the repetition penalty).
  void add_context(std::span<const std::int32_t> tokens);
  void add_context(std::int32_t token) { add_context(std::span<const std::int32_t>(&token, 1)); }
  // The next token for `logits` (one row, vocab entries; modified in place).
  std::int32_t next(std::span<float> logits);

 private:
  SamplingConfig config_;
  std::int32_t vocab_;
  SplitMix rng_;
  std::vector<std::uint8_t> seen_;
  std::vector<std::int32_t> seen_ids_;
  std::vector<std::int32_t> order_;  // candidate ids
  std::vector<double> probs_;        // by id
};

}  // namespace lwb::infer
