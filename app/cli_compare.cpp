// `compare`: a comparison preset run over several seeds (optionally after a
// learning-rate pick on a validation split), recorded in the store and
// reported with confidence intervals; `compare list` and `compare show ID`
// read stored ones back.
#include <cstdio>
#include <memory>
#include <optional>
#include <vector>

#include "app/cli.h"
#include "app/terminal_progress.h"
#include "core/common/errors.h"
#include "core/common/integers.h"
#include "core/format/atomic_file.h"
#include "core/store/store.h"
#include "core/study/stored_comparison.h"
#include "core/train/compare.h"

namespace lwb::cli {

namespace {

std::vector<double> number_list(const std::string& flag, const std::string& text) {
  std::vector<double> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    const std::size_t comma = text.find(',', at);
    const std::string item = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size()) throw UsageError("--" + flag + " expects numbers separated by commas, got \"" + text + "\"");
    out.push_back(v);
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

}  // namespace

ComparisonOptions comparison_options(const Args& args) {
  ComparisonOptions o;
  o.seeds = int_arg(args, "seeds", o.seeds, 1, kMaxComparisonSeeds);
  o.first_seed = static_cast<std::uint64_t>(int_arg(args, "first-seed", 1, 0));
  o.pick_lr = args.has("pick-lr") || args.has("lr-grid");
  if (args.has("lr-grid")) o.lr_factors = number_list("lr-grid", args.get("lr-grid"));
  o.pick_seeds = int_arg(args, "pick-seeds", o.pick_seeds, 1, kMaxComparisonSeeds);
  o.n_validation = int_arg(args, "validation", o.n_validation, 1);
  o.validate();
  return o;
}

// Applies --set to every arm and says so in the description, which the
// report's heading shows (else it would state the preset's own steps).
void apply_sets(const Args& args, ComparisonPreset& preset) {
  std::string changed;
  for (const std::string& kv : args.all("set")) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw UsageError("--set expects key=value, got \"" + kv + "\"");
    for (ComparisonEntry& e : preset.entries) e.config.set(kv.substr(0, eq), kv.substr(eq + 1));
    changed += (changed.empty() ? "" : ", ") + kv;
  }
  if (!changed.empty()) preset.description += "; changed for this run: " + changed;
}

int cmd_compare(const Args& args) {
  args.check({"data-dir", "db", "out", "seeds", "first-seed", "lr-grid", "pick-seeds", "validation", "set"},
             {"quiet", "pick-lr"});
  if (args.positional().empty())
    throw UsageError("give a comparison preset (" + [] {
      std::string s;
      for (const auto& n : comparison_preset_names()) s += (s.empty() ? "" : ", ") + n;
      return s;
    }() + "), list, or show ID");
  const std::string what = args.positional()[0];
  Store store(store_path(args));
  if (what == "list") {
    for (const ComparisonRecord& c : store.list_comparisons())
      std::printf("%5lld  %-7s %-16s %-9s %4lld runs  %s\n", static_cast<long long>(c.id), c.kind.c_str(),
                  terminal_text(c.name).c_str(), c.status.c_str(), static_cast<long long>(c.runs), c.created.c_str());
    return 0;
  }
  if (what == "show") {
    if (args.positional().size() != 2) throw UsageError("give a comparison id, e.g. compare show 3");
    const std::optional<std::int64_t> id = parse_integer<std::int64_t>(args.positional()[1], 1);
    if (!id) throw UsageError("a comparison id is a positive whole number, got \"" + args.positional()[1] + "\"");
    const ComparisonRecord c = store.get_comparison(*id);
    std::printf("%s %lld (%s, %s)\n", c.kind.c_str(), static_cast<long long>(c.id), c.status.c_str(), c.created.c_str());
    if (!c.error.empty()) std::printf("error: %s\n", terminal_text(c.error, true).c_str());
    std::printf("%s", terminal_text(c.kind == "study" && !c.report_markdown.empty()
                                        ? c.report_markdown
                                        : format_comparison_report(load_comparison_summary(store, *id)),
                                    true)
                          .c_str());
    return 0;
  }
  if (args.positional().size() != 1) throw UsageError("give one comparison preset, e.g. compare tiny-methods");
  ComparisonDesign design{comparison_preset(what), comparison_options(args)};
  apply_sets(args, design.preset);
  const bool quiet = args.has("quiet");
  TerminalProgress pretrain_progress("pretrain", quiet);
  const TrainerEnvironment env = environment(args, &pretrain_progress);
  if (!quiet)
    std::printf("%s: %s\n%d seed(s) per arm%s\n", design.preset.name.c_str(), design.preset.description.c_str(),
                design.options.seeds, design.options.pick_lr ? ", learning rates picked on a validation split first" : "");
  install_stop_handler();
  ComparisonProgress progress(quiet);
  const StoredComparison result =
      run_stored_comparison(store, "compare", design, env, RunControl{&g_stop, nullptr}, &progress);
  const std::string report = format_comparison_report(result.summary);
  std::printf("\n%s", terminal_text(report, true).c_str());
  std::printf("recorded as comparison %lld in %s (lora-workbench compare show %lld)\n",
              static_cast<long long>(result.id), terminal_text(store.file().string()).c_str(),
              static_cast<long long>(result.id));
  if (args.has("out")) {
    const std::filesystem::path out = args.get("out");
    std::filesystem::create_directories(out);
    io::write_file_atomically(out / "comparison.txt", report);
    io::write_file_atomically(out / "comparison.md", comparison_markdown(result.summary));
  }
  return result.stopped ? 130 : 0;
}

}  // namespace lwb::cli
