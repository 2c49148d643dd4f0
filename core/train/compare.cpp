#include "core/train/compare.h"

#include <cmath>
#include <cstdio>

#include "core/adapters/descriptor.h"
#include "core/common/errors.h"

namespace lwb {

namespace {

// Records what a run reports about itself.
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

std::string mib(std::size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

}  // namespace

ComparisonPreset comparison_preset(const std::string& name) {
  if (name != "tiny-methods")
    throw ConfigError("preset", "unknown comparison preset \"" + name + "\"; known: tiny-methods");
  ComparisonPreset p;
  p.name = name;
  ExperimentConfig base = experiment_preset("tiny-lora");
  base.data.task = "reverse";
  base.train.steps = 300;
  base.train.eval_every = 100;
  // One arm per method, as each variant's descriptor sets it up (adapters
  // at matched trainable-parameter budgets); full fine-tuning last.
  std::vector<ComparisonArm> arms;
  for (const VariantDescriptor* v : variants())
    if (v->is_adapter) arms.insert(arms.end(), v->compare_arms.begin(), v->compare_arms.end());
  for (const VariantDescriptor* v : variants())
    if (!v->is_adapter) arms.insert(arms.end(), v->compare_arms.begin(), v->compare_arms.end());
  std::string list;
  for (const ComparisonArm& arm : arms) {
    ExperimentConfig c = base;
    c.name = name + "-" + arm.label;
    for (const auto& [key, value] : arm.settings) c.set(key, value);
    p.entries.push_back({arm.label, c});
    list += (list.empty() ? "" : " vs ") + arm.description;
  }
  p.description = "tiny base, task reverse, 300 steps: " + list + "; adapters on all seven targets";
  return p;
}

std::vector<std::string> comparison_preset_names() { return {"tiny-methods"}; }

std::vector<ComparisonRow> run_comparison(const ComparisonPreset& preset, const TrainerEnvironment& env,
                                          const RunControl& control,
                                          const std::function<TrainerSink*(const ComparisonEntry&)>& progress) {
  std::vector<ComparisonRow> rows;
  for (const ComparisonEntry& e : preset.entries) {
    if (control.stop && control.stop->load()) break;
    Trainer trainer(e.config, env);
    InfoSink sink(progress ? progress(e) : nullptr);
    ComparisonRow row;
    row.label = e.label;
    row.method = e.config.get("adapter.method");
    row.result = trainer.run(sink, control);
    row.trainable_params = sink.info.trainable_params;
    row.model_params = sink.info.model_params;
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string format_comparison_table(const std::vector<ComparisonRow>& rows) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof(line), "%-8s %-8s %9s %9s %11s %8s %10s %8s %8s %8s %8s %8s %9s\n", "run", "status",
                "eval loss", "exact %", "trainable", "% model", "tokens/s", "frozen", "train", "activ", "grads",
                "optim", "peak MiB");
  out += line;
  for (const ComparisonRow& r : rows) {
    const CategoryBytes& p = r.result.memory.peak;
    std::snprintf(line, sizeof(line), "%-8s %-8s %9.4f %9.1f %11lld %8.3f %10.0f %8s %8s %8s %8s %8s %9s\n",
                  r.label.c_str(), run_status_name(r.result.status), r.result.final_eval.loss,
                  std::isfinite(r.result.final_eval.accuracy) ? 100 * r.result.final_eval.accuracy : NAN,
                  static_cast<long long>(r.trainable_params),
                  100.0 * r.trainable_params / std::max<std::int64_t>(1, r.model_params), r.result.tokens_per_s,
                  mib(p[0]).c_str(), mib(p[1]).c_str(), mib(p[2]).c_str(), mib(p[3]).c_str(), mib(p[4]).c_str(),
                  mib(r.result.memory.peak_total).c_str());
    out += line;
  }
  out += "memory columns: peak MiB per category (frozen weights, trainable weights, activations, gradients, "
         "optimizer state); peak MiB: all categories incl. workspace\n";
  return out;
}

}  // namespace lwb
