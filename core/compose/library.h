#pragma once
// Compositions over the store's adapter library: members looked up by name or
// by a stored composition, the search and evaluation run end to end, and the
// result kept as a Composition row (members with weights and canvas
// positions, the trace as trials, the evaluation as scores_json).
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "core/compose/session.h"
#include "core/source/model_source.h"
#include "core/store/store.h"

namespace lwb::compose {

// Adapters by library name, with their ids. ConfigError("compose.adapters",
// ...) naming an adapter that is not in the library or is listed twice.
std::vector<Member> load_members(Store& store, std::span<const std::string> names,
                                 std::vector<std::int64_t>* ids = nullptr);
// The members of a composition, in its order. StoreError naming the
// composition, the member's position and adapter id when that adapter is no
// longer in the library.
std::vector<Member> load_members(Store& store, const Composition& composition);

// Takes out the members whose weights hold NaN or infinite values (adapters
// of diverged runs: they would make every composition NaN), with their ids;
// returns one line per member taken out, naming it and the tensor.
std::vector<std::string> drop_non_finite_members(std::vector<Member>& members, std::vector<std::int64_t>& ids);

// The base an adapter was trained on, from the base it records (a built-in
// preset's cached base made through env.builtin_base, a downloaded model, a
// Hugging Face folder or GGUF file where it was). ConfigError
// ("compose.adapters", ...) naming the adapter when that base is not there.
// Whether it is still the same base is checked by its fingerprint when the
// session loads it.
ResolvedSource base_source_for(const Member& member, const SourceEnvironment& env);

struct ComposeRequest {
  std::string name;  // of the stored composition
  // false: an existing composition of that name is refused before anything
  // runs; true: it is replaced (the hub demo keeps one composition).
  bool replace = false;
  std::vector<std::string> adapters;  // library names, in member order
  SessionOptions session;
  SearchOptions search;
  // Searched and evaluated over this many seeds (core/compose/seeds.h);
  // the composition keeps the first seed's weights and trace, and its
  // scores every seed's.
  int seeds = 1;
};

struct ComposeOutcome {
  Composition composition;  // as stored (id set)
  SearchResult search;      // the first seed's
  Evaluation evaluation;    // with every seed's scores when there were several
  bool cancelled = false;   // the search or the seeds stopped early
  double seconds = 0;       // search and evaluation
};

// Loads the members (skipping non-finite ones with a notice naming each, see
// drop_non_finite_members), searches the weights on the task's few-shot examples,
// evaluates the best weights on held-out examples, over request.seeds seeds,
// and stores the composition. A cancelled first search still evaluates and
// stores its best weights so far (its trace is a valid record); a cancelled
// later seed is left out; `outcome.cancelled` tells. `on_trial` sees every
// seed's trials and env.notice names each seed. Everything is checked (name
// free, members compatible, base found, seeds in range) before the search.
ComposeOutcome compose_and_store(Store& store, const ComposeRequest& request, const SourceEnvironment& env,
                                 const TrialCallback& on_trial = {}, const std::atomic<bool>* cancel = nullptr);

}  // namespace lwb::compose
