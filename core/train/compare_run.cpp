#include "core/train/compare_run.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/common/errors.h"

namespace lwb {

namespace {

using json = nlohmann::json;

constexpr const char* kPick = "lr-pick";
constexpr const char* kSeed = "seed";

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

// Records what a run reports about itself before passing it on.
struct InfoSink : TrainerSink {
  TrainerSink* next;
  RunInfo info;
  explicit InfoSink(TrainerSink* n) : next(n) {}
  void on_start(const RunInfo& i) override {
    info = i;
    if (next) next->on_start(i);
  }
  void on_step(const StepEvent& e) override {
    if (next) next->on_step(e);
  }
  void on_finish(const RunResult& r) override {
    if (next) next->on_finish(r);
  }
};

// Whether a sample is a measurement: stopped and failed runs stay in the
// store but say nothing about the method.
bool counts(const ComparisonSample& s) { return s.status == "finished" || s.status == "diverged"; }

std::string lr_text(double lr) { return fmt("%.3g", lr); }

json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

}  // namespace

void ComparisonOptions::validate() const {
  if (seeds < 1 || seeds > kMaxComparisonSeeds)
    throw ConfigError("compare.seeds", "expected 1 to " + std::to_string(kMaxComparisonSeeds) + " seeds, got " +
                                           std::to_string(seeds));
  if (!pick_lr) return;
  if (lr_factors.size() < 2 || lr_factors.size() > 6)
    throw ConfigError("compare.lr_grid", "expected 2 to 6 learning-rate factors, got " +
                                             std::to_string(lr_factors.size()));
  for (double f : lr_factors)
    if (!(f > 0) || !std::isfinite(f))
      throw ConfigError("compare.lr_grid", "every learning-rate factor must be positive, got " + fmt("%g", f));
  if (std::set<double>(lr_factors.begin(), lr_factors.end()).size() != lr_factors.size())
    throw ConfigError("compare.lr_grid", "the learning-rate factors must differ");
  if (pick_seeds < 1 || pick_seeds > kMaxComparisonSeeds)
    throw ConfigError("compare.pick_seeds", "expected 1 to " + std::to_string(kMaxComparisonSeeds) + ", got " +
                                                std::to_string(pick_seeds));
  if (n_validation < 1)
    throw ConfigError("compare.n_validation", "picking a learning rate needs a validation split (at least 1 example)");
}

std::string sample_measures_json(const ComparisonSample& s) {
  json m = json::object();
  for (const auto& [k, v] : s.measures) m[k] = number(v);
  return json{{"measures", m}, {"environment", json::parse(environment_to_json(s.environment))}}.dump();
}

void read_sample_measures(const std::string& text, const std::string& source, ComparisonSample& s) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond double's range
    throw FormatError(source, std::string("the run's measures are not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw FormatError(source, "the run's measures are not a JSON object");
  s.measures.clear();
  if (j.contains("measures") && j["measures"].is_object())
    for (const auto& [k, v] : j["measures"].items()) s.measures[k] = v.is_number() ? v.get<double>() : NAN;
  if (j.contains("environment")) s.environment = environment_from_json(j["environment"].dump(), source);
}

std::string ComparisonDesign::to_json() const {
  json arms = json::array();
  for (const ComparisonEntry& e : preset.entries)
    arms.push_back({{"label", e.label},
                    {"lr_note", e.lr_note},
                    {"what", e.what},
                    {"config", json::parse(e.config.to_json(-1))}});
  const ComparisonOptions& o = options;
  return json{{"name", preset.name},
              {"description", preset.description},
              {"arms", arms},
              {"options",
               {{"seeds", o.seeds},
                {"first_seed", o.first_seed},
                {"pick_lr", o.pick_lr},
                {"lr_factors", o.lr_factors},
                {"pick_seeds", o.pick_seeds},
                {"n_validation", o.n_validation}}}}
      .dump();
}

ComparisonDesign ComparisonDesign::from_json(const std::string& text, const std::string& source) {
  try {
    const json j = json::parse(text);
    ComparisonDesign d;
    d.preset.name = j.at("name").get<std::string>();
    d.preset.description = j.at("description").get<std::string>();
    for (const json& a : j.at("arms"))
      d.preset.entries.push_back({a.at("label").get<std::string>(),
                                  ExperimentConfig::from_json(a.at("config").dump(), source),
                                  a.at("lr_note").get<std::string>(), a.value("what", std::string())});
    const json& o = j.at("options");
    d.options.seeds = o.at("seeds").get<int>();
    d.options.first_seed = o.at("first_seed").get<std::uint64_t>();
    d.options.pick_lr = o.at("pick_lr").get<bool>();
    d.options.lr_factors = o.at("lr_factors").get<std::vector<double>>();
    d.options.pick_seeds = o.at("pick_seeds").get<int>();
    d.options.n_validation = o.at("n_validation").get<int>();
    return d;
  } catch (const json::exception& e) {
    throw FormatError(source, std::string("not a comparison design: ") + e.what());
  }
}

std::string ComparisonRunTag::text() const {
  if (phase == kMemberPhase)
    return "member " + arm + " (lr " + lr_text(lr) + ") [" + std::to_string(index) + "/" + std::to_string(total) + "]";
  return arm + (phase == kPick ? " lr trial " : " seed ") + std::to_string(seed) + " (lr " + lr_text(lr) + ") [" +
         std::to_string(index) + "/" + std::to_string(total) + "]";
}

ExperimentConfig pick_run_config(const ComparisonEntry& arm, const ComparisonOptions& o, double lr, std::uint64_t seed) {
  ExperimentConfig c = arm.config;
  c.name = arm.config.name + "-lr" + lr_text(lr) + "-seed" + std::to_string(seed);
  c.optimizer.lr = lr;
  c.train.seed = seed;
  c.data.n_validation = o.n_validation;
  c.train.eval_split = "validation";
  return c;
}

ExperimentConfig seed_run_config(const ComparisonEntry& arm, const ComparisonOptions& o, double lr, std::uint64_t seed) {
  ExperimentConfig c = arm.config;
  c.name = arm.config.name + "-seed" + std::to_string(seed);
  c.optimizer.lr = lr;
  c.train.seed = seed;
  // The same training data as the learning-rate trials: the validation
  // split is taken out of it (files) or beside it (tasks) in both.
  if (o.pick_lr) c.data.n_validation = o.n_validation;
  c.train.eval_split = "test";
  return c;
}

double pick_learning_rate(std::span<const ComparisonSample> trials) {
  struct Score {
    double lr, accuracy = 0, loss = 0;
    int n = 0, scored = 0;
  };
  std::vector<Score> by_lr;
  for (const ComparisonSample& s : trials) {
    auto it = std::find_if(by_lr.begin(), by_lr.end(), [&](const Score& x) { return x.lr == s.lr; });
    if (it == by_lr.end()) it = by_lr.insert(by_lr.end(), Score{s.lr});
    ++it->n;
    if (!counts(s) || !std::isfinite(s.eval_loss)) continue;  // a failed trial scores nothing
    ++it->scored;
    it->accuracy += std::isfinite(s.accuracy) ? s.accuracy : 0;
    it->loss += s.eval_loss;
  }
  const Score* best = nullptr;
  double best_acc = 0, best_loss = 0;
  for (const Score& x : by_lr) {
    // Every trial of a rate must have finished for it to be chosen.
    if (x.scored == 0 || x.scored < x.n) continue;
    const double acc = x.accuracy / x.scored, loss = x.loss / x.scored;
    if (!best || acc > best_acc || (acc == best_acc && loss < best_loss)) {
      best = &x;
      best_acc = acc;
      best_loss = loss;
    }
  }
  return best ? best->lr : NAN;
}

namespace {

ComparisonSample make_sample(const ComparisonRunTag& tag, const RunInfo& info, const RunResult& r) {
  ComparisonSample s;
  s.arm = tag.arm;
  s.phase = tag.phase;
  s.seed = tag.seed;
  s.lr = tag.lr;
  s.status = run_status_name(r.status);
  s.eval_loss = r.final_eval.loss;
  s.accuracy = r.final_eval.accuracy;
  s.tokens_per_s = r.tokens_per_s;
  s.peak_bytes = static_cast<std::int64_t>(r.memory.peak_total);
  s.trainable_params = info.trainable_params;
  s.measures["model_params"] = static_cast<double>(info.model_params);
  for (int c = 0; c < kMemCategoryCount; ++c)
    s.measures[std::string("peak.") + mem_category_key(static_cast<MemCategory>(c))] =
        static_cast<double>(r.memory.peak[c]);
  s.environment = info.environment;
  return s;
}

}  // namespace

std::vector<ComparisonSample> run_comparison(const ComparisonDesign& design, const TrainerEnvironment& env,
                                             const RunControl& control, ComparisonObserver* observer) {
  const ComparisonOptions& o = design.options;
  const auto& arms = design.preset.entries;
  o.validate();
  if (arms.empty()) throw ConfigError("compare", "a comparison needs at least one arm");
  for (const ComparisonEntry& a : arms) {
    seed_run_config(a, o, a.config.optimizer.lr, o.first_seed).validate();
    if (o.pick_lr) pick_run_config(a, o, a.config.optimizer.lr, o.first_seed).validate();
  }
  const int total = static_cast<int>(arms.size()) *
                    (o.seeds + (o.pick_lr ? static_cast<int>(o.lr_factors.size()) * o.pick_seeds : 0));
  std::vector<ComparisonSample> samples;
  int index = 0;
  auto stopped = [&] { return control.stop && control.stop->load(); };
  // Trains one run; false when it was stopped.
  auto run_one = [&](const ComparisonEntry& arm, const char* phase, std::uint64_t seed, double lr,
                     const ExperimentConfig& config) {
    const ComparisonRunTag tag{arm.label, phase, seed, lr, ++index, total};
    Trainer trainer(config, env);
    trainer.prepare(control);
    InfoSink info(observer ? observer->run_sink(tag, trainer) : nullptr);
    const RunResult r = trainer.run(info, control);
    ComparisonSample s = make_sample(tag, info.info, r);
    if (observer) observer->run_ended(tag, trainer, r, s);
    samples.push_back(std::move(s));
    return r.status != RunStatus::Stopped;
  };

  std::vector<double> rate(arms.size());
  for (std::size_t a = 0; a < arms.size(); ++a) {
    rate[a] = arms[a].config.optimizer.lr;
    if (!o.pick_lr) continue;
    const std::size_t first = samples.size();
    for (double f : o.lr_factors)
      for (int k = 0; k < o.pick_seeds; ++k) {
        if (stopped()) return samples;
        const double lr = rate[a] * f;
        const std::uint64_t seed = o.first_seed + static_cast<std::uint64_t>(k);
        if (!run_one(arms[a], kPick, seed, lr, pick_run_config(arms[a], o, lr, seed))) return samples;
      }
    // Only the trials on the validation split decide; no trial finished: the arm keeps its rate.
    const double chosen = pick_learning_rate(std::span(samples).subspan(first));
    if (std::isfinite(chosen)) rate[a] = chosen;
  }
  for (int k = 0; k < o.seeds; ++k)
    for (std::size_t a = 0; a < arms.size(); ++a) {
      if (stopped()) return samples;
      const std::uint64_t seed = o.first_seed + static_cast<std::uint64_t>(k);
      if (!run_one(arms[a], kSeed, seed, rate[a], seed_run_config(arms[a], o, rate[a], seed))) return samples;
    }
  return samples;
}

std::vector<double> values_by_seed(const ArmSummary& arm, std::span<const std::uint64_t> seeds,
                                   double ComparisonSample::*field) {
  std::vector<double> v(seeds.size(), NAN);
  for (std::size_t i = 0; i < seeds.size(); ++i)
    for (const ComparisonSample& s : arm.seeds)
      if (s.seed == seeds[i] && counts(s)) v[i] = s.*field;
  return v;
}

std::vector<double> measure_by_seed(const ArmSummary& arm, std::span<const std::uint64_t> seeds,
                                    const std::string& measure) {
  std::vector<double> v(seeds.size(), NAN);
  for (std::size_t i = 0; i < seeds.size(); ++i)
    for (const ComparisonSample& s : arm.seeds)
      if (s.seed == seeds[i] && counts(s))
        if (const auto it = s.measures.find(measure); it != s.measures.end()) v[i] = it->second;
  return v;
}

ComparisonSummary summarize_comparison(const ComparisonDesign& design, std::span<const ComparisonSample> samples) {
  ComparisonSummary out;
  out.design = design;
  std::set<std::string> seen_env;
  for (const ComparisonSample& s : samples)
    if (!s.environment.device.empty() && seen_env.insert(environment_to_json(s.environment)).second)
      out.environments.push_back(s.environment);
  std::vector<std::uint64_t> seeds;
  for (const ComparisonEntry& e : design.preset.entries) {
    ArmSummary a;
    a.label = e.label;
    a.method = e.what.empty() ? e.config.get("adapter.method") : e.what;
    a.lr = e.config.optimizer.lr;
    a.lr_note = e.lr_note;
    for (const ComparisonSample& s : samples) {
      if (s.arm != e.label) continue;
      if (s.phase == kSeed) {
        a.seeds.push_back(s);
        a.lr = s.lr;
      }
      if (s.trainable_params > 0) a.trainable_params = s.trainable_params;
      if (const auto it = s.measures.find("model_params"); it != s.measures.end() && std::isfinite(it->second))
        a.model_params = static_cast<std::int64_t>(it->second);
    }
    std::sort(a.seeds.begin(), a.seeds.end(), [](const auto& x, const auto& y) { return x.seed < y.seed; });
    for (const ComparisonSample& s : samples) {
      if (s.arm != e.label || s.phase != kPick) continue;
      if (std::none_of(a.grid.begin(), a.grid.end(), [&](const LrTrialSummary& t) { return t.lr == s.lr; }))
        a.grid.push_back(LrTrialSummary{s.lr, {}, {}});
    }
    for (LrTrialSummary& t : a.grid) {
      std::vector<double> acc, loss;
      for (const ComparisonSample& s : samples)
        if (s.arm == e.label && s.phase == kPick && s.lr == t.lr) {
          acc.push_back(counts(s) ? s.accuracy : NAN);
          loss.push_back(counts(s) ? s.eval_loss : NAN);
        }
      t.accuracy = mean_interval(acc);
      t.eval_loss = mean_interval(loss);
    }
    for (const ComparisonSample& s : a.seeds)
      if (std::find(seeds.begin(), seeds.end(), s.seed) == seeds.end()) seeds.push_back(s.seed);
    out.arms.push_back(std::move(a));
  }
  std::sort(seeds.begin(), seeds.end());
  for (ArmSummary& a : out.arms) {
    a.accuracy = mean_interval(values_by_seed(a, seeds, &ComparisonSample::accuracy));
    a.eval_loss = mean_interval(values_by_seed(a, seeds, &ComparisonSample::eval_loss));
    a.tokens_per_s = mean_interval(values_by_seed(a, seeds, &ComparisonSample::tokens_per_s));
    std::vector<double> mib(seeds.size(), NAN);
    for (std::size_t i = 0; i < seeds.size(); ++i)
      for (const ComparisonSample& s : a.seeds)
        // No peak (an arm that trains nothing, as a study's baselines) is "-", not 0 MiB.
        if (s.seed == seeds[i] && counts(s) && s.peak_bytes > 0) mib[i] = static_cast<double>(s.peak_bytes) / (1 << 20);
    a.peak_mib = mean_interval(mib);
  }
  for (std::size_t i = 1; i < out.arms.size(); ++i) {
    const ArmSummary &ref = out.arms[0], &arm = out.arms[i];
    out.differences.push_back(
        {arm.label, ref.label,
         paired_difference(values_by_seed(ref, seeds, &ComparisonSample::accuracy),
                           values_by_seed(arm, seeds, &ComparisonSample::accuracy)),
         paired_difference(values_by_seed(ref, seeds, &ComparisonSample::eval_loss),
                           values_by_seed(arm, seeds, &ComparisonSample::eval_loss))});
  }
  return out;
}

Report comparison_report(const ComparisonSummary& s) {
  const ComparisonOptions& o = s.design.options;
  Report r;
  r.heading(s.design.preset.name + ": " + s.design.preset.description);
  std::string seeds_text;
  for (int k = 0; k < o.seeds; ++k) seeds_text += (k ? ", " : "") + std::to_string(o.first_seed + k);
  r.paragraph(std::to_string(o.seeds) + " training seed(s) per arm (" + seeds_text +
              "); each cell is the mean over the seeds ± the half-width of its 95% confidence interval (Student t, "
              "n − 1 degrees of freedom); n counts the runs that finished or diverged (failed and stopped runs "
              "are kept in the store but not counted).");
  std::vector<std::vector<std::string>> table = {
      {"arm", "method", "lr", "n", "exact match %", "eval loss", "tokens/s", "peak MiB", "trainable", "% of model"}};
  for (const ArmSummary& a : s.arms)
    table.push_back({a.label, a.method, lr_text(a.lr), std::to_string(a.accuracy.n), interval_text(a.accuracy, 100, 1),
                     interval_text(a.eval_loss, 1, 4), interval_text(a.tokens_per_s, 1, 0),
                     interval_text(a.peak_mib, 1, 1), std::to_string(a.trainable_params),
                     a.model_params > 0 ? fmt("%.3f", 100.0 * a.trainable_params / a.model_params) : "-"});
  r.table(std::move(table));

  std::vector<std::vector<std::string>> per_seed = {{"arm"}};
  std::vector<std::uint64_t> seeds;
  for (const ArmSummary& a : s.arms)
    for (const ComparisonSample& x : a.seeds)
      if (std::find(seeds.begin(), seeds.end(), x.seed) == seeds.end()) seeds.push_back(x.seed);
  std::sort(seeds.begin(), seeds.end());
  for (std::uint64_t seed : seeds) per_seed[0].push_back("seed " + std::to_string(seed));
  for (const ArmSummary& a : s.arms) {
    std::vector<std::string> row = {a.label};
    for (std::uint64_t seed : seeds) {
      std::string cell = "-";
      for (const ComparisonSample& x : a.seeds)
        if (x.seed == seed)
          cell = counts(x) ? fmt("%.1f%%", 100 * x.accuracy) + (x.status == "diverged" ? " (diverged)" : "")
                           : x.status;
      row.push_back(cell);
    }
    per_seed.push_back(std::move(row));
  }
  if (!seeds.empty()) {
    r.paragraph("Exact match of every seed run (the rows the means are computed from):");
    r.table(std::move(per_seed));
  }

  if (!s.differences.empty()) {
    std::vector<std::string> lines;
    for (const ArmDifference& d : s.differences) {
      lines.push_back(difference_verdict(d.arm, d.reference, d.accuracy, "points exact match", 100, 1));
      lines.push_back(difference_verdict(d.arm, d.reference, d.eval_loss, "eval loss", 1, 4));
    }
    r.paragraph("Differences with " + s.arms[0].label +
                ", paired by seed (the same seed gives both arms the same data order), mean ± 95% half-width:");
    r.bullets(std::move(lines));
  }

  if (o.pick_lr) {
    std::string factors;
    for (double f : o.lr_factors) factors += (factors.empty() ? "" : ", ") + fmt("%.3g", f);
    r.paragraph("Learning rates: each arm's own rate times " + factors + ", " + std::to_string(o.pick_seeds) +
                " run(s) each, scored on a validation split of " + std::to_string(o.n_validation) +
                " examples that is neither training data nor the test split (the trials never load the test "
                "split); the rate with the best validation exact match (then loss) was used for the seeds:");
    std::vector<std::string> lines;
    for (const ArmSummary& a : s.arms) {
      std::string line = a.label + ":";
      for (const LrTrialSummary& t : a.grid) {
        // One trial per rate is the usual pick: its score, without the "no interval" note.
        const std::string score = t.accuracy.n == 0        ? std::string("failed")
                                  : t.accuracy.has_spread() ? interval_text(t.accuracy, 100, 1, false, "%")
                                                            : fmt("%.1f%%", 100 * t.accuracy.mean);
        // The loss too: it breaks ties in exact match, which are common early in training.
        const std::string loss = t.eval_loss.n == 0 ? std::string() : fmt(", loss %.4f", t.eval_loss.mean);
        // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on " " + std::string&&.
        line += ' ';
        line += lr_text(t.lr);
        line += " → " + score + loss;
        line += t.lr == a.lr ? " (chosen);" : ";";
      }
      if (std::none_of(a.grid.begin(), a.grid.end(), [&](const LrTrialSummary& t) { return t.lr == a.lr; }))
        line += " no trial finished, kept " + lr_text(a.lr) + ";";
      line.pop_back();
      lines.push_back(line);
    }
    r.bullets(std::move(lines));
  } else {
    r.paragraph("Learning rates: each arm's default, not tuned here (a comparison can pick them on a validation "
                "split first):");
    std::vector<std::string> lines;
    for (const ArmSummary& a : s.arms) lines.push_back(a.label + " " + lr_text(a.lr) + ": " + a.lr_note);
    r.bullets(std::move(lines));
  }

  std::string env;
  for (const RunEnvironment& e : s.environments)
    env += (env.empty() ? "" : "; ") + e.device + ", OpenBLAS " + e.blas_core + ", " + std::to_string(e.threads) +
           " thread(s), CPU " + e.cpu + ", " + e.compiler + " " + e.flags + ", " + e.git;
  r.paragraph("What the numbers depend on: " + (env.empty() ? std::string("not recorded") : env) +
              (s.environments.size() > 1 ? " (the runs did not all run alike)" : "") +
              ". A different CPU (other BLAS kernels), thread count or build changes single-seed outcomes, "
              "sometimes by tens of points of exact match: read the intervals, not single runs.");
  return r;
}

std::string format_comparison_report(const ComparisonSummary& s) { return comparison_report(s).text(); }
std::string comparison_markdown(const ComparisonSummary& s) { return comparison_report(s).markdown(); }

}  // namespace lwb
