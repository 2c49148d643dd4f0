#include "core/adapters/adalora_allocator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/adapters/adapter_state.h"
#include "core/adapters/variant_events.h"
#include "core/model/weights_init.h"

namespace lwb {

AdaLoraBudget adalora_budget(const AdaLoraOptions& o, std::int64_t init_bgt, std::int64_t target_bgt,
                             std::int64_t step, std::int64_t total_steps) {
  if (step <= o.tinit) return {init_bgt, false};
  if (step > total_steps - o.tfinal) return {target_bgt, true};
  const double mul = 1.0 - static_cast<double>(step - o.tinit) /
                               static_cast<double>(total_steps - o.tfinal - o.tinit);
  // Python's int() truncates; the value is positive, so a cast matches.
  const auto budget = static_cast<std::int64_t>(static_cast<double>(init_bgt - target_bgt) * mul * mul * mul +
                                                static_cast<double>(target_bgt));
  return {budget, step % o.delta_t == 0};
}

AdaLoraController::AdaLoraController(const AdapterConfig& config, std::int64_t total_steps)
    : config_(config), options_(config), total_steps_(total_steps) {}

std::vector<const TensorArena*> AdaLoraController::declare(Model& model) {
  if (!ipt_) {
    model_ = &model;
    params_ = &model.trainable();
    params_->layout();
    for (int l = 0; l < model.config().layers; ++l)
      for (Target t : kAllTargets)
        if (auto* m = dynamic_cast<AdaLoraLinear*>(&model.linear(l, t))) modules_.push_back(m);
    init_bgt_ = static_cast<std::int64_t>(config_.r) * static_cast<std::int64_t>(modules_.size());
    target_bgt_ = static_cast<std::int64_t>(options_.target_r) * static_cast<std::int64_t>(modules_.size());
    const DType dtype = params_->params().dtype();
    ipt_ = std::make_unique<TensorArena>(MemCategory::OptimizerState, dtype);
    unc_ = std::make_unique<TensorArena>(MemCategory::OptimizerState, dtype);
    work_ = std::make_unique<TensorArena>(MemCategory::Workspace, dtype);
    ipt_->mirror(params_->params(), ".importance_avg");
    unc_->mirror(params_->params(), ".uncertainty_avg");
    work_->add(&orth_cov_, kModelLevel, "adalora_orth_reg", Shape{config_.r, config_.r});
  }
  return {ipt_.get(), unc_.get(), work_.get()};
}

void AdaLoraController::attach(Model& model, AdamW&, MemoryLedger& ledger) {
  declare(model);
  backend_ = &model.backend();
  ipt_->materialize(*backend_, ledger);
  unc_->materialize(*backend_, ledger);
  work_->materialize(*backend_, ledger);
}

// orth_reg_weight * mean over every A and B of ||A A^T - I||_F, ||B^T B - I||_F;
// d||D||/dA = 2 D A / ||D|| and d||D||/dB = 2 B D / ||D|| (D symmetric).
double AdaLoraController::regularize() {
  const double w = options_.orth_reg_weight;
  if (w == 0 || modules_.empty()) return 0;
  Backend& be = *backend_;
  const int r = config_.r;
  const double count = 2.0 * static_cast<double>(modules_.size());
  double total = 0;
  auto term = [&](const Tensor& p, const Tensor& grad, bool is_a, int in, int out) {
    if (is_a)
      be.gemm(false, true, r, r, in, 1.0, p, in, p, in, 0.0, orth_cov_, r);
    else
      be.gemm(true, false, r, r, out, 1.0, p, r, p, r, 0.0, orth_cov_, r);
    std::vector<double> d = download_values(be, orth_cov_);
    for (int i = 0; i < r; ++i) d[static_cast<std::size_t>(i * r + i)] -= 1.0;
    double f2 = 0;
    for (double v : d) f2 += v * v;
    const double f = std::sqrt(f2);
    total += f;
    if (f == 0) return;
    for (double& v : d) v *= 2.0 * w / (count * f);
    upload_values(be, orth_cov_, d);
    if (is_a)
      be.gemm(false, false, r, in, r, 1.0, orth_cov_, r, p, in, 1.0, grad, in);
    else
      be.gemm(false, false, out, r, r, 1.0, p, r, orth_cov_, r, 1.0, grad, r);
  };
  for (AdaLoraLinear* m : modules_) {
    term(m->lora_A, m->lora_A_grad, true, m->in(), m->out());
    term(m->lora_B, m->lora_B_grad, false, m->in(), m->out());
  }
  return w * total / count;
}

void AdaLoraController::update_importance(double grad_scale) {
  backend_->adalora_importance(ipt_->flat(), unc_->flat(), params_->params().flat(), params_->grads().flat(),
                               options_.beta1, options_.beta2, grad_scale);
}

std::vector<std::vector<double>> AdaLoraController::triplet_scores() const {
  Backend& be = *backend_;
  const int r = config_.r;
  std::vector<std::vector<double>> out;
  for (const AdaLoraLinear* m : modules_) {
    auto score = [&](const Tensor& p) {
      std::vector<double> s = download_values(be, params_->mirror_of(p, *ipt_));
      const std::vector<double> u = download_values(be, params_->mirror_of(p, *unc_));
      for (std::size_t i = 0; i < s.size(); ++i) s[i] *= u[i];
      return s;
    };
    const std::vector<double> sa = score(m->lora_A), sb = score(m->lora_B), se = score(m->lora_E);
    std::vector<double> t(static_cast<std::size_t>(r));
    for (int i = 0; i < r; ++i) {
      double a = 0, b = 0;
      for (int c = 0; c < m->in(); ++c) a += sa[static_cast<std::size_t>(i * m->in() + c)];
      for (int o = 0; o < m->out(); ++o) b += sb[static_cast<std::size_t>(o * r + i)];
      t[static_cast<std::size_t>(i)] = se[static_cast<std::size_t>(i)] + a / m->in() + b / m->out();
    }
    out.push_back(std::move(t));
  }
  return out;
}

void AdaLoraController::mask_to_budget(std::int64_t budget) {
  const auto scores = triplet_scores();
  const std::int64_t k = init_bgt_ - budget;
  double threshold = -std::numeric_limits<double>::infinity();
  if (k > 0) {
    std::vector<double> all;
    for (const auto& s : scores) all.insert(all.end(), s.begin(), s.end());
    std::nth_element(all.begin(), all.begin() + (k - 1), all.end());
    threshold = all[static_cast<std::size_t>(k - 1)];
  }
  for (std::size_t i = 0; i < modules_.size(); ++i) {
    std::vector<bool> keep(scores[i].size());
    for (std::size_t j = 0; j < keep.size(); ++j) keep[j] = scores[i][j] > threshold;
    rank_pattern_[modules_[i]->hf_name()] = keep;
  }
  apply_rank_pattern();
}

void AdaLoraController::apply_rank_pattern() {
  for (AdaLoraLinear* m : modules_) {
    const auto it = rank_pattern_.find(m->hf_name());
    if (it == rank_pattern_.end()) continue;
    std::vector<double> e = download_values(*backend_, m->lora_E);
    bool changed = false;
    for (std::size_t j = 0; j < e.size(); ++j)
      if (!it->second[j] && e[j] != 0) {
        e[j] = 0;
        changed = true;
      }
    if (changed) upload_values(*backend_, m->lora_E, e);
  }
}

std::map<std::string, int> AdaLoraController::kept_ranks() const {
  std::map<std::string, int> ranks;
  for (const AdaLoraLinear* m : modules_) {
    const auto it = rank_pattern_.find(m->hf_name());
    ranks[m->hf_name()] =
        it == rank_pattern_.end() ? config_.r : static_cast<int>(std::count(it->second.begin(), it->second.end(), true));
  }
  return ranks;
}

std::int64_t AdaLoraRanksEvent::kept_total() const {
  std::int64_t total = 0;
  for (const auto& [name, rank] : ranks) total += rank;
  return total;
}

VariantEvent AdaLoraRanksEvent::encode() const {
  nlohmann::json j;
  for (const auto& [name, rank] : ranks) j["ranks"][name] = rank;
  if (final_summary) {
    for (const auto& [name, keep] : rank_pattern) j["rank_pattern"][name + ".lora_E"] = keep;
    j["frozen"] = frozen;
    return {kFinalKind, j.dump()};
  }
  j["step"] = step.value_or(0);
  j["budget"] = budget;
  j["final"] = frozen;
  j["kept_total"] = kept_total();
  return {kKind, j.dump()};
}

std::optional<AdaLoraRanksEvent> AdaLoraRanksEvent::decode(const VariantEvent& e) {
  std::optional<nlohmann::json> j = event_payload(e, kKind);
  AdaLoraRanksEvent r;
  if (!j) {
    j = event_payload(e, kFinalKind);
    if (!j) return std::nullopt;
    r.final_summary = true;
  }
  if (const auto it = j->find("ranks"); it != j->end() && it->is_object())
    for (const auto& [name, rank] : it->items()) r.ranks[name] = rank.is_number_integer() ? rank.get<int>() : 0;
  if (const auto it = j->find("step"); it != j->end() && it->is_number_integer()) r.step = it->get<std::int64_t>();
  r.budget = j->value("budget", std::int64_t{0});
  r.frozen = j->value(r.final_summary ? "frozen" : "final", false);
  if (const auto it = j->find("rank_pattern"); it != j->end() && it->is_object())
    for (const auto& [key, flags] : it->items()) {
      std::vector<bool> keep;
      for (const auto& f : flags) keep.push_back(f.is_boolean() && f.get<bool>());
      r.rank_pattern[key.ends_with(".lora_E") ? key.substr(0, key.size() - 7) : key] = std::move(keep);
    }
  return r;
}

VariantEvent AdaLoraController::ranks_event(std::int64_t step, std::int64_t budget) const {
  AdaLoraRanksEvent e;
  e.step = step;
  e.budget = budget;
  e.frozen = frozen_;
  e.ranks = kept_ranks();
  return e.encode();
}

void AdaLoraController::after_step(std::int64_t step, double grad_scale, std::vector<VariantEvent>& events) {
  const std::int64_t final_step = total_steps_ - options_.tfinal;
  if (step < final_step) {
    update_importance(grad_scale);
    const AdaLoraBudget b = adalora_budget(options_, init_bgt_, target_bgt_, step, total_steps_);
    if (b.mask) {
      mask_to_budget(b.budget);
      events.push_back(ranks_event(step, b.budget));
    }
  } else if (step == final_step) {
    const AdaLoraBudget b = adalora_budget(options_, init_bgt_, target_bgt_, step, total_steps_);
    mask_to_budget(b.budget);
    frozen_ = true;
    backend_->fill(ipt_->flat(), 0.0);
    backend_->fill(unc_->flat(), 0.0);
    events.push_back(ranks_event(step, b.budget));
  } else {
    apply_rank_pattern();
  }
}

std::vector<VariantEvent> AdaLoraController::summary() {
  AdaLoraRanksEvent e;
  e.final_summary = true;
  e.frozen = frozen_;
  e.ranks = kept_ranks();
  e.rank_pattern = rank_pattern_;
  return {e.encode()};
}

void AdaLoraController::finish_adapter_state(AdapterState& s) const {
  s.total_step = total_steps_;
  if (frozen_) s.rank_pattern = rank_pattern_;
}

}  // namespace lwb
