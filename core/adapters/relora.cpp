#include "core/adapters/relora.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/adapters/numerical_rank.h"
#include "core/adapters/variant_events.h"
#include "core/common/errors.h"
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

ReLoraOptions::ReLoraOptions(const AdapterConfig& c)
    : reset_every(static_cast<std::int64_t>(c.option("relora.reset_every"))),
      restart_warmup(static_cast<std::int64_t>(c.option("relora.restart_warmup"))),
      prune_ratio(c.option("relora.prune_ratio")),
      prune_independently(c.option("relora.prune_independently") != 0) {}

int ReLoraEvent::max_update_rank() const {
  int m = 0;
  for (const auto& [name, rank] : update_rank) m = std::max(m, rank);
  return m;
}

VariantEvent ReLoraEvent::encode() const {
  nlohmann::json j = {{"rank_tolerance", rank_tolerance}};
  for (const auto& [name, rank] : update_rank) j["update_rank"][name] = rank;
  if (!reset) {
    j["resets"] = resets;
    return {kUpdateRankKind, j.dump()};
  }
  j["step"] = step;
  j["reset"] = resets;
  j["moments_kept_fraction"] = moments_kept_fraction;
  return {kResetKind, j.dump()};
}

std::optional<ReLoraEvent> ReLoraEvent::decode(const VariantEvent& e) {
  ReLoraEvent r;
  std::optional<nlohmann::json> j = event_payload(e, kResetKind);
  if (!j) {
    j = event_payload(e, kUpdateRankKind);
    if (!j) return std::nullopt;
    r.reset = false;
  }
  r.step = j->value("step", std::int64_t{0});
  r.resets = j->value(r.reset ? "reset" : "resets", 0);
  r.moments_kept_fraction = j->value("moments_kept_fraction", 1.0);
  r.rank_tolerance = j->value("rank_tolerance", 0.0);
  if (const auto it = j->find("update_rank"); it != j->end() && it->is_object())
    for (const auto& [name, rank] : it->items()) r.update_rank[name] = rank.is_number_integer() ? rank.get<int>() : 0;
  return r;
}

ReLoraController::ReLoraController(const AdapterConfig& config, const ScheduleConfig& schedule, double max_lr,
                                   std::int64_t total_steps, std::uint64_t seed)
    : config_(config), options_(config), schedule_(schedule), max_lr_(max_lr), total_steps_(total_steps),
      seed_(seed) {}

void ReLoraController::attach(Model& model, AdamW& optimizer, MemoryLedger&) {
  if (model.frozen_linear_dtype() == DType::BF16) config_.check_bf16_frozen();
  model_ = &model;
  optimizer_ = &optimizer;
  const int last = model.config().layers - 1;
  for (int l = 0; l <= last; ++l)
    for (Target t : kAllTargets)
      if (auto* m = dynamic_cast<LoraLinear*>(&model.linear(l, t))) {
        if (l == 0 || l == last) tracked_.push_back(modules_.size());
        modules_.push_back(m);
        const std::vector<double> w = download_values(model.backend(), m->weight);
        w_start_.emplace_back(w.begin(), w.end());
      }
}

double ReLoraController::learning_rate(std::int64_t step, double) const {
  return jagged_cosine_lr(max_lr_, step, total_steps_, schedule_.warmup_steps, options_.reset_every,
                          options_.restart_warmup, schedule_.min_lr_ratio);
}

