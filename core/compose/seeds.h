#pragma once
// A composition searched and evaluated over several seeds, as LoRAHub's own
// results are reported (the mean of several runs): which few examples the
// search sees moves its result more than anything else, so one run says
// little. Seed k (0-based) draws its few-shot and held-out examples with
// data_seed + k and starts the search with seed + k; the first seed is
// exactly the single run. The statistics are the comparisons' own
// (core/train/compare_stats.h): mean, sd and Student-t 95% interval per row,
// and paired differences, since every row of one seed is scored on the same
// held-out examples.
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "core/compose/session.h"
#include "core/train/compare_stats.h"

namespace lwb::compose {

struct SeededSearch {
  SearchResult first;     // the first seed's search: its best weights are the composition's
  Evaluation evaluation;  // the first seed's rows, and every seed in `seeds`
  int requested = 0;      // seeds asked for; evaluation.seeds.size() ran to the end
  bool cancelled = false;
};

// Called with the seed's index (0-based) before each seed, and with every
// trial of every seed.
using SeedCallback = std::function<void(int seed_index, int seeds)>;
using SeedTrialCallback = std::function<void(int seed_index, const Trial& trial)>;

// Searches and evaluates `seeds` seeds (1 to kMaxSeeds, ConfigError
// "compose.seeds" otherwise), a session each. A cancelled first seed still
// evaluates its best weights so far (as a single run does); a later seed
// cancelled is left out and the run ends there.
SeededSearch search_over_seeds(const std::vector<Member>& members, const SessionOptions& session,
                               const SearchOptions& search, int seeds, const ResolvedSource& base,
                               const SeedCallback& on_seed = {}, const SeedTrialCallback& on_trial = {},
                               const std::atomic<bool>* cancel = nullptr);

// One row of the evaluation (zero-shot, a member alone, the composition)
// over the seeds: n = 1 (no spread) for an evaluation without seeds.
struct RowIntervals {
  ScoreRow::Kind kind = ScoreRow::Kind::Composition;
  std::string label;
  Interval few_shot_loss, heldout_loss, accuracy;
};
std::vector<RowIntervals> seed_intervals(const Evaluation& e);

// Per seed, the held-out score of the best single member of that seed (an
// oracle choice, as Evaluation::best_member).
std::vector<Score> best_member_per_seed(const Evaluation& e);

// What the CLI and the window print under the table for several seeds: the
// seeds and the paired differences composition − zero-shot and composition −
// best single member, each with its verdict; empty without seeds.
std::vector<std::string> seed_summary(const Evaluation& e);

}  // namespace lwb::compose
