#include "core/infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/common/errors.h"

namespace lwb::infer {

void SamplingConfig::validate() const {
  if (!(repetition_penalty > 0) || !std::isfinite(repetition_penalty))
    throw ConfigError("sampling.repetition_penalty", "must be a positive number (1 turns it off)");
  if (greedy) return;
  if (!(temperature > 0) || !std::isfinite(temperature))
    throw ConfigError("sampling.temperature", "must be a positive number (use greedy decoding for 0)");
  if (top_k < 0) throw ConfigError("sampling.top_k", "must be 0 (off) or a positive count");
  if (!(top_p > 0 && top_p <= 1)) throw ConfigError("sampling.top_p", "must be in (0, 1] (1 turns it off)");
  if (!(min_p >= 0 && min_p < 1)) throw ConfigError("sampling.min_p", "must be in [0, 1) (0 turns it off)");
}

Sampler::Sampler(const SamplingConfig& config, std::int32_t vocab, std::uint64_t stream)
    : config_(config),
      vocab_(vocab),
      rng_(derive_seed(config.seed, stream)),
      seen_(static_cast<std::size_t>(vocab), 0),
      order_(static_cast<std::size_t>(vocab)),
      probs_(static_cast<std::size_t>(vocab)) {
  config_.validate();
}

void Sampler::add_context(std::span<const std::int32_t> tokens) {
  for (std::int32_t t : tokens)
    if (t >= 0 && t < vocab_ && !seen_[static_cast<std::size_t>(t)]) {
      seen_[static_cast<std::size_t>(t)] = 1;
      seen_ids_.push_back(t);
    }
}

std::int32_t Sampler::next(std::span<float> logits) {
  if (config_.repetition_penalty != 1.0) {
    const auto p = static_cast<float>(config_.repetition_penalty);
    for (std::int32_t id : seen_ids_) {
      float& l = logits[static_cast<std::size_t>(id)];
      l = l > 0 ? l / p : l * p;
    }
  }
  if (config_.greedy)
    return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());

  // Candidates, best first where an order matters (ties by id, so the order
  // is a total one and the same on every platform).
  auto better = [&](std::int32_t a, std::int32_t b) {
    const float la = logits[static_cast<std::size_t>(a)], lb = logits[static_cast<std::size_t>(b)];
    return la > lb || (la == lb && a < b);
  };
  std::iota(order_.begin(), order_.end(), 0);
  std::size_t n = order_.size();
  if (config_.top_k > 0 && static_cast<std::size_t>(config_.top_k) < n) {
    n = static_cast<std::size_t>(config_.top_k);
    std::nth_element(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(n), order_.end(), better);
  }
  const auto cand = std::span(order_).first(n);
  float mx = -INFINITY;
  for (std::int32_t id : cand) mx = std::max(mx, logits[static_cast<std::size_t>(id)]);
  std::fill(probs_.begin(), probs_.end(), 0.0);
  double total = 0;
  for (std::int32_t id : cand) {
    const double p = std::exp((static_cast<double>(logits[static_cast<std::size_t>(id)]) - mx) / config_.temperature);
    probs_[static_cast<std::size_t>(id)] = p;
    total += p;
  }
  if (config_.top_p < 1.0) {
    std::sort(cand.begin(), cand.end(), better);  // the temperature keeps the logits' order
    double cum = 0;
    std::size_t keep = 0;
    while (keep < n && cum < config_.top_p * total) cum += probs_[static_cast<std::size_t>(cand[keep++])];
    for (std::size_t i = keep; i < n; ++i) probs_[static_cast<std::size_t>(cand[i])] = 0;
    total = cum;
  }
  if (config_.min_p > 0) {
    // probs_ holds exp(l - max) / 1: the most probable candidate has 1.
    for (std::int32_t id : cand) {
      double& p = probs_[static_cast<std::size_t>(id)];
      if (p > 0 && p < config_.min_p) {
        total -= p;
        p = 0;
      }
    }
  }
  // Walk the vocabulary in id order, so the draw depends on the
  // probabilities only, not on how the candidates were ordered.
  const double u = rng_.uniform() * total;
  double cum = 0;
  std::int32_t last = -1;
  for (std::int32_t id = 0; id < vocab_; ++id) {
    const double p = probs_[static_cast<std::size_t>(id)];
    if (p <= 0) continue;
    cum += p;
    last = id;
    if (u < cum) return id;
  }
  return last;  // u rounded up to the total
}

}  // namespace lwb::infer