void ReLoraController::before_step(std::int64_t step, std::vector<VariantEvent>& events) {
  if (step > 0 && step % options_.reset_every == 0) reset(step, events);
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
      if (options_.prune_independently) {
        for (const Tensor& state : {m1, m2}) {
          std::vector<double> magnitude = download_values(be, state);
          for (double& v : magnitude) v = std::abs(v);
          const double threshold = quantile_linear(magnitude, options_.prune_ratio);
          be.zero_below(state, threshold);
          kept += std::count_if(magnitude.begin(), magnitude.end(), [&](double v) { return v > threshold; });
          total += static_cast<std::int64_t>(magnitude.size());
        }
        continue;
      }
      std::vector<double> first = download_values(be, m1), second = download_values(be, m2);
      const double threshold = quantile_linear(second, options_.prune_ratio);
      for (std::size_t i = 0; i < second.size(); ++i)
        if (second[i] <= threshold) first[i] = second[i] = 0;
        else kept += 2;
      total += 2 * static_cast<std::int64_t>(second.size());
      upload_values(be, m1, first);
      upload_values(be, m2, second);
    }
  last_kept_ = total > 0 ? static_cast<double>(kept) / static_cast<double>(total) : 1.0;
  ReLoraEvent e;
  e.step = step;
  e.resets = resets_;
  e.moments_kept_fraction = last_kept_;
  e.rank_tolerance = kRankTolerance;
  e.update_rank = update_ranks(false);
  events.push_back(e.encode());
}

std::vector<double> ReLoraController::delta(std::size_t i, bool include_adapter) const {
  Backend& be = model_->backend();
  const LoraLinear& m = *modules_.at(i);
  std::vector<double> d = download_values(be, m.weight);
  const std::vector<float>& w0 = w_start_[i];
  for (std::size_t k = 0; k < d.size(); ++k) d[k] -= w0[k];
  if (!include_adapter) return d;
  const std::vector<double> a = download_values(be, m.lora_A), b = download_values(be, m.lora_B);
  const std::size_t in = static_cast<std::size_t>(m.in()), r = static_cast<std::size_t>(m.rank());
  for (std::size_t o = 0; o < static_cast<std::size_t>(m.out()); ++o)
    for (std::size_t k = 0; k < r; ++k) {
      const double sb = m.scaling() * b[o * r + k];
      for (std::size_t c = 0; c < in; ++c) d[o * in + c] += sb * a[k * in + c];
    }
  return d;
}

std::map<std::string, int> ReLoraController::update_ranks(bool include_adapter) const {
  std::map<std::string, int> ranks;
  for (std::size_t i : tracked_) {
    const LoraLinear& m = *modules_[i];
    ranks[m.hf_name()] = numerical_rank(singular_values(delta(i, include_adapter), m.out(), m.in()), kRankTolerance);
  }
  return ranks;
}

std::vector<VariantEvent> ReLoraController::summary() {
  ReLoraEvent e;
  e.reset = false;
  e.resets = resets_;
  e.rank_tolerance = kRankTolerance;
  e.update_rank = update_ranks(true);
  return {e.encode()};
}

void ReLoraController::finish_adapter_state(AdapterState& s) const {
  std::map<std::string, HostTensor> deltas;
  int rank = config_.r * (resets_ + 1);
  for (std::size_t i = 0; i < modules_.size(); ++i) {
    const LoraLinear& m = *modules_[i];
    rank = std::min(rank, std::min(m.in(), m.out()));
    const std::vector<double> d = delta(i, true);
    deltas.emplace(m.hf_name(), HostTensor{{m.out(), m.in()}, std::vector<float>(d.begin(), d.end())});
  }
  AdapterState whole = lora_from_delta(deltas, rank, s.model, s.base_model, s.base_fingerprint).state;
  whole.config.method = config_.method;
  s = std::move(whole);
}

namespace {

void validate_relora(const AdapterConfig& c, const ModelConfig&, std::int64_t, std::int64_t warmup_steps) {
  const ReLoraOptions o(c);
  if (o.restart_warmup >= o.reset_every)
    throw ConfigError("adapter.relora.reset_every", "reset interval " + std::to_string(o.reset_every) +
                                                        " must exceed the restart warm-up (" +
                                                        std::to_string(o.restart_warmup) + " steps)");
  if (warmup_steps >= 0 && warmup_steps > o.reset_every)
    throw ConfigError("schedule.warmup_steps", "the first warm-up (" + std::to_string(warmup_steps) +
                                                   " steps) must end before the first reset at step " +
                                                   std::to_string(o.reset_every));
}

}  // namespace

