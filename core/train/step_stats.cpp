#include "core/train/step_stats.h"

#include <algorithm>
#include <span>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace lwb {

StepStats::StepStats(int layers, int bins) : layers_(layers), bins_(bins), squares_(static_cast<std::size_t>(layers)) {
  if (layers < 0 || bins < 1) throw std::invalid_argument("StepStats needs layers >= 0 and bins >= 1");
}

void StepStats::layer_grad_norms(Backend& backend, const TensorArena& grads, std::vector<double>& out) {
  std::fill(squares_.begin(), squares_.end(), 0.0);
  const auto& slots = grads.entries();
  for (std::size_t i = 0; i < slots.size(); ++i)
    if (slots[i].layer >= 0 && slots[i].layer < layers_)
      squares_[static_cast<std::size_t>(slots[i].layer)] += backend.sum_squares(grads.slot_tensor(i));
  out.resize(squares_.size());
  for (std::size_t l = 0; l < squares_.size(); ++l) out[l] = std::sqrt(squares_[l]);
}

VariantEvent StepStats::weight_histogram(Backend& backend, const TensorArena& params, std::int64_t step) {
  const Tensor& flat = params.flat();
  if (flat.dtype != DType::F32) throw std::invalid_argument("weight histograms read F32 parameters only");
  host_.resize(static_cast<std::size_t>(flat.numel()));  // grows once, then reused
  backend.download(host_.data(), flat, flat.nbytes());

  // One pass for each group's range, mean and spread, one for the counts.
  struct Group {
    double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
    double sum = 0, sum_sq = 0;
    std::int64_t count = 0;
    std::vector<std::int64_t> counts;
  };
  std::map<std::string, Group> groups;
  const auto& slots = params.entries();
  auto group_of = [&](std::size_t i) -> Group& {
    const std::string& m = slots[i].module;
    const std::size_t dot = m.rfind('.');
    return groups[dot == std::string::npos ? m : m.substr(dot + 1)];
  };
  auto values = [&](std::size_t i) {
    const std::size_t at = slots[i].offset / sizeof(float);
    return std::span<const float>(host_.data() + at, static_cast<std::size_t>(slots[i].shape.numel()));
  };
  for (std::size_t i = 0; i < slots.size(); ++i) {
    Group& g = group_of(i);
    for (float v : values(i)) {
      if (!std::isfinite(v)) continue;
      g.lo = std::min(g.lo, static_cast<double>(v));
      g.hi = std::max(g.hi, static_cast<double>(v));
      g.sum += v;
      g.sum_sq += static_cast<double>(v) * v;
      ++g.count;
    }
  }
  for (std::size_t i = 0; i < slots.size(); ++i) {
    Group& g = group_of(i);
    if (g.counts.empty()) g.counts.assign(static_cast<std::size_t>(bins_), 0);
    const double width = g.hi > g.lo ? (g.hi - g.lo) / bins_ : 1.0;
    for (float v : values(i)) {
      if (!std::isfinite(v)) continue;
      const int b = std::clamp(static_cast<int>((v - g.lo) / width), 0, bins_ - 1);
      ++g.counts[static_cast<std::size_t>(b)];
    }
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [name, g] : groups) {
    if (g.count == 0) continue;
    const double mean = g.sum / static_cast<double>(g.count);
    list.push_back({{"name", name},
                    {"lo", g.lo},
                    {"hi", g.hi},
                    {"count", g.count},
                    {"mean", mean},
                    {"std", std::sqrt(std::max(0.0, g.sum_sq / static_cast<double>(g.count) - mean * mean))},
                    {"counts", g.counts}});
  }
  return {kWeightHistogramKind, nlohmann::json{{"step", step}, {"groups", list}}.dump()};
}

}  // namespace lwb
