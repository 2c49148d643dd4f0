#include "core/compose/seeds.h"

#include <cmath>

#include "core/common/errors.h"

namespace lwb::compose {

SeededSearch search_over_seeds(const std::vector<Member>& members, const SessionOptions& session,
                               const SearchOptions& search, int seeds, const ResolvedSource& base,
                               const SeedCallback& on_seed, const SeedTrialCallback& on_trial,
                               const std::atomic<bool>* cancel) {
  if (seeds < 1 || seeds > kMaxSeeds)
    throw ConfigError("compose.seeds", "must be 1 to " + std::to_string(kMaxSeeds) + ", not " + std::to_string(seeds));
  SeededSearch out;
  out.requested = seeds;
  for (int k = 0; k < seeds; ++k) {
    if (k > 0 && cancel && cancel->load()) {
      out.cancelled = true;
      break;
    }
    if (on_seed) on_seed(k, seeds);
    SessionOptions so = session;
    so.data_seed = session.data_seed + static_cast<std::uint64_t>(k);
    SearchOptions sr = search;
    sr.seed = search.seed + static_cast<std::uint64_t>(k);
    CompositionSession s(members, so, base);
    SearchResult r = s.search(sr, on_trial ? TrialCallback([&](const Trial& t) { on_trial(k, t); }) : TrialCallback{},
                              cancel);
    if (r.cancelled && k > 0) {  // its search is unfinished: not a sample of the result
      out.cancelled = true;
      break;
    }
    Evaluation e = s.evaluate(r.best_weights);
    if (k == 0) {
      out.evaluation = e;
      out.first = r;
    }
    if (seeds > 1)
      out.evaluation.seeds.push_back({sr.seed, so.data_seed, r.best_objective, std::move(r.trace), std::move(e.rows)});
    if (k == 0 && out.first.cancelled) {
      out.cancelled = true;
      break;
    }
  }
  return out;
}

std::vector<RowIntervals> seed_intervals(const Evaluation& e) {
  std::vector<RowIntervals> out;
  for (std::size_t i = 0; i < e.rows.size(); ++i) {
    std::vector<double> few, held, acc;
    auto add = [&](const ScoreRow& r) {
      few.push_back(r.few_shot.loss);
      held.push_back(r.heldout.loss);
      acc.push_back(r.heldout.accuracy);
    };
    if (e.seeds.empty()) add(e.rows[i]);
    for (const SeedScores& s : e.seeds) add(s.rows.at(i));
    out.push_back({e.rows[i].kind, e.rows[i].label, mean_interval(few), mean_interval(held), mean_interval(acc)});
  }
  return out;
}

std::vector<Score> best_member_per_seed(const Evaluation& e) {
  std::vector<Score> out;
  for (const SeedScores& s : e.seeds) {
    Evaluation one;
    one.task = e.task;
    one.rows = s.rows;
    out.push_back(one.best_member().heldout);
  }
  return out;
}

std::vector<std::string> seed_summary(const Evaluation& e) {
  if (e.seeds.empty()) return {};
  std::vector<double> zero_loss, zero_acc, comp_loss, comp_acc, best_loss, best_acc;
  std::string seeds;
  for (const SeedScores& s : e.seeds) {
    zero_loss.push_back(s.rows.front().heldout.loss);
    zero_acc.push_back(s.rows.front().heldout.accuracy);
    comp_loss.push_back(s.rows.back().heldout.loss);
    comp_acc.push_back(s.rows.back().heldout.accuracy);
    seeds += (seeds.empty() ? "" : ", ") + std::to_string(s.seed);
  }
  for (const Score& b : best_member_per_seed(e)) {
    best_loss.push_back(b.loss);
    best_acc.push_back(b.accuracy);
  }
  std::vector<std::string> lines;
  lines.push_back(std::to_string(e.seeds.size()) + " seeds (" + seeds +
                  "), each drawing its own few-shot and held-out examples: mean ± 95% confidence interval; "
                  "differences are paired by seed");
  lines.push_back(difference_verdict("composition", "zero-shot", paired_difference(zero_acc, comp_acc),
                                     "points exact match", 100, 1));
  lines.push_back(difference_verdict("composition", "zero-shot", paired_difference(zero_loss, comp_loss),
                                     "held-out loss", 1, 4));
  lines.push_back(difference_verdict("composition", "best single member", paired_difference(best_acc, comp_acc),
                                     "points exact match", 100, 1));
  lines.push_back(difference_verdict("composition", "best single member", paired_difference(best_loss, comp_loss),
                                     "held-out loss", 1, 4));
  return lines;
}

}  // namespace lwb::compose
