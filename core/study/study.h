#pragma once
// Built-in studies: the claims this workbench's papers make, each as a fixed
// design run over several seeds whose report (markdown and plots) is stored
// with its runs. `lora-workbench study NAME` and the window's Studies view
// run them.
//
// The report's data comes from here; the plots are described as PlotSpecs
// and drawn by a Qt layer (ui/report_plot.h), so core stays free of Qt. A
// study runs on a base given by name: the built-in tiny model, and
// SmolLM2-135M-Instruct once it is fetched (lora-workbench fetch smollm2).
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "core/store/store.h"
#include "core/study/stored_comparison.h"
#include "core/train/compare_run.h"
#include "core/train/report.h"

namespace lwb {

// One bar group per category; `errors` are 95% half-widths (NaN: none).
struct PlotSeries {
  std::string name;
  std::vector<double> values, errors;
};
struct PlotSpec {
  std::string file;  // "quality.png"
  std::string title, y_label;
  std::vector<std::string> categories;
  std::vector<PlotSeries> series;  // grouped side by side, or stacked
  bool stacked = false;
};

// Exact match per arm of a comparison with 95% error bars (the Compare view
// and every study's report draw it).
PlotSpec quality_plot(const ComparisonSummary& s, const std::string& file = "quality.png");

struct StudyInfo {
  std::string name, title;
  std::string claim;   // what the paper says
  std::string design;  // what the study runs to check it
};
const std::vector<StudyInfo>& study_list();
// ConfigError("study", ...) naming the known studies.
const StudyInfo& study_info(const std::string& name);

struct StudyOptions {
  std::string base = "tiny";  // a name from study_bases()
  int seeds = 3;              // training seeds per arm (1 .. kMaxComparisonSeeds)
  bool pick_lr = false;       // pick each arm's learning rate on a validation split first
  // "key=value" applied to every training run's config (a shorter
  // train.steps for a quick look; the report lists them).
  std::vector<std::string> sets;
};

// The bases a study can run on with `data_dir`'s models: "tiny", and
// "smollm2-135m" once its file is there.
std::vector<std::string> study_bases(const std::filesystem::path& data_dir);

struct StudyResult {
  std::string name;
  std::int64_t comparison_id = 0;
  bool stopped = false;
  Report report;  // with image blocks naming the plots' files
  std::vector<PlotSpec> plots;
  std::vector<std::string> key_numbers;  // the headline results, one line each
};

// Runs the study, recording its runs and rows in the store as it goes.
// ConfigError for an unknown study, base or option; errors of a run
// propagate after the study is recorded as failed.
StudyResult run_study(Store& store, const std::string& name, const StudyOptions& options,
                      const TrainerEnvironment& env, const RunControl& control,
                      ComparisonObserver* progress = nullptr);

// Stores the report with its plots rendered as PNG files (one per
// PlotSpec::file) and marks the study finished or stopped. Without files
// the markdown says why there are no plots (`no_plots`). Returns the
// markdown stored.
std::string finish_study(Store& store, const StudyResult& result, std::span<const ComparisonFile> files,
                         const std::string& no_plots = "");

}  // namespace lwb
