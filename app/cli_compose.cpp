// `compose`: LoRAHub compositions of adapters in the store's library, and the
// built-in "hub" demo.
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "app/cli.h"
#include "app/terminal_progress.h"
#include "core/compose/hub.h"
#include "core/compose/seeds.h"
#include "core/store/store.h"

namespace lwb::cli {

namespace {

using namespace lwb::compose;




std::vector<std::string> split_names(const std::string& list) {
  std::vector<std::string> names;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    if (comma > start) names.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return names;
}


std::string weights_text(const std::vector<double>& w) {
  std::string s = "[";
  char buf[16];
  for (std::size_t i = 0; i < w.size(); ++i) {
    std::snprintf(buf, sizeof(buf), "%s%+.3f", i ? " " : "", w[i]);
    s += buf;
  }
  return s + "]";
}

TrialCallback trace_printer(int budget, bool quiet) {
  if (quiet) return {};
  return [budget](const Trial& t) {
    std::printf("eval %3d/%d  objective %8.4f  w = %s\n", t.iteration + 1, budget, t.objective,
                weights_text(t.weights).c_str());
    std::fflush(stdout);
  };
}

void print_outcome(const ComposeOutcome& o, const std::string& file) {
  const Evaluation& e = o.evaluation;
  const ScoreRow& zero = e.zero_shot();
  const ScoreRow& comp = e.composition();
  const SearchResult& s = o.search;
  std::printf("\ntask %s: %lld few-shot and %lld held-out examples\n", e.task.c_str(),
              static_cast<long long>(zero.few_shot.examples), static_cast<long long>(zero.heldout.examples));
  std::printf("%-28s %8s %14s %12s\n", "", "weight", "held-out loss", "exact match");
  for (std::size_t i = 0; i < e.rows.size(); ++i) {
    const ScoreRow& r = e.rows[i];
    char weight[16] = "-";
    if (r.kind == ScoreRow::Kind::Member) std::snprintf(weight, sizeof(weight), "%+.3f", comp.weights[i - 1]);
    std::printf("%-28s %8s %14.4f %12s\n", terminal_text(r.label).c_str(), weight, r.heldout.loss,
                percent_text(r.heldout.accuracy).c_str());
  }
  std::printf("\nfew-shot objective: %.4f at w = 0, best %.4f after %zu evaluations%s\n",
              s.trace.front().objective, s.best_objective, s.trace.size(), s.cancelled ? " (search stopped)" : "");
  for (const std::string& line : evaluation_summary(e)) std::printf("%s\n", terminal_text(line).c_str());
  if (!e.seeds.empty()) {
    std::printf("\nover %zu seeds (the weights above are the first seed's):\n", e.seeds.size());
    std::printf("%-28s %20s %20s %18s\n", "", "few-shot loss", "held-out loss", "exact match");
    for (const RowIntervals& r : seed_intervals(e))
      std::printf("%-28s %20s %20s %18s\n", terminal_text(r.label).c_str(), interval_text(r.few_shot_loss, 1, 4).c_str(),
                  interval_text(r.heldout_loss, 1, 4).c_str(), interval_text(r.accuracy, 100, 1, false, "%").c_str());
    for (const std::string& line : seed_summary(e)) std::printf("%s\n", terminal_text(line).c_str());
  }
  if (o.cancelled && !s.cancelled)
    std::printf("stopped after %zu seed(s); the intervals are over those\n", e.seeds.size());
  std::printf("stored composition \"%s\" (id %lld) in %s; search and evaluation took %s\n",
              terminal_text(o.composition.name).c_str(), static_cast<long long>(o.composition.id),
              terminal_text(file).c_str(), format_duration(o.seconds).c_str());
}


void apply_search_flags(const Args& a, SearchOptions& s) {
  if (a.has("optimizer")) s.optimizer = parse_optimizer(a.get("optimizer"));
  s.budget = int_arg(a, "budget", s.budget);
  s.seed = static_cast<std::uint64_t>(int_arg(a, "seed", static_cast<int>(s.seed)));
}

int seeds_arg(const Args& a) {
  const int n = int_arg(a, "seeds", kDefaultSeeds);
  if (n < 1 || n > kMaxSeeds)
    throw UsageError("--seeds must be 1 to " + std::to_string(kMaxSeeds) + ", not " + std::to_string(n));
  return n;
}

int list_library(Store& store) {
  const auto adapters = store.list_adapters();
  std::printf("%5s  %-28s %-8s %4s %-22s %-16s %9s %8s\n", "id", "adapter", "variant", "rank", "targets", "task",
              "eval loss", "exact %");
  for (const AdapterRow& a : adapters) {
    std::printf("%5lld  %-28s %-8s %4d %-22s %-16s %9.4f %8s\n", static_cast<long long>(a.id),
                terminal_text(a.name).c_str(), a.variant.c_str(), a.rank, a.targets.c_str(),
                terminal_text(a.task).c_str(), a.eval_loss, percent_text(a.eval_accuracy).c_str());
    if (!a.diverged.empty()) std::printf("       marked: its run %s\n", terminal_text(a.diverged).c_str());
  }
  const auto compositions = store.list_compositions();
  std::printf("\n%5s  %-28s %-8s %-8s %-10s %7s %7s %10s\n", "id", "composition", "mode", "search", "task", "members",
              "trials", "best obj.");
  for (const CompositionRow& c : compositions)
    std::printf("%5lld  %-28s %-8s %-8s %-10s %7lld %7lld %10.4f\n", static_cast<long long>(c.id),
                terminal_text(c.name).c_str(), c.mode.c_str(), c.optimizer.c_str(), c.target_task.c_str(),
                static_cast<long long>(c.members),
                static_cast<long long>(c.trials), c.best_objective);
  std::printf("%zu adapter(s), %zu composition(s) in %s\n", adapters.size(), compositions.size(),
              terminal_text(store.file().string()).c_str());
  return 0;
}

int run_hub_preset(const Args& args, Store& store, bool quiet) {
  HubPreset preset = hub_preset();
  apply_search_flags(args, preset.search);
  preset.seeds = seeds_arg(args);
  if (!quiet) std::printf("hub: held-out task %s. Why: %s.\n", preset.target.c_str(), preset.why.c_str());
  TerminalProgress pretrain("pretrain " + preset.training.model.preset, quiet);
  TrainerEnvironment env = environment(args);
  env.pretrain_sink = &pretrain;
  std::vector<std::unique_ptr<TerminalProgress>> bars;
  HubCallbacks cb;
  if (!quiet) cb.notice = [](const std::string& s) { std::printf("%s\n", terminal_text(s).c_str()); };
  cb.training_sink = [&](const std::string& adapter, Trainer&, int, int) {
    bars.push_back(std::make_unique<TerminalProgress>(adapter, quiet));
    return bars.back().get();
  };
  cb.on_trial = trace_printer(preset.search.budget, quiet);
  const HubReport r = run_hub(store, preset, env, cb, &g_stop);
  if (!r.reused.empty() && !quiet)
    std::printf("reused %zu adapter(s) already in the library\n", r.reused.size());
  if (r.cancelled) {
    std::fprintf(stderr, "hub: stopped while training; %zu adapter(s) were stored, run it again to continue\n",
                 r.trained.size());
    return 130;
  }
  print_outcome(r.outcome, store.file().string());
  std::printf("hub demo took %s (training %s)\n", format_duration(r.total_seconds).c_str(),
              format_duration(r.train_seconds).c_str());
  return r.outcome.cancelled ? 130 : 0;
}

}  // namespace

int cmd_compose(const Args& args) {
  args.check({"adapters", "task", "shots", "budget", "optimizer", "mode", "svd-rank", "heldout", "seed", "seeds", "name",
              "preset", "db", "data-dir"},
             {"quiet", "list"});
  const bool quiet = args.has("quiet");
  Store store(store_path(args));
  if (args.has("list")) return list_library(store);
  install_stop_handler();
  if (args.has("preset")) {
    if (args.get("preset") != "hub")
      throw UsageError("unknown compose preset \"" + args.get("preset") + "\"; known: hub");
    for (const char* flag : {"adapters", "task", "shots", "mode", "svd-rank", "heldout", "name"})
      if (args.has(flag)) throw UsageError(std::string("--") + flag + " does not apply to --preset hub");
    return run_hub_preset(args, store, quiet);
  }
  if (!args.has("adapters") || !args.has("task"))
    throw UsageError("give --adapters NAME,NAME,... and --task TASK, or --preset hub, or --list");

  ComposeRequest request;
  request.adapters = split_names(args.get("adapters"));
  if (request.adapters.empty()) throw UsageError("--adapters lists no adapter names");
  request.session.task = args.get("task");
  request.session.shots = int_arg(args, "shots", request.session.shots);
  request.session.heldout = int_arg(args, "heldout", request.session.heldout);
  if (args.has("mode")) request.session.mode = parse_merge_mode(args.get("mode"));
  request.session.svd_rank = int_arg(args, "svd-rank", 0);
  if (args.has("svd-rank") && request.session.mode != MergeMode::Svd)
    throw UsageError("--svd-rank applies to --mode svd only");
  apply_search_flags(args, request.search);
  request.seeds = seeds_arg(args);
  request.name =
      args.get("name", request.session.task + "-" + merge_mode_name(request.session.mode) + "-" + timestamp());

  const ComposeOutcome o =
      compose_and_store(store, request, environment(args), trace_printer(request.search.budget, quiet), &g_stop);
  print_outcome(o, store.file().string());
  return o.cancelled ? 130 : 0;
}

}  // namespace lwb::cli
