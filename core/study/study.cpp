#include "core/study/study.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/common/errors.h"
#include "core/source/downloads.h"
#include "core/study/study_internal.h"

namespace lwb {

namespace {

// How a study trains on each base. The tiny base's rates are the tiny-lora
// and tiny-full presets'; SmolLM2-135M's are the usual starting points for a
// model of its size (2e-4 for LoRA, 2e-5 for full fine-tuning).
struct BaseProfile {
  const char* name;
  double lora_lr, full_lr;
  std::int64_t steps;
  int batch;
};
constexpr BaseProfile kBases[] = {
    {"tiny", 3e-3, 1e-3, 300, 16},
    {"smollm2-135m", 2e-4, 2e-5, 200, 8},
};

// A downloadable base (smollm2-135m) counts once its file is in the data
// folder: the study's runs resolve it there.
const BaseProfile& base_profile(const std::string& base, const std::filesystem::path& data_dir) {
  for (const BaseProfile& b : kBases)
    if (b.name == base) {
      const auto presets = available_model_presets(data_dir);
      if (std::find(presets.begin(), presets.end(), base) != presets.end()) return b;
      const DownloadableModel* download = find_downloadable(base);
      throw ConfigError("study.base", "the " + base + " base is not in " + (data_dir / "models").string() +
                                          (download ? "; fetch it with: lora-workbench fetch " + download->fetch_name
                                                    : std::string()));
    }
  std::string known;
  for (const std::string& b : study_bases(data_dir)) known += (known.empty() ? "" : ", ") + b;
  throw ConfigError("study.base", "unknown base \"" + base + "\"; available: " + known);
}

}  // namespace

const std::vector<StudyInfo>& study_list() {
  static const std::vector<StudyInfo> list = {
      {"lora-vs-full", "LoRA vs full fine-tuning",
       "LoRA trains a small fraction of the parameters, needs far less memory (no gradients or optimizer state for "
       "the frozen weights) and can match full fine-tuning's quality (Hu et al. 2021).",
       "LoRA r = 8 on all seven projections vs full fine-tuning, each at its own rate, over the seeds: trainable "
       "parameters, measured peak memory by category, tokens/s and final quality."},
      {"dora-vs-lora", "DoRA vs LoRA at equal trainable parameters",
       "DoRA (weight-decomposed LoRA) beats LoRA at the same trainable-parameter budget, and detaching the column "
       "norm from the gradient (Liu et al. 2024, §4.3) saves memory without hurting quality.",
       "LoRA r = 8 vs DoRA at the largest rank whose trainable parameters (with its magnitudes) do not exceed "
       "LoRA's, with the norm detached (PEFT's default) and with the gradient through it."},
      {"relora-rank", "ReLoRA's accumulated update rank",
       "ReLoRA's merges and restarts accumulate an update of higher rank than any single LoRA of the same rank "
       "(Lialin et al. 2023).",
       "ReLoRA r = 8 with a reset after every third of the run (every 100 steps on tiny, 66 on SmolLM2) vs LoRA "
       "r = 8: the numerical rank (singular values above 1e-4 of the largest) of each module's accumulated update "
       "after every reset, and final quality."},
      {"adalora-budget", "AdaLoRA vs fixed-rank LoRA at the same final budget",
       "AdaLoRA's importance-driven rank allocation does better than a fixed rank at the same final budget, "
       "by giving rank where it matters (Zhang et al. 2023).",
       "AdaLoRA from rank 12 pruned to an average of 8 vs LoRA r = 8: quality, and where AdaLoRA put the rank "
       "by module type and by layer."},
      {"lorahub", "LoRAHub composition vs its baselines",
       "Composing library adapters with weights searched on a few examples of an unseen task beats zero-shot and "
       "approaches training on those examples (Huang et al. 2023).",
       "The hub demo's nine task adapters composed for the held-out task count from 5 examples (COBYLA, 40 "
       "evaluations), vs zero-shot, vs the best single member, vs LoRA trained on the same 5 examples directly; "
       "each seed draws another 5 examples and held-out set."},
  };
  return list;
}

const StudyInfo& study_info(const std::string& name) {
  for (const StudyInfo& s : study_list())
    if (s.name == name) return s;
  std::string known;
  for (const StudyInfo& s : study_list()) known += (known.empty() ? "" : ", ") + s.name;
  throw ConfigError("study", "unknown study \"" + name + "\"; known: " + known);
}

std::vector<std::string> study_bases(const std::filesystem::path& data_dir) {
  std::vector<std::string> out;
  const auto presets = available_model_presets(data_dir);
  for (const BaseProfile& b : kBases)
    if (std::find(presets.begin(), presets.end(), b.name) != presets.end()) out.push_back(b.name);
  return out;
}

namespace study {

double Context::lora_lr() const { return base_profile(options.base, env.data_folder()).lora_lr; }
double Context::full_lr() const { return base_profile(options.base, env.data_folder()).full_lr; }

ExperimentConfig Context::lora(const std::string& label) const {
  const BaseProfile& b = base_profile(options.base, env.data_folder());
  ExperimentConfig c = experiment_preset("tiny-lora");
  c.name = "study-" + info.name + "-" + label;
  c.model.preset = b.name;
  c.data.task = "reverse";
  c.train.steps = b.steps;
  c.train.batch = b.batch;
  c.train.eval_every = 0;  // one evaluation, at the end
  c.optimizer.lr = b.lora_lr;
  for (const std::string& kv : options.sets) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw ConfigError("study.set", "expected key=value, got \"" + kv + "\"");
    c.set(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return c;
}

ExperimentConfig Context::full(const std::string& label) const {
  ExperimentConfig c = lora(label);
  c.adapter.method = "full";
  c.optimizer.lr = full_lr();
  return c;
}

ComparisonOptions Context::comparison() const {
  ComparisonOptions o;
  o.seeds = options.seeds;
  o.pick_lr = options.pick_lr;
  o.validate();
  return o;
}

ObserverChain::ObserverChain(std::vector<ComparisonObserver*> observers) {
  for (ComparisonObserver* o : observers)
    if (o) observers_.push_back(o);
}

TrainerSink* ObserverChain::run_sink(const ComparisonRunTag& tag, Trainer& trainer) {
  fanout_ = FanoutSink();
  for (ComparisonObserver* o : observers_)
    if (TrainerSink* s = o->run_sink(tag, trainer)) fanout_.add(s);
  return &fanout_;
}

void ObserverChain::run_ended(const ComparisonRunTag& tag, Trainer& trainer, const RunResult& r, ComparisonSample& s) {
  for (ComparisonObserver* o : observers_) o->run_ended(tag, trainer, r, s);
}

StoredComparison run_arms(Context& ctx, const std::string& description, std::vector<ComparisonEntry> arms,
                          ComparisonObserver* probe) {
  ComparisonDesign design;
  design.preset.name = ctx.info.name;
  design.preset.description = description + " (base " + ctx.options.base + ")";
  design.preset.entries = std::move(arms);
  design.options = ctx.comparison();
  ObserverChain chain({probe, ctx.progress});
  return run_stored_comparison(ctx.store, "study", design, ctx.env, ctx.control, &chain, false);
}

std::vector<std::uint64_t> seeds_of(const ComparisonSummary& s) {
  std::vector<std::uint64_t> seeds;
  for (const ArmSummary& a : s.arms)
    for (const ComparisonSample& x : a.seeds)
      if (std::find(seeds.begin(), seeds.end(), x.seed) == seeds.end()) seeds.push_back(x.seed);
  std::sort(seeds.begin(), seeds.end());
  return seeds;
}

Interval measure_interval(const ComparisonSummary& s, const ArmSummary& arm, const std::string& measure) {
  return mean_interval(measure_by_seed(arm, seeds_of(s), measure));
}

const ArmSummary& arm(const ComparisonSummary& s, const std::string& label) {
  for (const ArmSummary& a : s.arms)
    if (a.label == label) return a;
  throw Error("study: no arm \"" + label + "\" in " + s.design.preset.name);
}

namespace {

double half_or_nan(const Interval& i) { return i.has_spread() ? i.half_width() : NAN; }

constexpr const char* kCategoryTitles[] = {"frozen weights", "trainable weights", "activations", "gradients",
                                            "optimizer state", "workspace"};
static_assert(std::size(kCategoryTitles) == kMemCategoryCount);

}  // namespace

PlotSpec speed_plot(const ComparisonSummary& s, const std::string& file) {
  PlotSpec p{file, "Training throughput (mean, 95% CI over seeds)", "tokens/s", {}, {}, false};
  PlotSeries series{"tokens/s", {}, {}};
  for (const ArmSummary& a : s.arms) {
    p.categories.push_back(a.label);
    series.values.push_back(a.tokens_per_s.mean);
    series.errors.push_back(half_or_nan(a.tokens_per_s));
  }
  p.series.push_back(std::move(series));
  return p;
}

PlotSpec memory_plot(const ComparisonSummary& s, const std::string& file) {
  PlotSpec p{file, "Measured peak memory by category (ledger)", "MiB", {}, {}, true};
  for (const ArmSummary& a : s.arms) p.categories.push_back(a.label);
  for (int c = 0; c < kMemCategoryCount; ++c) {
    PlotSeries series{kCategoryTitles[c], {}, {}};
    for (const ArmSummary& a : s.arms)
      series.values.push_back(
          measure_interval(s, a, std::string("peak.") + mem_category_key(static_cast<MemCategory>(c))).mean /
          (1 << 20));
    p.series.push_back(std::move(series));
  }
  return p;
}

std::vector<std::vector<std::string>> memory_table(const ComparisonSummary& s) {
  std::vector<std::vector<std::string>> t = {{"arm"}};
  for (const char* title : kCategoryTitles) t[0].push_back(std::string(title) + " MiB");
  t[0].push_back("peak MiB");
  for (const ArmSummary& a : s.arms) {
    std::vector<std::string> row = {a.label};
    for (int c = 0; c < kMemCategoryCount; ++c) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.2f",
                    measure_interval(s, a, std::string("peak.") + mem_category_key(static_cast<MemCategory>(c))).mean /
                        (1 << 20));
      row.push_back(buf);
    }
    row.push_back(interval_text(a.peak_mib, 1, 2));
    t.push_back(std::move(row));
  }
  return t;
}

bool parse_module(const std::string& name, int& layer, std::string& type) {
  const std::string prefix = "model.layers.";
  if (name.rfind(prefix, 0) != 0) return false;
  std::size_t used = 0;
  try {
    layer = std::stoi(name.substr(prefix.size()), &used);
  } catch (const std::exception&) {
    return false;
  }
  const auto dot = name.rfind('.');
  if (dot == std::string::npos || dot < prefix.size() + used) return false;
  type = name.substr(dot + 1);
  return true;
}

}  // namespace study

