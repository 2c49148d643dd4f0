#pragma once
// What the Runs tab compares, apart from the widgets: a run's curves read
// from the store (a resumed run continued from the runs it resumed), any
// logged metric against step, relative or wall time, the hyperparameters
// that differ between runs, the command that reproduces a run, and a run as
// CSV or JSON.
#include <QDateTime>
#include <QString>
#include <QStringList>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/store/store.h"
#include "core/train/experiment_config.h"

namespace lwb::ui {

enum class RunMetric { TrainLoss, EvalLoss, ExactMatch, GradNorm, LearningRate, TokensPerS, Memory, kCount };
QString run_metric_name(RunMetric m);  // "train loss", "held-out loss", ...

enum class XAxis { Step, RelativeTime, WallTime };
QString x_axis_name(XAxis x);  // "step", "relative time (min)", "wall time"

struct RunData {
  RunRow row;
  ExperimentConfig config;
  std::string summary_json;
  // The curve: the runs it resumed first (each up to the step its child
  // resumed from), then its own steps from own_from_step on.
  std::vector<MetricRow> metrics;
  std::int64_t own_from_step = 0;
  std::vector<double> relative_s;  // per metrics row: seconds since the first run of the chain started
  std::vector<double> wall_s;      // per metrics row: seconds since the epoch
  std::vector<std::pair<std::int64_t, double>> ledger_bytes;  // step -> this run's buffers
  std::vector<std::int64_t> ancestry;                        // this run, its parent, ... newest first
};
RunData load_run_data(Store& store, std::int64_t run_id);

struct Series {
  std::vector<double> x, y;
};
Series run_series(const RunData& run, RunMetric metric, XAxis axis);
// TensorBoard's debiased exponential moving average (beta 0..0.999).
std::vector<double> smoothed(const std::vector<double>& values, double beta);

// The config keys whose values are not all equal across `configs` ("name"
// aside: the columns say whose is whose), in ExperimentConfig::keys() order,
// with each config's value. A method's own setting (AdaLoRA's target rank,
// or the rank of a full fine-tuning) has no value for a run it does not apply
// to, as the variant's descriptor says (AdapterField::applies): only the runs
// it applies to are compared, and a key that applies to none is left out.
struct HparamRow {
  std::string key;
  std::vector<std::optional<std::string>> values;  // nullopt: does not apply to that run
};
std::vector<HparamRow> differing_hparams(const std::vector<ExperimentConfig>& configs);

// "lora-workbench train --preset P --set k=v ...": the built-in preset
// nearest to the config, and a --set for every key that differs from it.
std::string reproduce_command(const ExperimentConfig& config);
// POSIX shell quoting, only where needed.
std::string shell_quote(const std::string& s);

// Every metric of the run (its own steps), one row per step.
QString run_csv(const RunData& run);
// The run's record: row, config, summary and metrics.
QString run_json(const RunData& run);

}  // namespace lwb::ui
