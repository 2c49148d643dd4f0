#pragma once
// The headless command line: `lora-workbench <command> [options]`.
#include <atomic>
#include <filesystem>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/train/compare_run.h"
#include "core/train/trainer.h"

namespace lwb::cli {

// Flags are "--name value" or "--name=value" (one-letter ones also "-n 3");
// repeated flags (like --set) keep every value. Unknown flags are refused by each command's check().
class Args {
 public:
  Args(int argc, char** argv, int first);
  bool has(const std::string& flag) const;
  std::string get(const std::string& flag, const std::string& fallback = "") const;
  std::vector<std::string> all(const std::string& flag) const;
  const std::vector<std::string>& positional() const { return positional_; }
  // Throws UsageError if a flag outside `known` (or a value-less flag that
  // needs a value) was given. A switch takes no value: a word read as its
  // value ("--special TEXT") goes back among the positional arguments.
  void check(const std::vector<std::string>& known, const std::vector<std::string>& switches = {}) const;

 private:
  struct Flag {
    std::string value;
    int value_at = -1;  // argv index of a separate value word
  };
  mutable std::multimap<std::string, Flag> flags_;
  mutable std::vector<std::pair<int, std::string>> positional_at_;  // by argv index
  mutable std::vector<std::string> positional_;
};

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// --db, else the store in --data-dir, else Store::default_path().
std::filesystem::path store_path(const Args& args);

// Shared by the commands ------------------------------------------------------
// Set by the first Ctrl-C once install_stop_handler() ran (the second one
// kills the program as usual); commands stop at their next safe point.
extern std::atomic<bool> g_stop;
void install_stop_handler();
std::string timestamp();  // "20261128-221500"
// --flag as a whole number in [lo, hi] (UsageError naming the range
// otherwise), or fallback when absent.
int int_arg(const Args& args, const std::string& flag, int fallback, int lo = 0,
            int hi = std::numeric_limits<int>::max());
// --flag as a number (UsageError otherwise), or fallback when absent.
double number_arg(const Args& args, const std::string& flag, double fallback);
// --data-dir, notices on stderr, and a sink for a base model pretrained on demand.
TrainerEnvironment environment(const Args& args, TrainerSink* pretrain_progress = nullptr);

// --seeds, --first-seed, --pick-lr, --lr-grid, --pick-seeds, --validation
// (ConfigError or UsageError naming the flag).
ComparisonOptions comparison_options(const Args& args);
// --set key=value applied to every arm.
void apply_sets(const Args& args, std::vector<ComparisonEntry>& arms);

// --preset NAME or --config FILE with the --set key=value overrides applied,
// validated (UsageError or ConfigError otherwise).
ExperimentConfig resolve_config(const Args& args);

int cmd_train(const Args& args);
int cmd_pretrain(const Args& args);
int cmd_presets(const Args& args);
int cmd_compare(const Args& args);
int cmd_study(const Args& args);
int cmd_runs(const Args& args);
int cmd_config(const Args& args);
int cmd_compose(const Args& args);
int cmd_plan(const Args& args);
int cmd_export(const Args& args);
int cmd_import(const Args& args);
int cmd_fetch(const Args& args);
int cmd_tokenize(const Args& args);
int cmd_template(const Args& args);
int cmd_data(const Args& args);
int cmd_generate(const Args& args);
int cmd_predict(const Args& args);

// Registers the CUDA backend with core when this build has one.
void register_gpu_backend();

}  // namespace lwb::cli
