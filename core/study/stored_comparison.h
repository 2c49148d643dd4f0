#pragma once
// A comparison recorded in the store as it runs: every run in the history
// (its curve, config and environment; no adapter is kept), every run's
// measurements as a comparison_runs row the moment it ends, and the report
// when the last one has. The CLI's `compare`, the window's Compare view and
// the studies all run comparisons through here, and read them back from the
// store the same way.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/store/store.h"
#include "core/train/compare_run.h"

namespace lwb {

struct StoredComparison {
  std::int64_t id = 0;  // the comparisons row
  std::vector<ComparisonSample> samples;
  ComparisonSummary summary;
  bool stopped = false;
};

// Runs `design` as comparison `kind` ("compare" or "study") named `name`;
// `extra` (may be null) sees every run too (progress, a study's own
// measurements, which reach the store with the row). A comparison that
// throws is recorded as failed with the message, then the error propagates.
// The report's markdown is comparison_markdown(); a study replaces it with
// its own through Store::finish_comparison.
StoredComparison run_stored_comparison(Store& store, const std::string& kind, const ComparisonDesign& design,
                                       const TrainerEnvironment& env, const RunControl& control,
                                       ComparisonObserver* extra = nullptr, bool finish = true);

// The summary of a stored comparison from its design and rows (a running or
// killed one gives the runs it has).
ComparisonSummary load_comparison_summary(Store& store, std::int64_t comparison_id);

}  // namespace lwb
