#pragma once
// The library tools (core/compose/adapter_tools.h) run against the store:
// each loads its inputs, runs, and records a Derivation (inputs, parameters,
// report) so that every adapter it makes keeps its lineage; a new adapter is
// kept in the same transaction as its record. The window runs them in the
// background with progress; a cancelled job records nothing.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/compose/adapter_tools.h"
#include "core/store/store.h"
#include "core/train/trainer.h"

namespace lwb::compose {

struct JobControl {
  // The stage ("loading the base", "module 3 of 28", ...) and the fraction done.
  std::function<void(const std::string& stage, double fraction)> progress;
  const std::atomic<bool>* cancel = nullptr;
};

// Thrown when JobControl::cancel was set; nothing is recorded.
class JobCancelled : public Error {
 public:
  JobCancelled() : Error("cancelled; nothing was recorded") {}
};

// The adapters (library ids) at their ratios merged into the base they were
// trained on, written as a base checkpoint at `out` (a run can start from it:
// model.base = out) — refused when `out` exists unless `overwrite`.
Derivation merge_library_adapters(Store& store, const std::vector<std::pair<std::int64_t, double>>& adapters,
                                  const std::filesystem::path& out, bool overwrite, const TrainerEnvironment& env,
                                  const JobControl& control = {});

// The adapter re-factored at `rank`, kept as `name`.
Derivation resize_library_adapter(Store& store, std::int64_t adapter_id, int rank, const std::string& name,
                                  const JobControl& control = {});

// A LoRA of `rank` on `targets` from a full fine-tuning run whose weights the
// store keeps (Store::model_file), kept as `name` and owned by that run.
Derivation extract_library_lora(Store& store, std::int64_t run_id, int rank, const std::vector<Target>& targets,
                                const std::string& name, const TrainerEnvironment& env,
                                const JobControl& control = {});

// The adapter checked against a base (a preset, checkpoint or HF folder;
// empty: the built-in base it records). The report's "ok" says the verdict.
Derivation verify_library_adapter(Store& store, std::int64_t adapter_id, const std::string& base_spec,
                                  const TrainerEnvironment& env, const JobControl& control = {});

// "resize to r=4: 93.1% of the energy kept (worst module 81.0%)", ... — one
// line for the window and the CLI from a derivation's tool and report.
std::string describe_derivation(const Derivation& d);

}  // namespace lwb::compose
