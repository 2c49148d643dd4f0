#pragma once
// What the built-in studies share (core/study/study.h): the base's configs,
// running a study's comparison with the study's own probes, and the plots and
// tables most reports draw.
#include <functional>
#include <string>
#include <vector>

#include "core/study/study.h"

namespace lwb::study {

struct Context {
  Store& store;
  const StudyOptions& options;
  const TrainerEnvironment& env;
  const RunControl& control;
  ComparisonObserver* progress;
  const StudyInfo& info;

  // On the chosen base, task reverse: LoRA r = 8 on all seven targets at
  // the base's LoRA rate, and full fine-tuning at its full rate; named
  // "study-<study>-<label>", with the study's --set edits applied.
  ExperimentConfig lora(const std::string& label) const;
  ExperimentConfig full(const std::string& label) const;
  ComparisonOptions comparison() const;
  double lora_lr() const;
  double full_lr() const;
};

// Calls every observer in turn; their sinks all get the run's events.
class ObserverChain : public ComparisonObserver {
 public:
  explicit ObserverChain(std::vector<ComparisonObserver*> observers);
  TrainerSink* run_sink(const ComparisonRunTag& tag, Trainer& trainer) override;
  void run_ended(const ComparisonRunTag& tag, Trainer& trainer, const RunResult& r, ComparisonSample& s) override;

 private:
  std::vector<ComparisonObserver*> observers_;
  FanoutSink fanout_;
};

// The study's comparison, recorded in the store as kind "study" (left
// running: run_study finishes it with the report), `probe` measuring what
// the study is about.
StoredComparison run_arms(Context& ctx, const std::string& description, std::vector<ComparisonEntry> arms,
                          ComparisonObserver* probe = nullptr);

// The seeds the summary's arms ran, in order.
std::vector<std::uint64_t> seeds_of(const ComparisonSummary& s);
// A measure of one arm over the seeds, as an interval, times `scale`.
Interval measure_interval(const ComparisonSummary& s, const ArmSummary& arm, const std::string& measure);
const ArmSummary& arm(const ComparisonSummary& s, const std::string& label);

// Peak memory per arm stacked by category (MiB); tokens/s per arm with
// error bars.
PlotSpec memory_plot(const ComparisonSummary& s, const std::string& file = "memory.png");
PlotSpec speed_plot(const ComparisonSummary& s, const std::string& file = "speed.png");
// Peak MiB by category per arm (the means; memory does not vary by seed).
std::vector<std::vector<std::string>> memory_table(const ComparisonSummary& s);

// "model.layers.3.self_attn.q_proj" -> layer 3, "q_proj"; false for other names.
bool parse_module(const std::string& name, int& layer, std::string& type);

// The studies.
StudyResult lora_vs_full(Context& ctx);
StudyResult dora_vs_lora(Context& ctx);
StudyResult relora_rank(Context& ctx);
StudyResult adalora_budget(Context& ctx);
StudyResult lorahub(Context& ctx);

}  // namespace lwb::study