PlotSpec quality_plot(const ComparisonSummary& s, const std::string& file) {
  PlotSpec p{file, "Exact match on the test split (mean, 95% CI over seeds)", "exact match %", {}, {}, false};
  PlotSeries series{"exact match", {}, {}};
  for (const ArmSummary& a : s.arms) {
    p.categories.push_back(a.label);
    series.values.push_back(100 * a.accuracy.mean);
    series.errors.push_back(100 * study::half_or_nan(a.accuracy));
  }
  p.series.push_back(std::move(series));
  return p;
}

StudyResult run_study(Store& store, const std::string& name, const StudyOptions& options, const TrainerEnvironment& env,
                      const RunControl& control, ComparisonObserver* progress) {
  const StudyInfo& info = study_info(name);
  base_profile(options.base, env.data_folder());
  study::Context ctx{store, options, env, control, progress, info};
  ctx.comparison();  // the options are checked before anything runs
  ctx.lora("check").validate();
  StudyResult r = name == "lora-vs-full"     ? study::lora_vs_full(ctx)
                  : name == "dora-vs-lora"   ? study::dora_vs_lora(ctx)
                  : name == "relora-rank"    ? study::relora_rank(ctx)
                  : name == "adalora-budget" ? study::adalora_budget(ctx)
                                             : study::lorahub(ctx);
  r.name = name;
  return r;
}

std::string finish_study(Store& store, const StudyResult& result, std::span<const ComparisonFile> files,
                         const std::string& no_plots) {
  const std::string markdown =
      result.report.markdown(files.empty() ? (no_plots.empty() ? std::string("no renderer") : no_plots) : "");
  store.finish_comparison(result.comparison_id, result.stopped ? "stopped" : "finished", markdown, files);
  return markdown;
}

}  // namespace lwb
