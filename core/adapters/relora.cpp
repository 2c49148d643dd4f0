#include "core/adapters/relora.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/adapters/numerical_rank.h"
#include "core/model/weights_init.h"
#include "core/tensor/rng.h"

namespace lwb {

double quantile_linear(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(lo), v.end());
  const double a = v[lo];
  const double b = hi == lo ? a : *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(lo) + 1, v.end());
  return a + (b - a) * (pos - static_cast<double>(lo));
}

ReLoraController::ReLoraController(const AdapterConfig& config, const ScheduleConfig& schedule, double max_lr,
                                   std::int64_t total_steps, std::uint64_t seed)
    : config_(config), schedule_(schedule), max_lr_(max_lr), total_steps_(total_steps), seed_(seed) {}

void ReLoraController::attach(Model& model, AdamW& optimizer, MemoryLedger& ledger) {
  if (model.frozen_linear_dtype() == DType::BF16) config_.check_bf16_frozen();
  model_ = &model;
  optimizer_ = &optimizer;
  const int last = model.config().layers - 1;
  for (int l = 0; l <= last; ++l)
    for (Target t : kAllTargets)
      if (auto* m = dynamic_cast<LoraLinear*>(&model.linear(l, t))) {
        modules_.push_back(m);
        if (l == 0 || l == last) tracked_.push_back(m);
      }
  workspace_ = std::make_unique<TensorArena>(MemCategory::Workspace, model.dtype());
  w_start_.resize(tracked_.size());
  for (std::size_t i = 0; i < tracked_.size(); ++i)
    workspace_->add(&w_start_[i], tracked_[i]->layer(), std::string(target_module_name(tracked_[i]->target())) +
                                                            ".relora_w_start",
                    Shape{tracked_[i]->out(), tracked_[i]->in()});
  workspace_->materialize(model.backend(), ledger);
  for (std::size_t i = 0; i < tracked_.size(); ++i) model.backend().copy(w_start_[i], tracked_[i]->weight);
}

double ReLoraController::learning_rate(std::int64_t step, double) const {
  return jagged_cosine_lr(max_lr_, step, total_steps_, schedule_.warmup_steps, config_.relora.reset_every,
                          config_.relora.restart_warmup, schedule_.min_lr_ratio);
}

void ReLoraController::before_step(std::int64_t step, std::vector<VariantEvent>& events) {
  if (step > 0 && step % config_.relora.reset_every == 0) reset(step, events);
}

void ReLoraController::reset(std::int64_t step, std::vector<VariantEvent>& events) {
  Backend& be = model_->backend();
  ++resets_;
  for (LoraLinear* m : modules_) {
    m->merge_into_base(be, 1.0);
    m->initialize(be, derive_seed(seed_, 0x5E5E7000ull + static_cast<std::uint64_t>(resets_)));
  }
  std::int64_t kept = 0, total = 0;
  for (LoraLinear* m : modules_)
    for (const Tensor* p : {&m->lora_A, &m->lora_B}) {
      const Tensor m1 = model_->trainable().mirror_of(*p, optimizer_->exp_avg());
      const Tensor m2 = model_->trainable().mirror_of(*p, optimizer_->exp_avg_sq());
      if (config_.relora.prune_independently) {
        for (const Tensor& state : {m1, m2}) {
          std::vector<double> magnitude = download_values(be, state);
          for (double& v : magnitude) v = std::abs(v);
          const double threshold = quantile_linear(magnitude, config_.relora.prune_ratio);
          be.zero_below(state, threshold);
          kept += std::count_if(magnitude.begin(), magnitude.end(), [&](double v) { return v > threshold; });
          total += static_cast<std::int64_t>(magnitude.size());
        }
        continue;
      }
      std::vector<double> first = download_values(be, m1), second = download_values(be, m2);
      const double threshold = quantile_linear(second, config_.relora.prune_ratio);
      for (std::size_t i = 0; i < second.size(); ++i)
        if (second[i] <= threshold) first[i] = second[i] = 0;
        else kept += 2;
      total += 2 * static_cast<std::int64_t>(second.size());
      upload_values(be, m1, first);
      upload_values(be, m2, second);
    }
  last_kept_ = total > 0 ? static_cast<double>(kept) / static_cast<double>(total) : 1.0;
  nlohmann::json j = {{"step", step}, {"reset", resets_}, {"moments_kept_fraction", last_kept_},
                      {"rank_tolerance", kRankTolerance}};
  for (const auto& [name, rank] : update_ranks(false)) j["update_rank"][name] = rank;
  events.push_back({"relora.reset", j.dump()});
}

std::map<std::string, int> ReLoraController::update_ranks(bool include_adapter) const {
  Backend& be = model_->backend();
  std::map<std::string, int> ranks;
  for (std::size_t i = 0; i < tracked_.size(); ++i) {
    LoraLinear* m = tracked_[i];
    const Tensor now = make_tensor(be, m->weight.shape, m->weight.dtype);
    be.copy(now, m->weight);
    if (include_adapter)
      be.gemm(false, false, m->out(), m->in(), m->rank(), m->scaling(), m->lora_B, m->rank(), m->lora_A, m->in(),
              1.0, now, m->in());
    be.axpy(now, -1.0, w_start_[i]);
    ranks[m->hf_name()] = numerical_rank(singular_values(download_values(be, now), m->out(), m->in()), kRankTolerance);
  }
  return ranks;
}

std::vector<VariantEvent> ReLoraController::summary() {
  nlohmann::json j = {{"resets", resets_}, {"rank_tolerance", kRankTolerance}};
  for (const auto& [name, rank] : update_ranks(true)) j["update_rank"][name] = rank;
  return {{"relora.update_rank", j.dump()}};
}

}  // namespace lwb
