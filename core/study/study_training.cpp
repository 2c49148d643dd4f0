// The studies that compare training methods: lora-vs-full, dora-vs-lora,
// relora-rank and adalora-budget. Each is one comparison over seeds plus
// what the study measures about its runs.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "core/adapters/adalora_allocator.h"
#include "core/adapters/adapter_state.h"
#include "core/adapters/numerical_rank.h"
#include "core/adapters/relora.h"
#include "core/common/errors.h"
#include "core/common/str_printf.h"
#include "core/source/model_source.h"
#include "core/study/study_internal.h"

namespace lwb::study {

namespace {


Report intro(const Context& ctx) {
  Report r;
  r.heading(ctx.info.name + ": " + ctx.info.title + " (base " + ctx.options.base + ")");
  r.paragraph("Claim: " + ctx.info.claim);
  std::string sets;
  for (const std::string& s : ctx.options.sets) sets += (sets.empty() ? "" : ", ") + s;
  r.paragraph("Design: " + ctx.info.design + " " + std::to_string(ctx.options.seeds) +
              " training seed(s) per arm" + (ctx.options.pick_lr ? ", learning rates picked on a validation split first" : "") +
              (sets.empty() ? "" : "; changed for this run: " + sets) + ".");
  return r;
}

StudyResult start(const Context& ctx, const StoredComparison& c) {
  StudyResult out;
  out.comparison_id = c.id;
  out.stopped = c.stopped;
  out.report = intro(ctx);
  return out;
}

// The report's closing part: every plot, then the comparison's own report.
void close(StudyResult& out, const ComparisonSummary& s) {
  out.report.paragraph("Results:");
  out.report.bullets(out.key_numbers);
  for (const PlotSpec& p : out.plots) out.report.image(p.file, p.title);
  out.report.append(comparison_report(s));
}

std::string mib(double bytes) { return str_printf("%.2f MiB", bytes / (1 << 20)); }

std::string accuracy_text(const ArmSummary& a) { return interval_text(a.accuracy, 100, 1, false, "%"); }

}  // namespace

StudyResult lora_vs_full(Context& ctx) {
  const StoredComparison c = run_arms(ctx, "LoRA r=8 on all seven targets vs full fine-tuning, task reverse",
                                      {{"lora", ctx.lora("lora"), "the base's LoRA rate", ""},
                                       {"full", ctx.full("full"), "the base's full fine-tuning rate", ""}});
  const ComparisonSummary& s = c.summary;
  StudyResult out = start(ctx, c);
  const ArmSummary &lora = arm(s, "lora"), &full = arm(s, "full");
  auto peak = [&](const ArmSummary& a, MemCategory category) {
    return measure_interval(s, a, std::string("peak.") + mem_category_key(category)).mean;
  };
  out.report.paragraph("Measured peak memory by category (the ledger's peaks; memory does not depend on the seed):");
  out.report.table(memory_table(s));
  out.key_numbers = {
      str_printf("trainable parameters: LoRA %lld (%.2f%% of the model) vs full %lld",
                 static_cast<long long>(lora.trainable_params),
                 100.0 * lora.trainable_params / std::max<std::int64_t>(1, lora.model_params),
                 static_cast<long long>(full.trainable_params)),
      "peak memory: LoRA " + mib(lora.peak_mib.mean * (1 << 20)) + " vs full " + mib(full.peak_mib.mean * (1 << 20)) +
          " (gradients " + mib(peak(lora, MemCategory::Gradients)) + " vs " + mib(peak(full, MemCategory::Gradients)) +
          ", optimizer state " + mib(peak(lora, MemCategory::OptimizerState)) + " vs " +
          mib(peak(full, MemCategory::OptimizerState)) + ")",
      "tokens/s: LoRA " + interval_text(lora.tokens_per_s, 1, 0) + " vs full " + interval_text(full.tokens_per_s, 1, 0) +
          " (this machine, under whatever else ran on it)",
      "exact match: LoRA " + accuracy_text(lora) + " vs full " + accuracy_text(full),
  };
  if (!s.differences.empty())
    out.key_numbers.push_back(
        difference_verdict("full", "lora", s.differences[0].accuracy, "points exact match", 100, 1));
  out.plots = {quality_plot(s), memory_plot(s), speed_plot(s)};
  close(out, s);
  return out;
}

StudyResult dora_vs_lora(Context& ctx) {
  const ExperimentConfig lora = ctx.lora("lora");
  // The base's shape as the runs will load it: a built-in preset, or a fetched file's own config (SmolLM2).
  const ModelConfig mc = resolve_base(lora.model.preset, ctx.env.data_folder(), "study.base").config;
  const std::int64_t budget = lora.adapter.trainable_params(mc);
  ExperimentConfig dora = ctx.lora("dora");
  dora.adapter.method = "dora";
  // DoRA's authors suggest a slightly lower rate than LoRA's (core/adapters/dora.cpp).
  dora.optimizer.lr = lora.optimizer.lr * 2.0 / 3.0;
  // The largest rank whose parameters, magnitudes included, fit LoRA's budget,
  // at LoRA's scale alpha / r.
  while (dora.adapter.r > 1 && dora.adapter.trainable_params(mc) > budget) --dora.adapter.r;
  dora.adapter.alpha = lora.adapter.alpha * dora.adapter.r / lora.adapter.r;
  ExperimentConfig norm_grad = dora;
  norm_grad.name = "study-" + ctx.info.name + "-dora-norm-grad";
  norm_grad.adapter.set_option("dora.norm_grad", 1);
  const std::string rd = std::to_string(dora.adapter.r);
  const StoredComparison c = run_arms(
      ctx, "LoRA r=8 vs DoRA r=" + rd + " (norm detached) vs DoRA r=" + rd + " (gradient through the norm), task reverse",
      {{"lora", lora, "the base's LoRA rate", ""},
       {"dora", dora, "2/3 of LoRA's rate: DoRA's authors suggest a slightly lower rate than LoRA's and train it at 2e-4 where LoRA has 3e-4 (NVlabs/DoRA)", ""},
       {"dora-norm-grad", norm_grad, "as dora", ""}});
  const ComparisonSummary& s = c.summary;
  StudyResult out = start(ctx, c);
  const ArmSummary &l = arm(s, "lora"), &d = arm(s, "dora"), &g = arm(s, "dora-norm-grad");
  out.report.paragraph("Measured peak memory by category; DoRA with the gradient through the norm keeps W + sBA of "
                       "every module for the backward:");
  out.report.table(memory_table(s));
  const std::string activations = std::string("peak.") + mem_category_key(MemCategory::Activations);
  const double activations_d = measure_interval(s, d, activations).mean,
               activations_g = measure_interval(s, g, activations).mean;
  out.key_numbers = {
      str_printf("trainable parameters: LoRA r=8 %lld, DoRA r=%d %lld (rank %d is the largest within LoRA's budget)",
                 static_cast<long long>(l.trainable_params), dora.adapter.r, static_cast<long long>(d.trainable_params),
                 dora.adapter.r),
      "exact match: LoRA " + accuracy_text(l) + ", DoRA " + accuracy_text(d) + ", DoRA with the norm's gradient " +
          accuracy_text(g),
      "peak memory: DoRA detached " + mib(d.peak_mib.mean * (1 << 20)) + " vs with the norm's gradient " +
          mib(g.peak_mib.mean * (1 << 20)) + " (activations " + mib(activations_d) + " vs " + mib(activations_g) +
          "); LoRA " + mib(l.peak_mib.mean * (1 << 20)),
      "tokens/s: LoRA " + interval_text(l.tokens_per_s, 1, 0) + ", DoRA " + interval_text(d.tokens_per_s, 1, 0) +
          ", DoRA with the norm's gradient " + interval_text(g.tokens_per_s, 1, 0),
  };
  for (const ArmDifference& diff : s.differences)
    out.key_numbers.push_back(difference_verdict(diff.arm, diff.reference, diff.accuracy, "points exact match", 100, 1));
  out.plots = {quality_plot(s), memory_plot(s)};
  close(out, s);
  return out;
}

namespace {

// Numerical rank of every LoRA module's update B·A (the scale does not change
// it), with ReLoRA's tolerance.
std::map<std::string, int> lora_update_ranks(const AdapterState& state) {
  std::map<std::string, int> ranks;
  const std::string prefix = "base_model.model.", suffix = ".lora_A.weight";
  for (const auto& [key, a] : state.tensors) {
    if (key.size() <= prefix.size() + suffix.size() || key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string module = key.substr(prefix.size(), key.size() - prefix.size() - suffix.size());
    const HostTensor& b = state.tensors.at(peft_key(module, "lora_B.weight"));
    const std::int64_t r = a.shape[0], in = a.shape[1], out = b.shape[0];
    std::vector<double> ba(static_cast<std::size_t>(out * in), 0.0);
    for (std::int64_t o = 0; o < out; ++o)
      for (std::int64_t k = 0; k < r; ++k) {
        const double bk = b.values[static_cast<std::size_t>(o * r + k)];
        for (std::int64_t i = 0; i < in; ++i) ba[static_cast<std::size_t>(o * in + i)] += bk * a.values[static_cast<std::size_t>(k * in + i)];
      }
    ranks[module] = numerical_rank(singular_values(std::move(ba), static_cast<int>(out), static_cast<int>(in)),
                                   ReLoraController::kRankTolerance);
  }
  return ranks;
}

// The rank of each module's accumulated update after every `every` steps:
// ReLoRA's from its reset events (after a reset the update is all merged)
// and its final summary (merged + live adapter); LoRA's from its adapter.
class RankProbe : public ComparisonObserver, public TrainerSink {
 public:
  explicit RankProbe(std::int64_t every) : every_(every) {}

  TrainerSink* run_sink(const ComparisonRunTag& tag, Trainer& trainer) override {
    trainer_ = &trainer;
    relora_ = tag.arm == "relora";
    ranks_.clear();
    return this;
  }
  void on_step(const StepEvent& e) override {
    for (const VariantEvent& v : e.variant_events)
      if (const auto reset = ReLoraEvent::decode(v); reset && reset->reset) record(reset->step, reset->update_rank);
    if (!relora_ && e.step % every_ == 0) record(e.step, lora_update_ranks(trainer_->adapter_state()));
  }
  void run_ended(const ComparisonRunTag&, Trainer& trainer, const RunResult& r, ComparisonSample& s) override {
    if (relora_)
      for (const VariantEvent& v : r.summary)
        if (const auto end = ReLoraEvent::decode(v); end && !end->reset) record(r.steps_done, end->update_rank);
    for (const auto& [k, v] : ranks_) s.measures[k] = v;
    trainer_ = nullptr;
  }

 private:
  void record(std::int64_t step, const std::map<std::string, int>& per_module) {
    if (per_module.empty()) return;
    double sum = 0;
    int most = 0;
    for (const auto& [m, rank] : per_module) {
      sum += rank;
      most = std::max(most, rank);
    }
    const std::string key = "rank.step" + std::to_string(step);
    ranks_[key + ".mean"] = sum / static_cast<double>(per_module.size());
    ranks_[key + ".max"] = most;
  }
  std::int64_t every_;
  Trainer* trainer_ = nullptr;
  bool relora_ = false;
  std::map<std::string, double> ranks_;
};

}  // namespace

StudyResult relora_rank(Context& ctx) {
  const ExperimentConfig lora = ctx.lora("lora");
  ExperimentConfig relora = ctx.lora("relora");
  relora.adapter.method = "relora";
  const std::int64_t every = std::max<std::int64_t>(1, lora.train.steps / 3);
  relora.adapter.set_option("relora.reset_every", static_cast<double>(every));
  relora.adapter.set_option("relora.restart_warmup", static_cast<double>(std::max<std::int64_t>(1, every / 10)));
  // Twice full fine-tuning's rate, as ReLoRA's authors train (its comparison arm, core/adapters/relora.cpp).
  relora.optimizer.lr = 2 * ctx.full_lr();
  RankProbe probe(every);
  const StoredComparison c = run_arms(ctx,
                                      "LoRA r=8 vs ReLoRA r=8 with a reset every " + std::to_string(every) +
                                          " steps, task reverse",
                                      {{"lora", lora, "the base's LoRA rate", ""},
                                       {"relora", relora, "twice the base's full fine-tuning rate (Guitaricet/relora)", ""}},
                                      &probe);
  const ComparisonSummary& s = c.summary;
  StudyResult out = start(ctx, c);
  const ArmSummary &l = arm(s, "lora"), &re = arm(s, "relora");
  std::vector<std::int64_t> steps;
  for (std::int64_t k = every; k < lora.train.steps; k += every) steps.push_back(k);
  steps.push_back(lora.train.steps);
  PlotSpec plot{"rank.png",
                "Numerical rank of the accumulated update (mean over modules, 95% CI over seeds)",
                "rank",
                {},
                {{"lora", {}, {}}, {"relora", {}, {}}},
                false};
  std::vector<std::vector<std::string>> table = {{"after step", "LoRA mean rank", "LoRA max", "ReLoRA mean rank",
                                                  "ReLoRA max", "ReLoRA bound r·(resets + 1)"}};
  for (std::size_t k = 0; k < steps.size(); ++k) {
    const std::string key = "rank.step" + std::to_string(steps[k]);
    const Interval lm = measure_interval(s, l, key + ".mean"), rm = measure_interval(s, re, key + ".mean");
    plot.categories.push_back("step " + std::to_string(steps[k]));
    plot.series[0].values.push_back(lm.mean);
    plot.series[0].errors.push_back(lm.has_spread() ? lm.half_width() : NAN);
    plot.series[1].values.push_back(rm.mean);
    plot.series[1].errors.push_back(rm.has_spread() ? rm.half_width() : NAN);
    table.push_back({std::to_string(steps[k]), interval_text(lm, 1, 1), interval_text(measure_interval(s, l, key + ".max"), 1, 1),
                     interval_text(rm, 1, 1), interval_text(measure_interval(s, re, key + ".max"), 1, 1),
                     std::to_string(relora.adapter.r * static_cast<int>(k + 1))});
  }
  out.report.paragraph("Numerical rank (singular values above 1e-4 of the largest) of each module's accumulated "
                       "update, ReLoRA's W − W_start after each merge (and with the live adapter at the end), "
                       "LoRA's B·A, mean and largest over the " +
                       std::string("modules, mean ± 95% half-width over seeds:"));
  out.report.table(std::move(table));
  const std::string last = "rank.step" + std::to_string(steps.back()) + ".mean";
  out.key_numbers = {
      "mean update rank at the end: ReLoRA " + interval_text(measure_interval(s, re, last), 1, 1) + " vs LoRA " +
          interval_text(measure_interval(s, l, last), 1, 1) + " (rank r = " + std::to_string(lora.adapter.r) + ", " +
          std::to_string(steps.size() - 1) + " resets: ReLoRA's bound is " +
          std::to_string(relora.adapter.r * static_cast<int>(steps.size())) + ")",
      "exact match: LoRA " + accuracy_text(l) + " vs ReLoRA " + accuracy_text(re),
  };
  if (!s.differences.empty())
    out.key_numbers.push_back(difference_verdict("relora", "lora", s.differences[0].accuracy, "points exact match", 100, 1));
  out.plots = {plot, quality_plot(s)};
  close(out, s);
  return out;
}

namespace {

// Each module's final rank: AdaLoRA's from its summary, a fixed-rank
// adapter's is its r on every targeted module.
class BudgetProbe : public ComparisonObserver {
 public:
  void run_ended(const ComparisonRunTag&, Trainer& trainer, const RunResult& r, ComparisonSample& s) override {
    bool adaptive = false;
    for (const VariantEvent& v : r.summary)
      if (const auto ranks = AdaLoraRanksEvent::decode(v); ranks && ranks->final_summary) {
        adaptive = true;
        for (const auto& [module, rank] : ranks->ranks) s.measures["rank." + module] = rank;
      }
    if (adaptive || r.status == RunStatus::Failed) return;
    const ExperimentConfig& c = trainer.config();
    for (int l = 0; l < trainer.model().config().layers; ++l)
      for (Target t : c.adapter.targets) s.measures["rank." + module_hf_name(l, t)] = c.adapter.r;
  }
};

// Per seed, the mean rank over the modules `keep` accepts; then the interval over seeds.
Interval rank_group(const ComparisonSummary& s, const ArmSummary& a, const std::function<bool(int, const std::string&)>& keep) {
  std::vector<double> per_seed;
  for (const ComparisonSample& x : a.seeds) {
    if (x.status != "finished" && x.status != "diverged") continue;
    double sum = 0;
    int n = 0;
    for (const auto& [key, v] : x.measures) {
      int layer = 0;
      std::string type;
      if (key.rfind("rank.", 0) == 0 && parse_module(key.substr(5), layer, type) && keep(layer, type)) {
        sum += v;
        ++n;
      }
    }
    per_seed.push_back(n > 0 ? sum / n : NAN);
  }
  return mean_interval(per_seed);
}

}  // namespace

StudyResult adalora_budget(Context& ctx) {
  const ExperimentConfig lora = ctx.lora("lora");
  ExperimentConfig ada = ctx.lora("adalora");
  // As the tiny-methods preset: rank 12 pruned to an average of 8, so the final
  // budget is LoRA r = 8's; c = alpha / r = 2 as LoRA's 16 / 8.
  ada.adapter.method = "adalora";
  ada.adapter.r = 12;
  ada.adapter.alpha = 24;
  ada.adapter.set_option("adalora.target_r", lora.adapter.r);
  ada.adapter.set_option("adalora.tinit", static_cast<double>(lora.train.steps / 10));
  ada.adapter.set_option("adalora.tfinal", static_cast<double>(lora.train.steps / 5));
  ada.adapter.set_option("adalora.delta_t", 5);
  BudgetProbe probe;
  const StoredComparison c = run_arms(ctx, "LoRA r=8 vs AdaLoRA 12 -> 8 (the same final budget), task reverse",
                                      {{"lora", lora, "the base's LoRA rate", ""},
                                       {"adalora", ada, "LoRA's rate, as AdaLoRA's scripts use (QingruZhang/AdaLoRA)", ""}},
                                      &probe);
  const ComparisonSummary& s = c.summary;
  StudyResult out = start(ctx, c);
  const ArmSummary &l = arm(s, "lora"), &a = arm(s, "adalora");
  std::set<std::string> types;
  std::set<int> layers;
  for (const ComparisonSample& x : a.seeds)
    for (const auto& [key, v] : x.measures) {
      int layer = 0;
      std::string type;
      if (key.rfind("rank.", 0) == 0 && parse_module(key.substr(5), layer, type)) {
        types.insert(type);
        layers.insert(layer);
      }
    }
  // Module types in the model's order.
  std::vector<std::string> ordered;
  for (Target t : kAllTargets)
    if (types.contains(target_module_name(t))) ordered.push_back(target_module_name(t));
  auto group_plot = [&](const std::string& file, const std::string& title, const std::vector<std::string>& cats,
                        const std::function<bool(std::size_t, int, const std::string&)>& keep) {
    PlotSpec p{file, title, "final rank", cats, {{"adalora", {}, {}}, {"lora", {}, {}}}, false};
    std::vector<std::vector<std::string>> table = {{"", "AdaLoRA final rank", "LoRA rank"}};
    for (std::size_t k = 0; k < cats.size(); ++k) {
      const auto pick = [&](int layer, const std::string& type) { return keep(k, layer, type); };
      const Interval ia = rank_group(s, a, pick), il = rank_group(s, l, pick);
      p.series[0].values.push_back(ia.mean);
      p.series[0].errors.push_back(ia.has_spread() ? ia.half_width() : NAN);
      p.series[1].values.push_back(il.mean);
      p.series[1].errors.push_back(NAN);
      table.push_back({cats[k], interval_text(ia, 1, 2), interval_text(il, 1, 0)});
    }
    return std::make_pair(p, table);
  };
  const auto [by_type, type_table] =
      group_plot("rank_by_module.png", "AdaLoRA's final rank by module type (mean over layers, 95% CI over seeds)",
                 ordered, [&](std::size_t k, int, const std::string& type) { return type == ordered[k]; });
  std::vector<std::string> layer_names;
  std::vector<int> layer_list(layers.begin(), layers.end());
  for (int layer : layer_list) layer_names.push_back("layer " + std::to_string(layer));
  const auto [by_layer, layer_table] =
      group_plot("rank_by_layer.png", "AdaLoRA's final rank by layer (mean over module types, 95% CI over seeds)",
                 layer_names, [&](std::size_t k, int layer, const std::string&) { return layer == layer_list[k]; });
  out.report.paragraph("Where AdaLoRA put the rank, by module type (mean over layers):");
  out.report.table(type_table);
  out.report.paragraph("By layer (mean over module types):");
  out.report.table(layer_table);
  const Interval total_mean = rank_group(s, a, [](int, const std::string&) { return true; });
  std::string most, least;
  double hi = -1, lo = 1e9;
  for (std::size_t k = 0; k < ordered.size(); ++k)
    if (std::isfinite(by_type.series[0].values[k])) {
      if (by_type.series[0].values[k] > hi) hi = by_type.series[0].values[k], most = ordered[k];
      if (by_type.series[0].values[k] < lo) lo = by_type.series[0].values[k], least = ordered[k];
    }
  out.key_numbers = {
      "AdaLoRA's mean final rank over all modules: " + interval_text(total_mean, 1, 2) + " (LoRA: " +
          std::to_string(lora.adapter.r) + " everywhere)",
      most.empty() ? std::string("AdaLoRA recorded no final ranks")
                   : str_printf("most rank to %s (%.2f), least to %s (%.2f)", most.c_str(), hi, least.c_str(), lo),
      "exact match: LoRA " + accuracy_text(l) + " vs AdaLoRA " + accuracy_text(a),
  };
  if (!s.differences.empty())
    out.key_numbers.push_back(difference_verdict("adalora", "lora", s.differences[0].accuracy, "points exact match", 100, 1));
  out.plots = {by_type, by_layer, quality_plot(s)};
  close(out, s);
  return out;
}

}  // namespace lwb::study
