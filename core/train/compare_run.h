#pragma once
// Running a comparison so that its result can be trusted: every arm over
// several training seeds, optionally after picking each arm's learning rate
// from a small grid on a validation split, and a report of means with
// confidence intervals and paired differences instead of one number per arm.
//
// Why: one seed ranks methods by floating-point luck. On the tiny base,
// rsLoRA on `reverse` gave 3.5%, 27%, 78% and 43% exact match for training
// seeds 1-4, and one seed gave 10.5%, 73% or 3.5% on three OpenBLAS kernel
// sets (issue 19). Differences between arms are paired by seed (both arms
// see the same data order and the same data), which removes the variance
// the seed puts into both.
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/train/compare.h"
#include "core/train/compare_stats.h"
#include "core/train/report.h"
#include "core/train/run_environment.h"
#include "core/train/trainer.h"

namespace lwb {

inline constexpr int kMaxComparisonSeeds = 10;

struct ComparisonOptions {
  int seeds = 3;  // training seeds per arm, 1 .. kMaxComparisonSeeds
  std::uint64_t first_seed = 1;  // seeds first_seed, first_seed + 1, ...
  // Pick each arm's learning rate first: the arm's own rate times each
  // factor, pick_seeds runs each, scored on a validation split of
  // n_validation examples that is neither training data nor the test split.
  // The seed runs then train at the chosen rate on the same training data.
  bool pick_lr = false;
  std::vector<double> lr_factors = {1.0 / 3, 1.0, 3.0};
  int pick_seeds = 1;
  int n_validation = 200;
  // Throws ConfigError naming the option ("compare.seeds", ...).
  void validate() const;
};

// One run of a comparison: a learning-rate trial on the validation split
// ("lr-pick") or one training seed at the arm's rate, scored on the test
// split ("seed"). The store keeps these as its comparison_runs rows.
struct ComparisonSample {
  std::int64_t id = 0;                 // the store's row id (0 until stored)
  std::optional<std::int64_t> run_id;  // the run in the history, if recorded there
  std::string arm;
  std::string phase = "seed";
  std::uint64_t seed = 0;
  double lr = NAN;
  std::string status;  // run_status_name()
  double eval_loss = NAN, accuracy = NAN, tokens_per_s = NAN;
  std::int64_t peak_bytes = 0, trainable_params = 0;
  // Further numbers: "peak.<category>" bytes, "model_params", and whatever a
  // study measures ("rank.reset1", ...).
  std::map<std::string, double> measures;
  RunEnvironment environment;
};
// The store's measures_json column: {"measures": {...}, "environment": {...}}.
std::string sample_measures_json(const ComparisonSample& s);
// FormatError naming `source` for text that is not such an object.
void read_sample_measures(const std::string& text, const std::string& source, ComparisonSample& s);

// What a comparison is: its arms (the first is the reference the others are
// compared with) and how they are run. JSON for the store (design_json).
struct ComparisonDesign {
  ComparisonPreset preset;  // its entries are the arms
  ComparisonOptions options;
  std::string to_json() const;
  // FormatError naming `source`.
  static ComparisonDesign from_json(const std::string& text, const std::string& source);
};

// Where a run sits in a comparison, for progress and recording.
struct ComparisonRunTag {
  std::string arm;
  std::string phase;  // "lr-pick", "seed", or kMemberPhase
  std::uint64_t seed = 0;
  double lr = NAN;
  int index = 0, total = 0;  // 1-based position among all the comparison's runs
  std::string text() const;  // "dora seed 2 (lr 0.002) [5/18]"
};

// The phase of a run a study trains before its comparison's runs (the
// LoRAHub study's member adapters): its arm is the run's name, its index
// and total count the study's member runs.
inline constexpr const char* kMemberPhase = "member";

// Told about every run (the store glue, progress bars, a study's measurements).
class ComparisonObserver {
 public:
  virtual ~ComparisonObserver() = default;
  // A sink for the run's events, or nullptr. The trainer is prepared.
  virtual TrainerSink* run_sink(const ComparisonRunTag&, Trainer&) { return nullptr; }
  // After the run: `sample` holds its measurements and may be extended
  // (a study's own numbers) before the comparison keeps it.
  virtual void run_ended(const ComparisonRunTag&, Trainer&, const RunResult&, ComparisonSample&) {}
};

// The configs of one arm's runs: a learning-rate trial or a seed run.
ExperimentConfig pick_run_config(const ComparisonEntry& arm, const ComparisonOptions& o, double lr,
                                 std::uint64_t seed);
ExperimentConfig seed_run_config(const ComparisonEntry& arm, const ComparisonOptions& o, double lr,
                                 std::uint64_t seed);

// The grid's best rate from an arm's "lr-pick" samples: the highest mean
// validation exact match, ties (and data without exact match) by the lowest
// mean validation loss; a rate any of whose trials failed, diverged or
// stopped is never chosen. NaN when no rate qualifies (the arm then keeps its
// own rate).
double pick_learning_rate(std::span<const ComparisonSample> trials);

// Runs the learning-rate trials of every arm (if asked), then the seeds
// seed-major (every arm's first seed, then every arm's second...), so a
// stopped comparison has balanced arms. Returns every sample, in order; stops
// early (status "stopped" in the last sample) when control.stop is set.
// Configs are validated first (ConfigError).
std::vector<ComparisonSample> run_comparison(const ComparisonDesign& design, const TrainerEnvironment& env,
                                             const RunControl& control, ComparisonObserver* observer = nullptr);

// What the report says, computed from the samples alone (live or from the store).
struct LrTrialSummary {
  double lr = NAN;
  Interval accuracy, eval_loss;  // on the validation split
};
struct ArmSummary {
  std::string label, method;
  double lr = NAN;  // the rate of its seed runs
  std::string lr_note;
  std::vector<LrTrialSummary> grid;  // empty without a pick
  std::vector<ComparisonSample> seeds;  // "seed" samples, in seed order
  std::int64_t trainable_params = 0, model_params = 0;
  Interval accuracy, eval_loss, tokens_per_s, peak_mib;
};
struct ArmDifference {
  std::string arm, reference;
  Interval accuracy, eval_loss;  // arm − reference, paired by seed
};
struct ComparisonSummary {
  ComparisonDesign design;
  std::vector<ArmSummary> arms;
  std::vector<ArmDifference> differences;  // each arm against arms[0]
  std::vector<RunEnvironment> environments;  // the distinct ones its runs had
};
ComparisonSummary summarize_comparison(const ComparisonDesign& design, std::span<const ComparisonSample> samples);

// The arms' values of one measure over the seeds `seeds` (NaN where an arm
// has no run for a seed), for paired statistics.
std::vector<double> values_by_seed(const ArmSummary& arm, std::span<const std::uint64_t> seeds,
                                   double ComparisonSample::*field);
std::vector<double> measure_by_seed(const ArmSummary& arm, std::span<const std::uint64_t> seeds,
                                    const std::string& measure);

// The report as text (the CLI) and as markdown (stored reports): the table
// with mean ± 95% half-width per metric, each arm's paired difference with
// the reference and a verdict, the learning-rate grid and choices, and what
// the numbers depend on.
Report comparison_report(const ComparisonSummary& s);
std::string format_comparison_report(const ComparisonSummary& s);
std::string comparison_markdown(const ComparisonSummary& s);

}  // namespace lwb
