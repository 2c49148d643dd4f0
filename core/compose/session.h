#pragma once
// LoRAHub's adaptation stage for one target task: the composed adapter is
// scored on k few-shot examples while its weights are searched, then the
// result is evaluated on held-out examples beside the base model alone
// (zero-shot) and every member alone.
//
// The model is built once, with LoRA modules of the composition's shape; each
// evaluation only composes on the host and uploads A and B into those
// modules, then scores them with the trainer's own evaluation
// (core/eval/evaluation.h).
#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/compose/merge.h"
#include "core/compose/search.h"
#include "core/data/dataset.h"
#include "core/eval/evaluation.h"
#include "core/tensor/ledger.h"
#include "core/model/model.h"
#include "core/source/model_source.h"
#include "core/tensor/backend.h"

namespace lwb::compose {

// LoRAHub's defaults.
inline constexpr int kDefaultShots = 5;
inline constexpr double kDefaultL1 = 0.05;
// Seeds a composition is searched and evaluated over where people ask for a
// result (the compose CLI, the Compose view, the hub demo), and the most.
inline constexpr int kDefaultSeeds = 3;
inline constexpr int kMaxSeeds = 10;

struct SessionOptions {
  std::string task;  // a built-in task (core/data/tasks.h)
  MergeMode mode = MergeMode::LoraHub;
  int svd_rank = 0;  // svd mode: 0 for the largest member rank
  int shots = kDefaultShots;
  int heldout = 100;
  // The few-shot and held-out examples; the held-out ones never depend on
  // `shots`, so runs with different k are scored on the same examples.
  std::uint64_t data_seed = 1234;
  double l1 = kDefaultL1;  // objective = few-shot loss + l1 · mean|w|
  std::string device = "cpu";
};

// Mean cross-entropy per completion token and exact match over examples
// (core/eval/evaluation.h, the trainer's evaluation).
using Score = EvalScore;

struct ScoreRow {
  enum class Kind { ZeroShot, Member, Composition };
  Kind kind = Kind::Composition;
  std::string label;            // "zero-shot", the member's name, "composition"
  std::vector<double> weights;  // the member weights that produced it
  Score few_shot, heldout;
};
const char* score_kind_name(ScoreRow::Kind k);  // "zero-shot", "member", "composition"

// One seed of a composition searched and evaluated over several seeds
// (core/compose/seeds.h): the seed's few-shot and held-out examples, its
// search and the scores at its best weights.
struct SeedScores {
  std::uint64_t seed = 0;       // the search's seed
  std::uint64_t data_seed = 0;  // drew the few-shot and held-out examples
  double best_objective = NAN;
  std::vector<Trial> trace;     // the seed's search, every evaluation
  std::vector<ScoreRow> rows;   // as Evaluation::rows
};

struct Evaluation {
  std::string task;
  std::vector<ScoreRow> rows;  // zero-shot, each member in order, the composition
  // Every seed when it was searched over several (the first one's rows are
  // `rows`); empty for a single evaluation.
  std::vector<SeedScores> seeds;
  const ScoreRow& zero_shot() const { return rows.front(); }
  const ScoreRow& composition() const { return rows.back(); }
  // The member with the lowest finite held-out loss: an oracle choice (it
  // peeks at held-out data), so the strictest single-adapter baseline.
  const ScoreRow& best_member() const;
};

// "12.5%"; "-" for NaN (no exact-match score).
std::string percent_text(double fraction);
// The evaluation read honestly, three lines as the CLI and the window show
// them: the best single member, then the composition against zero-shot and
// against that member on held-out data, each change with "better"/"worse",
// e.g. "composition vs zero-shot on held-out data: loss 2.1000 -> 1.9000
// (-0.2000, better), exact match 10.0% -> 15.0% (+5.0 points, better)".
std::vector<std::string> evaluation_summary(const Evaluation& e);

// JSON for Composition::scores_json, and back (FormatError naming `source`).
// NaN is written as null; the seeds, when there are several, go in "seeds".
std::string evaluation_to_json(const Evaluation& e);
Evaluation evaluation_from_json(const std::string& text, const std::string& source);

// Holds a model on a backend: use it from one thread (the window's worker);
// search callbacks run on that thread.
class CompositionSession {
 public:
  // Loads the base (with its tokenizer, which the task's examples are
  // written in) and checks that it is the one the members were trained on
  // (IncompatibleMemberError naming the first member otherwise); incompatible
  // members are refused as in Composer. A built-in preset's base must be
  // there (base_source_for in library.h makes it). ConfigError for an unknown
  // task or bad counts.
  CompositionSession(std::vector<Member> members, SessionOptions options, const ResolvedSource& base);
  ~CompositionSession();
  CompositionSession(const CompositionSession&) = delete;
  CompositionSession& operator=(const CompositionSession&) = delete;

  const SessionOptions& options() const { return options_; }
  std::size_t size() const { return composer_.size(); }
  const Member& member(std::size_t i) const { return composer_.member(i); }
  const std::vector<data::Example>& shots() const { return shots_; }
  const std::vector<data::Example>& heldout() const { return heldout_; }

  // Few-shot loss of the composition with these weights + l1 · mean|w|.
  double objective(std::span<const double> weights);
  // Searches the weights from 0 with the objective above.
  SearchResult search(const SearchOptions& options, const TrialCallback& on_trial = {},
                      const std::atomic<bool>* cancel = nullptr);
  // Zero-shot (all weights 0: the adapter adds nothing), each member alone at
  // weight 1 (through the merge: exactly the member in lorahub, linear and
  // cat mode; svd truncates it to the merge's rank), and the composition with
  // `weights`, on the few-shot and the held-out examples.
  Evaluation evaluate(std::span<const double> weights);
  // Scores of the composition with these weights.
  Score score(std::span<const double> weights, std::span<const data::Example> examples);
  // The merged adapter (a copy), for export or the library.
  AdapterState merged(std::span<const double> weights);

 private:
  void upload(std::span<const double> weights);

  SessionOptions options_;
  Composer composer_;
  std::vector<data::Example> shots_, heldout_;
  std::int32_t pad_ = 0;
  int max_batch_ = 16, seq_len_ = 0;
  std::unique_ptr<Backend> backend_;
  MemoryLedger ledger_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Evaluator> evaluator_;
};

}  // namespace lwb::compose