const VariantDescriptor& relora_variant() {
  static const VariantDescriptor d = [] {
    const ReLoraOptions o;
    VariantDescriptor v;
    v.name = "relora";
    v.title = "ReLoRA";
    v.description =
        "high rank from low-rank steps (Lialin et al. 2023): every reset interval the LoRA update is merged into "
        "W and the adapter restarts (A re-initialised, B zero, optimiser moments pruned, LR re-warmed), so the "
        "sum of many rank-r updates can reach a high rank";
    v.uses_init = v.uses_rslora = true;
    v.options = {
        {"relora.reset_every", FieldKind::Int, double(o.reset_every), 1, kUnbounded, false, false, kMaxStepCount,
         "Reset every (steps)", "the paper's reset interval: every this many steps the LoRA update is merged into the frozen weights and "
         "the adapter restarts from a fresh A and B = 0; each restart adds up "
         "to rank r to the total update"},
        {"relora.restart_warmup", FieldKind::Int, double(o.restart_warmup), 0, kUnbounded, false, false, kMaxStepCount,
         "Re-warm-up (steps)", "the learning rate climbs back from 0 over this many steps after each reset"},
        {"relora.prune_ratio", FieldKind::Float, o.prune_ratio, 0, 1, false, true, 0, "Moment pruning ratio",
         "AdamW moments at or below this quantile are zeroed at each reset (the authors use 0.9 to 0.99)"},
        {"relora.prune_independently", FieldKind::Bool, double(o.prune_independently), 0, 1, false, false, 1,
         "Prune moments independently (authors')",
         "rank and prune the two moments separately, as the authors' code does; off, both moments of an "
         "entry are kept or dropped together (steadier)"}};
    v.validate = validate_relora;
    v.scaling = lora_scaling;
    v.tensors = lora_tensor_table();
    v.attach = attach_each<LoraLinear>;
    v.module = module_of<LoraLinear>;
    v.controller = [](const ControllerContext& c) {
      return std::make_unique<ReLoraController>(c.adapter, c.schedule, c.max_lr, c.total_steps, c.seed);
    };
    // On disk a plain LoRA (its whole update); lwb.method says it was ReLoRA.
    v.peft.type = "LORA";
    v.peft.claims = [](const PeftConfigReader&) { return false; };
    v.peft.read = read_lora_config;
    v.peft.write = write_lora_config;
    v.lora_form = lora_factors_of;
    v.factor_family = "lora";
    v.caps.resumable = false;
    v.caps.not_resumable_why = "its reset state (the starting weights and the merged cycles) is not saved";
    v.caps.bf16_base = false;
    v.caps.not_bf16_why =
        "ReLoRA merges its update into the base weights at every reset; merged into bf16 weights, updates below "
        "~0.4% of a weight (2^-8 relative) are rounded away, so ReLoRA needs model.frozen_dtype = fp32";
    v.markers = {{ReLoraEvent::kResetKind, "ReLoRA reset"}};
    v.compare_arms = {method_arm("relora", "ReLoRA r=8 (reset every 100)",
                                 "twice full fine-tuning's rate, 2e-3: ReLoRA's README trains the full-rank warm "
                                 "start at 5e-4 and then, \"Note that we use a larger LR during the ReLoRA stage\", "
                                 "at 1e-3 (github.com/Guitaricet/relora; Lialin et al. 2023, arXiv 2307.05695)",
                                 {{"optimizer.lr", "0.002"},
                                  {"adapter.relora.reset_every", "100"},
                                  {"adapter.relora.restart_warmup", "10"}})};
    return v;
  }();
  return d;
}

}  // namespace lwb
